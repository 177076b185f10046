// The one runner (src/shared/run.ts) against real programs: output and exit codes, stdin (the input,
// or /dev/null when there is none), the deadline and the call's signal (SIGKILL, TIMEOUT), output
// over maxBuffer, a child killed by someone else, a program that is gone, no descriptors left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/shared/run.js';
import { BrickError, isBrickError } from '../../src/shared/errors.js';

async function fault(p: Promise<unknown>): Promise<BrickError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isBrickError(e), String(e));
    return e;
  }
  assert.fail('expected a fault');
}

test('stdout, stderr and the exit code; a non-zero exit is COMMAND_FAILED unless allowFailure', async () => {
  const r = await run('sh', ['-c', 'printf out; printf err >&2; exit 3'], { timeoutMs: 10_000, allowFailure: true });
  assert.deepEqual(r, { code: 3, stdout: 'out', stderr: 'err' });
  const f = await fault(run('sh', ['-c', 'printf "it broke" >&2; exit 3'], { timeoutMs: 10_000 }));
  assert.equal(f.fault, 'COMMAND_FAILED');
  assert.match(f.message, /exit 3: it broke$/);
  assert.equal(f.detail?.exitCode, 3);
});

test('input goes to stdin whole (multi-byte text intact); without input stdin is /dev/null, not a pipe', async () => {
  const text = 'héllo wörld ✓\n'.repeat(20_000); // larger than a pipe's buffer
  assert.equal((await run('cat', [], { timeoutMs: 10_000, input: text })).stdout, text);
  assert.equal((await run('readlink', ['/proc/self/fd/0'], { timeoutMs: 10_000 })).stdout, '/dev/null\n');
  assert.match((await run('readlink', ['/proc/self/fd/0'], { timeoutMs: 10_000, input: '' })).stdout, /^(pipe|socket):/);
  // A child that exits without reading its input is not an error.
  assert.equal((await run('true', [], { timeoutMs: 10_000, input: 'x'.repeat(4 << 20) })).code, 0);
});

test('the deadline kills the child (SIGKILL) and is TIMEOUT, even when a grandchild still holds its output open', async () => {
  const t0 = performance.now();
  const f = await fault(run('sh', ['-c', 'sleep 20 & wait'], { timeoutMs: 300 }));
  assert.equal(f.fault, 'TIMEOUT');
  assert.match(f.message, /no answer within 300 ms; killed/);
  assert.ok(performance.now() - t0 < 15_000, "the fault at the deadline, not when the grandchild holding the output ends");
});

/** Whether a process with this pid is alive (not a zombie). */
function alive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  return !alive(pid);
}

/** After a failed assertion: no test process left behind. */
function reap(dir: string): void {
  try {
    process.kill(Number(readFileSync(join(dir, 'pid'), 'utf8')), 'SIGKILL');
  } catch {
    /* gone, as it should be */
  }
  rmSync(dir, { recursive: true, force: true });
}

test('the deadline kills what the child started too (its process group), not only the child', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'brick-h-res-run-'));
  try {
    const f = await fault(run('sh', ['-c', `sleep 600 & echo $! > ${dir}/pid; exec sleep 600`], { timeoutMs: 500 }));
    assert.equal(f.fault, 'TIMEOUT');
    const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    assert.ok(pid > 0);
    assert.ok(await gone(pid), `the grandchild ${pid} outlived the deadline`);
  } finally {
    reap(dir);
  }
});

test('a child that exits 0 while a background child holds its output: its own answer at the deadline, the background child killed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'brick-h-res-run-'));
  try {
    const r = await run('sh', ['-c', `echo done; sleep 600 & echo $! > ${dir}/pid; exit 0`], { timeoutMs: 500 });
    assert.deepEqual(r, { code: 0, stdout: 'done\n', stderr: '' });
    const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    assert.ok(await gone(pid), `the background child ${pid} outlived the call`);
    const g = await run('sh', ['-c', `echo no >&2; sleep 600 & exit 4`], { timeoutMs: 500, allowFailure: true });
    assert.deepEqual(g, { code: 4, stdout: '', stderr: 'no\n' });
  } finally {
    reap(dir);
  }
});

