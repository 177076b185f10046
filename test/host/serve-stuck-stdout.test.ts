// `brick serve` whose stdout reader (journald) stops reading: calls and /healthz go on being answered
// (the log lines wait in memory, bounded), and every line arrives once the reader reads again.
// Before, the log was written synchronously: the pipe full (64 KiB) stopped the whole agent.
// At a stop, every line reaches a reader that reads again, "stopped" the last: before, the last
// batch was written at the exit, into a pipe that could still be full, and lost (CI saw it). A
// reader that never reads again does not keep a stopped agent alive: before, the pending writes held
// it for ever (until systemd's SIGKILL).
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

async function startPaused(password: string) {
  const port = await freePort();
  const config = join(dir, `brick-${port}.toml`);
  writeFileSync(config, `[server]\nlisten = "127.0.0.1:${port}"\npassword = "${password}"\ngenerate_credentials = false\ntls_cert = ""\ntls_key = ""\n`);
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
  // 'exit' can come before the last lines in the pipe are read; 'close' comes after them.
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { port, child, closed };
}

// Each call logs a line of about 700 bytes (the method name twice): 1200 of them are 0.8 MB,
// far more than the pipe and Node's read buffer hold.
const CALLS = 1200;
const name = (i: number) => `hlife_${String(i).padStart(5, '0')}_${'x'.repeat(230)}`;

async function callMany(port: number, password: string) {
  const client = new XmlRpcClient({ url: `http://127.0.0.1:${port}/`, user: 'oracle', password, timeoutMs: 30_000 });
  try {
    for (let i = 0; i < CALLS; i++) {
      await assert.rejects(client.call(name(i)), (e: unknown) => e instanceof XmlRpcFault && /no method/.test(e.faultString), `call ${i}`);
    }
  } finally {
    client.close();
  }
  const health = await postXml({ url: `http://127.0.0.1:${port}/healthz`, body: '', timeoutMs: 30_000 }).catch((e: Error) => e);
  assert.ok(!(health instanceof Error), `/healthz: ${health}`);
}

test('stdout not read: calls and /healthz are still answered; the lines come once it is read again, "stopped" the last', async () => {
  const { port, child, closed } = await startPaused('out-pw');
  await callMany(port, 'out-pw');

  // Read again: every call's line arrives, in order; then a clean stop, its line the last.
  let rest = '';
  child.stdout.on('data', (d: Buffer) => (rest += d));
  child.stdout.resume();
  child.kill('SIGTERM');
  assert.deepEqual(await closed, { code: 0, signal: null });
  const seen = [...rest.matchAll(/"method":"(hlife_\d+)_x+"/g)].map((m) => m[1]);
  assert.equal(seen.length, CALLS, 'every call was logged');
  assert.equal(seen.at(-1), `hlife_${String(CALLS - 1).padStart(5, '0')}`);
  const lines = rest.trimEnd().split('\n');
  assert.match(lines.at(-1)!, /"msg":"stopped"/, `the last line: ${lines.at(-1)?.slice(0, 200)}`);
});

test('stdout never read again: SIGTERM still ends brick serve, exit 0', async () => {
  const { port, child, closed } = await startPaused('stuck-pw');
  await callMany(port, 'stuck-pw');
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  // Node resumes a child's paused stdout when the child exits: what it holds goes here then.
  let rest = '';
  child.stdout.on('data', (d: Buffer) => (rest += d));
  child.kill('SIGTERM');
  // It waits 2 s for the reader, then exits a second later. 60 s is far past that on a loaded
  // machine; before, it was still running there (the pending writes held the event loop).
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), 60_000)));
  const outcome = await Promise.race([exited, late]);
  clearTimeout(timer);
  assert.deepEqual(outcome, { code: 0, signal: null });
  // What the pipe held is still there for the reader: the start of the log, in order.
  await closed;
  const first = /"method":"(hlife_\d+)_x+"/.exec(rest)?.[1];
  assert.equal(first, 'hlife_00000', `the first line read after the exit (of ${rest.length} bytes): ${rest.slice(0, 120)}`);
});
