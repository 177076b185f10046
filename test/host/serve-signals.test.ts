// `brick serve` as a real process and the signals that would end it by their default action: SIGHUP
// (a terminal closing, a `kill -HUP` meant as a reload), SIGUSR2, SIGALRM, SIGPWR... leave it serving
// (said once each in the log); SIGQUIT stops it as SIGTERM does, through the clean stop.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startServe } from '../fixtures/serve-process.js';
import { XmlRpcClient } from '../../src/agent-extension/client.js';
import { connect } from 'node:net';

const dir = mkdtempSync(join(tmpdir(), 'brick-serve-signals-'));
const children: Array<{ kill: (s: NodeJS.Signals) => boolean }> = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('SIGHUP, SIGUSR2, SIGALRM and SIGPWR do not end brick serve; SIGQUIT stops it cleanly', async () => {
  const port = await freePort();
  const config = join(dir, 'brick.toml');
  writeFileSync(config, `[server]\nlisten = "127.0.0.1:${port}"\npassword = "sig-pw"\ngenerate_credentials = false\ntls_cert = ""\ntls_key = ""\n`);
  const s = startServe(config, children);
  await s.listening;
  const client = new XmlRpcClient({ url: `http://127.0.0.1:${port}/`, user: 'oracle', password: 'sig-pw', keepAlive: false });
  try {
    for (const sig of ['SIGHUP', 'SIGUSR2', 'SIGALRM', 'SIGPWR'] as const) {
      s.child.kill(sig);
      await sleep(300);
      assert.equal(s.child.signalCode, null, `${sig} killed brick serve:\n${s.output()}`);
      assert.equal(s.child.exitCode, null, `${sig} ended brick serve:\n${s.output()}`);
      assert.ok(((await client.call('system.listMethods')) as string[]).includes('system.multicall'), `still serving after ${sig}`);
    }
  } finally {
    client.close();
  }
  s.child.kill('SIGQUIT');
  assert.equal(await s.exited, 0, s.output());
  assert.equal(s.child.signalCode, null);
  assert.match(s.output(), /"signal":"SIGQUIT","msg":"stopping/);
  assert.match(s.output(), /"msg":"stopped"/);
  assert.match(s.output(), /"signal":"SIGHUP".*ignored/);
});

test('SIGTERM while a refused request\'s connection lingers: the clean stop still runs to its end', async () => {
  // A 401 for a request whose body was not read leaves its connection open (FIN sent, not reading)
  // for up to 2 s so the client reads the reply. Such a socket keeps nothing alive: the stop must
  // keep the process alive itself until it has finished (pending network change rolled back, "stopped").
  const port = await freePort();
  const config = join(dir, 'linger.toml');
  writeFileSync(config, `[server]\nlisten = "127.0.0.1:${port}"\npassword = "sig-pw"\ngenerate_credentials = false\ntls_cert = ""\ntls_key = ""\n`);
  const s = startServe(config, children);
  await s.listening;
  const sock = connect(port, '127.0.0.1');
  const head = await new Promise<string>((resolve, reject) => {
    sock.once('error', reject);
    sock.once('data', (d) => resolve(String(d).split('\r\n')[0]));
    sock.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 100\r\n\r\n<?xml');
  });
  assert.equal(head, 'HTTP/1.1 401 Unauthorized');
  s.child.kill('SIGTERM');
  assert.equal(await s.exited, 0, s.output());
  sock.destroy();
  assert.match(s.output(), /"msg":"stopping/);
  assert.match(s.output(), /"msg":"stopped"/, `the stop did not run to its end:\n${s.output()}`);
});

test('SIGTERM with a TLS handshake left half-done: brick serve stops at once, not when the peer gives up', { timeout: 150_000 }, async () => {
  // A connection that sent part of a ClientHello and nothing more is no HTTP connection yet: the
  // server's idle closing does not see it, and it kept the process alive after "stopped" until the
  // TLS handshake timeout (120 s), past systemd's TimeoutStopSec, after a 10 s grace for no call.
  const port = await freePort();
  const config = join(dir, 'tls.toml');
  writeFileSync(
    config,
    `[server]\nlisten = "127.0.0.1:${port}"\npassword = "sig-pw"\ngenerate_credentials = true\ntls_cert = "${dir}/tls/cert.pem"\ntls_key = "${dir}/tls/key.pem"\n`,
  );
  const s = startServe(config, children);
  await s.listening;
  const sock = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.write(Buffer.from([0x16, 0x03, 0x01]), () => resolve());
  });
  sock.on('error', () => {});
  await sleep(300);
  s.child.kill('SIGTERM');
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  try {
    assert.equal(await s.exited, 0, s.output());
  } finally {
    sock.destroy();
  }
  await closed;
  assert.match(s.output(), /"msg":"stopped"/);
  assert.doesNotMatch(s.output(), /after the grace period/, 'no call was running: no grace period to wait out');
});
