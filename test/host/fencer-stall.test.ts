// The fencer itself stalled (SIGSTOP, sbd's test_stall_inquisitor) for longer than fence_after_s:
// the stall is the watchdog's job (it was not petted meanwhile). On resume, the ages measured across
// the fencer's own stall are not a verdict on the storage: the pool gets one fresh probe first, then
// fences if that does not verify. And a stop (SIGTERM) is carried out once, whatever follows it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BindfsPool, FencerRun, SHORT, removeRoot, sleep, tempRoot, fuseSuite } from './fencer-harness.js';

const { skip, cleanups } = fuseSuite();

async function setup(name: string) {
  const root = tempRoot(`fen3-${name}`);
  const pool = new BindfsPool(root);
  const fencer = new FencerRun(root, [{ path: pool.mnt, fence_when: 'always' }], SHORT);
  cleanups.push(() => removeRoot(root), () => pool.cleanup(), () => fencer.kill());
  await pool.mount();
  return { pool, fencer };
}

const STALL_MS = (SHORT.fence_after_s + 2) * 1000;

test('fencer frozen longer than fence_after_s, storage healthy: no fence on resume, it probes and pets again', { skip }, async () => {
  const { fencer } = await setup('stall-healthy');
  fencer.start();
  await fencer.armed();
  await sleep(1000);
  fencer.proc!.kill('SIGSTOP');
  await sleep(STALL_MS);
  const size = fencer.watchdogSize();
  fencer.proc!.kill('SIGCONT');
  await fencer.until('petting again', () => fencer.watchdogSize() > size, 3 * SHORT.probe_timeout_s * 1000);
  await sleep(SHORT.probe_timeout_s * 1000 + 1000);
  assert.equal(fencer.sysrqText(), '', `a healthy pool must not be fenced on the age of the fencer's own stall:\n${fencer.log()}`);
  assert.equal(fencer.state().pools[0].state, 'healthy');
  assert.match(fencer.log(), /stalled/);
  assert.equal(await fencer.stop(), 0);
});

test('fencer frozen longer than fence_after_s, storage frozen too: fences within probe_timeout_s + 1 s of resume, never petted', { skip }, async () => {
  const { pool, fencer } = await setup('stall-dead');
  fencer.start();
  await fencer.armed();
  await sleep(1000);
  fencer.proc!.kill('SIGSTOP');
  pool.freeze();
  await sleep(STALL_MS);
  await sleep(300); // a pet in flight when frozen lands
  const size = fencer.watchdogSize();
  const t0 = performance.now();
  fencer.proc!.kill('SIGCONT');
  await fencer.until("sysrq 'b'", () => fencer.sysrqText().includes('b'), (SHORT.probe_timeout_s + 3) * 1000, 10);
  const took = performance.now() - t0;
  assert.ok(took <= (SHORT.probe_timeout_s + 1) * 1000, `fenced ${Math.round(took)} ms after the resume; bound ${(SHORT.probe_timeout_s + 1) * 1000} ms`);
  assert.equal(fencer.watchdogSize(), size, 'an expired pool is never petted past, not even while its resume probe runs');
});
