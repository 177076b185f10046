// A child SIGKILL cannot end at once: a `stat` whose FUSE request the daemon holds (faultfs "hang")
// is in an uninterruptible wait. With giveUpOnStuck, run() answers KILL_GRACE_MS after the kill all
// the same (before, it waited for the exit for as long as the daemon held it: 620 s in the doctor
// test that found it). Without it, run() still settles only once the child has ended, which the
// fencer's single flights and durable writes rely on (one stuck child per key, never a second).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KILL_GRACE_MS, run } from '../../src/shared/run.js';
import { isBrickError, type BrickError } from '../../src/shared/errors.js';
import { FaultFsPool, faultfsMissing, removeRoot, sleep, tempRoot, waitFor } from './fencer-harness.js';
import { prerequisite } from '../fixtures/network-ctx.js';

const skip = prerequisite(!faultfsMissing(), faultfsMissing() ?? '');
let root: string;
let fs: FaultFsPool;

before(async () => {
  if (skip) return;
  root = tempRoot('run-stuck');
  fs = new FaultFsPool(root, 'hung');
  await fs.mount();
  writeFileSync(join(fs.mnt, 'f'), 'x');
});
after(() => {
  if (skip) return;
  fs.cleanup();
  removeRoot(root);
});

/** The process state letter (D: uninterruptible), or undefined once it is gone (or a zombie reaped). */
function stateOf(pid: number): string | undefined {
  try {
    return /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

async function stuckFault(p: Promise<unknown>): Promise<{ e: BrickError; ms: number; pid: number }> {
  const t0 = performance.now();
  try {
    await p;
  } catch (e) {
    const ms = performance.now() - t0;
    assert.ok(isBrickError(e), String(e));
    const pid = Number(/\(pid (\d+), stuck in the kernel/.exec(e.message)?.[1]);
    assert.ok(pid > 0, `the fault names the stuck child: ${e.message}`);
    return { e, ms, pid };
  }
  assert.fail('expected a fault');
}

for (const how of ['deadline', 'abort'] as const) {
  test(`a child stuck in the kernel (FUSE request held) when run() kills it at its ${how}: the fault comes KILL_GRACE_MS later, naming it; the child ends once the kernel lets it`, { skip, timeout: 60_000 }, async () => {
    fs.setMode('hang');
    await sleep(1500); // past the kernel's FUSE attribute cache: the stat asks the daemon, which holds it
    const ac = new AbortController();
    const timer = how === 'abort' ? setTimeout(() => ac.abort(new Error('the call was cancelled')), 500) : undefined;
    const { e, ms, pid } = await stuckFault(run('stat', ['--', join(fs.mnt, 'f')], { timeoutMs: how === 'deadline' ? 500 : 30_000, signal: ac.signal, giveUpOnStuck: true }));
    clearTimeout(timer);
    assert.equal(e.fault, 'TIMEOUT');
    assert.match(e.message, new RegExp(`killed(: the call was cancelled)?; it has not ended ${KILL_GRACE_MS} ms later \\(pid ${pid}, stuck in the kernel(, in \\w+)?\\)`));
    // 500 ms + the grace, not "when the daemon answers"; generous upper bound for a loaded machine
    assert.ok(ms >= 500 + KILL_GRACE_MS - 50 && ms < 500 + KILL_GRACE_MS + 4000, `the fault ${Math.round(ms)} ms after the call`);
    assert.equal(stateOf(pid), 'D', 'the child really is still there, uninterruptible');
    fs.setMode('ok');
    await waitFor('the stuck child ends once the daemon answers', () => stateOf(pid) === undefined || stateOf(pid) === 'Z', 10_000);
  });
}

test('a child that dies at its SIGKILL: the fault waits for its exit (no grace used), as before', { skip, timeout: 30_000 }, async () => {
  const t0 = performance.now();
  await assert.rejects(run('sleep', ['20'], { timeoutMs: 300, giveUpOnStuck: true }), (e: unknown) => isBrickError(e) && e.fault === 'TIMEOUT' && !/has not ended/.test(e.message));
  assert.ok(performance.now() - t0 < 300 + KILL_GRACE_MS, 'well before the grace would end');
});

test('without giveUpOnStuck, run() settles only once the stuck child has ended (what single flights and durable writes rely on)', { skip, timeout: 60_000 }, async () => {
  fs.setMode('hang');
  await sleep(1500);
  let settled: string | undefined;
  const p = run('stat', ['--', join(fs.mnt, 'f')], { timeoutMs: 500 }).then(
    () => (settled = 'answered'),
    (e: unknown) => (settled = isBrickError(e) ? e.message : String(e)),
  );
  await sleep(500 + KILL_GRACE_MS + 1500);
  assert.equal(settled, undefined, 'still waiting for the child the kernel holds');
  fs.setMode('ok');
  await waitFor('run() settles once the child has ended', () => settled, 10_000);
  await p;
  assert.match(settled!, /no answer within 500 ms; killed$/);
});
