// `brick serve` and `brick call` as real processes: generated credentials (password 0600 in a 0700
// directory, self-signed certificate), the password line on stdout, brick call with config
// defaults, faults and 401 as one line and exit 1, clean stop on SIGTERM, nothing regenerated on restart;
// the listen address bound as configured (only that address, let go on stop), a port in use or an
// address not on this host refused with the config key named.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, startServe } from '../fixtures/serve-process.js';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArg, resultJson } from '../../src/cli/call.js';
import net from 'node:net';
import { serve } from '../../src/agent-extension/serve.js';
import { XmlRpcClient } from '../../src/agent-extension/client.js';
import { BrickError } from '../../src/shared/errors.js';
import { networkConfig } from '../fixtures/network-ctx.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'src/cli/main.ts');
const dir = mkdtempSync(join(tmpdir(), 'brick-serve-'));
const children: Array<{ kill: (s: NodeJS.Signals) => boolean }> = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function brick(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 2) : 0, stdout, stderr }),
    );
  });
}

test('serve with generate_credentials, then brick call with the config defaults, then SIGTERM', async () => {
  const port = await freePort();
  const config = join(dir, 'brick.toml');
  writeFileSync(
    config,
    `[server]\nlisten = "127.0.0.1:${port}"\npassword_file = "${dir}/secret/password"\ngenerate_credentials = true\n` +
      `tls_cert = "${dir}/tls/cert.pem"\ntls_key = "${dir}/tls/key.pem"\n`,
  );
  const s = startServe(config, children);
  const out = await s.listening;
  const m = /brick: generated password for user oracle: (\S+) \(saved in (\S+)\)/.exec(out);
  assert.ok(m, out);
  assert.equal(m[2], `${dir}/secret/password`);
  assert.equal(readFileSync(m[2], 'utf8').trim(), m[1]);
  assert.equal(statSync(m[2]).mode & 0o777, 0o600);
  assert.equal(statSync(`${dir}/secret`).mode & 0o777, 0o700);
  assert.equal(statSync(`${dir}/tls/key.pem`).mode & 0o777, 0o600);
  assert.match(readFileSync(`${dir}/tls/cert.pem`, 'utf8'), /BEGIN CERTIFICATE/);
  assert.equal(out.split('\n').filter((l) => l.includes(m[1])).length, 1, 'the password appears once, on its own line, not in the log');

  const list = await brick(['call', '--config', config, 'system.listMethods']);
  assert.equal(list.code, 0, list.stderr);
  assert.ok((JSON.parse(list.stdout) as string[]).includes('system.multicall'));

  const multi = await brick(['call', '--config', config, 'system.multicall', '[{"methodName":"system.methodSignature","params":["system.methodHelp"]}]']);
  assert.equal(multi.code, 0, multi.stderr);
  assert.deepEqual(JSON.parse(multi.stdout), [[[['string', 'string']]]]);

  const f = await brick(['call', '--config', config, 'system.methodHelp', 'nope']);
  assert.equal(f.code, 5, 'a fault exits 5');
  assert.equal(f.stdout, '');
  assert.match(f.stderr, /^fault 1001 \(NOT_FOUND\): no method "nope"/);
  assert.equal(f.stderr.trim().split('\n').length, 1);

  const wrong = join(dir, 'wrong');
  writeFileSync(wrong, 'nope\n');
  const denied = await brick(['call', '--config', config, '--password-file', wrong, 'system.listMethods']);
  assert.equal(denied.code, 6, 'HTTP 401 exits 6');
  assert.match(denied.stderr, /HTTP 401/);

  const pw = join(dir, 'pw');
  writeFileSync(pw, m[1] + '\n');
  const insecure = await brick(['call', '--url', `https://127.0.0.1:${port}/RPC2`, '--user', 'oracle', '--password-file', pw, '--insecure', 'system.methodHelp', 'system.listMethods']);
  assert.equal(insecure.code, 0, insecure.stderr);
  assert.match(insecure.stdout, /^system\.listMethods\(\) → array\n\nLists the names/, 'help printed as text');

  s.child.kill('SIGTERM');
  assert.equal(await s.exited, 0);
  assert.match(s.output(), /"msg":"stopped"/);

  // A restart keeps what exists: no new password, no new certificate.
  const cert = readFileSync(`${dir}/tls/cert.pem`, 'utf8');
  const again = startServe(config, children);
  const out2 = await again.listening;
  assert.doesNotMatch(out2, /generated/);
  assert.equal(readFileSync(`${dir}/tls/cert.pem`, 'utf8'), cert);
  assert.equal(readFileSync(m[2], 'utf8').trim(), m[1]);
  again.child.kill('SIGINT');
  assert.equal(await again.exited, 0);
});

test('brick call: arguments are JSON when they parse, strings otherwise; results print as JSON', () => {
  assert.equal(parseArg('42'), 42);
  assert.equal(parseArg('true'), true);
  assert.equal(parseArg('null'), null);
  assert.deepEqual(parseArg('{"mtu":9000}'), { mtu: 9000 });
  assert.equal(parseArg('xenbr0'), 'xenbr0');
  assert.equal(parseArg('10.0.0.1'), '10.0.0.1');
  assert.equal(
    resultJson({ big: 9223372036854775807n, b: Buffer.from('hi'), d: new Date(Date.UTC(2025, 0, 2)), n: null }),
    '{\n  "big": 9223372036854775807,\n  "b": "aGk=",\n  "d": "2025-01-02T00:00:00.000Z",\n  "n": null\n}',
  );
});