test("the call's signal kills a running child (TIMEOUT, started) and an aborted signal runs nothing", async () => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error('the client went away')), 200);
  const f = await fault(run('sleep', ['30'], { timeoutMs: 60_000, signal: ac.signal }));
  assert.equal(f.fault, 'TIMEOUT');
  assert.match(f.message, /killed: the client went away/);
  assert.equal(f.detail?.started, true);
  const g = await fault(run('sh', ['-c', 'echo ran > /dev/null'], { timeoutMs: 10_000, signal: ac.signal }));
  assert.equal(g.detail?.started, false);
  assert.match(g.message, /not run: the client went away/);
});

test('a child killed by someone else, output over maxBuffer, a program that is gone', async () => {
  const k = await fault(run('sh', ['-c', 'kill -TERM $$'], { timeoutMs: 10_000, allowFailure: true }));
  assert.equal(k.fault, 'COMMAND_FAILED');
  assert.match(k.message, /killed by SIGTERM/);
  const m = await fault(run('head', ['-c', '200000', '/dev/zero'], { timeoutMs: 10_000, maxBuffer: 1000 }));
  assert.equal(m.fault, 'COMMAND_FAILED');
  assert.match(m.message, /printed more than 1000 bytes; killed/);
  const g = await fault(run('/nonexistent/brick-test-tool', [], { timeoutMs: 10_000 }));
  assert.equal(g.fault, 'UNSUPPORTED');
  assert.match(g.message, /no such program/);
});

test('out of file descriptors (EMFILE): the spawn fails as COMMAND_FAILED, the process lives on', async () => {
  // In a child node with a low RLIMIT_NOFILE, every descriptor taken: Node then makes a child
  // without stdio and reports the failure as an event, which must reach run()'s caller.
  const dir = mkdtempSync(join(tmpdir(), 'brick-run-'));
  try {
    const script = join(dir, 'emfile.mts');
    writeFileSync(
      script,
      `import { openSync } from 'node:fs';
import { run } from ${JSON.stringify(new URL('../../src/shared/run.ts', import.meta.url).href)};
await run('true', [], { timeoutMs: 10000 });
try { for (;;) openSync('/dev/null', 'r'); } catch {}
try { await run('true', [], { timeoutMs: 10000 }); console.log('ran'); } catch (e) { console.log('fault', e.fault, /EMFILE/.test(e.message)); }
await new Promise((r) => setTimeout(r, 100));
console.log('alive');
`,
    );
    const r = await run('prlimit', ['--nofile=200:200', process.execPath, '--import', 'tsx', script], { timeoutMs: 60_000, cwd: process.cwd(), env: process.env });
    assert.equal(r.stdout, 'fault COMMAND_FAILED true\nalive\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a session: lines from stdout and stderr as they come, whole however the pipe cuts them; exit once, after the last line; kill ends it', async () => {
  const s = await run.session!('sh', ['-c', 'while read -r l; do printf "o:%s\\n" "$l"; printf "e:%s\\n" "$l" >&2; done; printf "partial-then-end"; exit 7']);
  assert.ok(s.pid > 0);
  assert.match(s.command, /^\/\S*sh -c /, 'resolved to an absolute path, as run() does');
  const got: string[] = [];
  let exited: string | undefined;
  const gone = new Promise<void>((resolve) =>
    s.on({
      out: (l) => got.push(`out ${l}`),
      err: (l) => got.push(`err ${l}`),
      exit: (why) => {
        assert.equal(exited, undefined, 'exit once');
        exited = why;
        resolve();
      },
    }),
  );
  const long = 'x'.repeat(200_000); // larger than a pipe's buffer: arrives in pieces
  assert.equal(s.write(`a\n${long}\n`), true);
  for (let i = 0; i < 500 && got.length < 4; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(got.filter((l) => l.startsWith('out')), ['out o:a', `out o:${long}`]);
  assert.deepEqual(got.filter((l) => l.startsWith('err')), ['err e:a', `err e:${long}`]);
  s.kill();
  await gone;
  assert.match(exited!, /killed by SIGKILL/);
  assert.equal(s.write('b\n'), false, 'nothing is written to a child that has gone');

  // A child that ends by itself: its last lines first, then exit with the code; a line without a newline is not a line.
  const t = await run.session!('sh', ['-c', 'echo one; echo two >&2; printf tail']);
  const seen: string[] = [];
  await new Promise<void>((resolve) => t.on({ out: (l) => seen.push(l), err: (l) => seen.push(l), exit: (why) => (seen.push(why), resolve()) }));
  assert.deepEqual(seen.slice(0, 2).sort(), ['one', 'two']);
  assert.match(seen[2], /ended \(exit 0\)$/);
  assert.equal(seen.length, 3);
});
