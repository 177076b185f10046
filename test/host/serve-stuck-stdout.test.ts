// `brick serve` whose stdout reader (journald) stops reading: calls and /healthz go on being answered
// (the log lines wait in memory, bounded), and every line arrives once the reader reads again.
// Before, the log was written synchronously: the pipe full (64 KiB) stopped the whole agent.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../fixtures/serve-process.js';
import { XmlRpcClient, postXml } from '../../src/agent-extension/client.js';
import { XmlRpcFault } from '../../src/agent-extension/codec.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'src/cli/main.ts');
const dir = mkdtempSync(join(tmpdir(), 'brick-serve-stdout-'));
const children: Array<{ kill: (s: NodeJS.Signals) => boolean }> = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('stdout not read: calls and /healthz are still answered; the lines come once it is read again', async () => {
  const port = await freePort();
  const config = join(dir, 'brick.toml');
  writeFileSync(config, `[server]\nlisten = "127.0.0.1:${port}"\npassword = "out-pw"\ngenerate_credentials = false\ntls_cert = ""\ntls_key = ""\n`);
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--config', config], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d;
      if (out.includes('brick agent extension listening')) {
        child.stdout.off('data', onData);
        child.stdout.pause(); // the reader stops reading: the pipe fills up
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.on('exit', (c) => reject(new Error(`brick serve exited ${c}: ${out}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));

  // Each call logs a line of about 700 bytes (the method name twice): 1200 of them are 0.8 MB,
  // far more than the pipe and Node's read buffer hold.
  const CALLS = 1200;
  const name = (i: number) => `hlife_${String(i).padStart(5, '0')}_${'x'.repeat(230)}`;
  const client = new XmlRpcClient({ url: `http://127.0.0.1:${port}/`, user: 'oracle', password: 'out-pw', timeoutMs: 30_000 });
  try {
    for (let i = 0; i < CALLS; i++) {
      await assert.rejects(client.call(name(i)), (e: unknown) => e instanceof XmlRpcFault && /no method/.test(e.faultString), `call ${i}`);
    }
  } finally {
    client.close();
  }
  const health = await postXml({ url: `http://127.0.0.1:${port}/healthz`, body: '', timeoutMs: 30_000 }).catch((e: Error) => e);
  assert.ok(!(health instanceof Error), `/healthz: ${health}`);

  // Read again: every call's line arrives, in order; then a clean stop.
  let rest = '';
  child.stdout.on('data', (d: Buffer) => (rest += d));
  child.stdout.resume();
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  const seen = [...rest.matchAll(/"method":"(hlife_\d+)_x+"/g)].map((m) => m[1]);
  assert.equal(seen.length, CALLS, 'every call was logged');
  assert.equal(seen.at(-1), `hlife_${String(CALLS - 1).padStart(5, '0')}`);
  assert.match(rest, /"msg":"stopped"/);
});