/** Whether host:port can be listened on right now (a plain Node server, closed again). */
function canListen(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? String(e)));
    s.listen(port, host, () => s.close(() => resolve('free')));
  });
}

test('server.listen: the host is bound as given (no other address) and let go on stop; a port in use is CONFLICT, an address not on this host INVALID_PARAMS; [::] serves IPv4 and IPv6; localhost is resolved as before', async () => {
  const port = await freePort();
  const config = networkConfig({});
  Object.assign(config.server, { listen: `127.0.0.1:${port}`, password: 'listen-test-pw', password_file: '', generate_credentials: false, tls_cert: '', tls_key: '' });
  const stop = new AbortController();
  let url = '';
  let code: Promise<number> | undefined;
  await new Promise<void>((resolve, reject) => {
    code = serve(config, { logFormat: 'json', logLevel: 'silent', signal: stop.signal, onListening: (u) => ((url = u), resolve()) });
    code.catch(reject);
  });
  try {
    assert.equal(url, `http://127.0.0.1:${port}/`);
    const client = new XmlRpcClient({ url, user: config.server.user, password: 'listen-test-pw' });
    assert.ok(((await client.call('system.listMethods')) as string[]).includes('system.multicall'));
    client.close();
    assert.equal(await canListen('127.0.0.1', port), 'EADDRINUSE');
    assert.equal(await canListen('127.0.0.2', port), 'free', 'only 127.0.0.1 is bound, not every address');
    // A second brick on the same address: refused, naming the key; the first one goes on serving.
    const second = networkConfig({});
    Object.assign(second.server, { ...config.server });
    await assert.rejects(serve(second, { logFormat: 'json', logLevel: 'silent' }), (e: unknown) => {
      assert.ok(e instanceof BrickError);
      assert.equal(e.fault, 'CONFLICT');
      assert.match(e.message, new RegExp(`^server\\.listen 127\\.0\\.0\\.1:${port}: the address is in use`));
      return true;
    });
    const again = new XmlRpcClient({ url, user: config.server.user, password: 'listen-test-pw' });
    assert.ok(((await again.call('system.listMethods')) as string[]).length > 0, 'the first brick still answers');
    again.close();
    // An address this host does not have (TEST-NET-3, RFC 5737).
    const absent = networkConfig({});
    Object.assign(absent.server, { ...config.server, listen: `203.0.113.77:${port}` });
    await assert.rejects(serve(absent, { logFormat: 'json', logLevel: 'silent' }), (e: unknown) => {
      assert.ok(e instanceof BrickError);
      assert.equal(e.fault, 'INVALID_PARAMS');
      assert.match(e.message, /^server\.listen 203\.0\.113\.77:\d+: no such address on this host/);
      return true;
    });
  } finally {
    stop.abort();
  }
  assert.equal(await code, 0);
  assert.equal(await canListen('127.0.0.1', port), 'free', 'the stopped server let the address go');

  // [::] is both stacks, as Node's own listen made it: CloudStack on IPv4 still reaches it.
  const any6 = networkConfig({});
  Object.assign(any6.server, { ...config.server, listen: `[::]:${port}`, allow_plain_http: true });
  const stopAny = new AbortController();
  let anyCode: Promise<number> | undefined;
  let anyUrl = '';
  await new Promise<void>((resolve, reject) => {
    anyCode = serve(any6, { logFormat: 'json', logLevel: 'silent', signal: stopAny.signal, onListening: (u) => ((anyUrl = u), resolve()) });
    anyCode.catch(reject);
  });
  try {
    assert.equal(anyUrl, `http://[::]:${port}/`);
    for (const host of ['127.0.0.1', '[::1]']) {
      const c = new XmlRpcClient({ url: `http://${host}:${port}/`, user: config.server.user, password: 'listen-test-pw' });
      assert.ok(((await c.call('system.listMethods')) as string[]).length > 0, `answered over ${host}`);
      c.close();
    }
  } finally {
    stopAny.abort();
  }
  assert.equal(await anyCode, 0);

  // localhost is a name, not an address: fastify resolves it and binds what it resolves to, as before.
  const local = networkConfig({});
  Object.assign(local.server, { ...config.server, listen: `localhost:${port}` });
  const stopLocal = new AbortController();
  let localCode: Promise<number> | undefined;
  await new Promise<void>((resolve, reject) => {
    localCode = serve(local, { logFormat: 'json', logLevel: 'silent', signal: stopLocal.signal, onListening: () => resolve() });
    localCode.catch(reject);
  });
  try {
    assert.equal(await canListen('127.0.0.1', port), 'EADDRINUSE');
  } finally {
    stopLocal.abort();
  }
  assert.equal(await localCode, 0);
  assert.equal(await canListen('127.0.0.1', port), 'free');
});
