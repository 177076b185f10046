// The REAL fencer killed (SIGKILL) or stopped (SIGTERM) while its pool hangs, and started again: the
// pool's deadline is the one the previous fencer was counting to, carried through its state file,
// never a fresh fence_after_s from the restart (rule 1), and never reached before the pool's first
// probe since the restart has had its deadline (rule 2). fence_after_s is long here (15 s) so that a
// deadline carried (fence ≈ last verified heartbeat + F) and one reset by the restart (fence ≥ the
// kill + F) are seconds apart whatever the load; the early side is exact, the late side generous.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BindfsPool, FencerRun, removeRoot, sleep, tempRoot, waitFor, fuseSuite, type FencerTimings } from './fencer-harness.js';
import { bootMonoMs } from '../../src/fencer/clock.js';

const { skip, cleanups } = fuseSuite();

const LONG: FencerTimings = { probe_interval_s: 0.5, probe_timeout_s: 2, fence_after_s: 15, watchdog_timeout_s: 4 };

async function setup(name: string) {
  const root = tempRoot(`fencer-crash-${name}`);
  const pool = new BindfsPool(root);
  const f = new FencerRun(root, [{ path: pool.mnt, fence_when: 'always' }], LONG, { startup_window_s: 60 });
  cleanups.push(() => removeRoot(root), () => pool.cleanup(), () => f.kill());
  await pool.mount();
  return { root, pool, f };
}

/**
 * The pool's last verified heartbeat on CLOCK_MONOTONIC (ms; this process reads the same clock,
 * clock.bootMonoMs) by a state: its ages are as of its written_at_mono_ms.
 */
function lastOkBootMs(s: any): number {
  return s.written_at_mono_ms - s.pools[0].last_ok_age_s * 1000;
}

/** Arm, freeze the pool, and wait until the fencer's state says the heartbeat is frozen (two states agree). */
async function armAndFreeze(pool: BindfsPool, f: FencerRun): Promise<number> {
  f.start();
  await f.armed();
  pool.freeze();
  // A probe that began before the freeze may still verify: wait until a state no younger than a
  // probe deadline after the freeze names the last verified heartbeat.
  const frozeAt = bootMonoMs();
  const s = await waitFor('a state written a probe deadline after the freeze', () => {
    const st = f.state();
    return st && st.written_at_mono_ms > frozeAt + LONG.probe_timeout_s * 1000 + 500 && st;
  }, 15_000);
  return lastOkBootMs(s);
}

test('a clean stop writes the pool\'s ages as of its write, as every tick does: the last verified heartbeat it hands to a restart is the one the loop was counting from, not up to a tick later', { skip }, async () => {
  const { pool, f } = await setup('stop-ages');
  const lastOk = await armAndFreeze(pool, f);
  // Every state the loop writes while the pool hangs names the same heartbeat.
  for (let i = 0; i < 8; i++) {
    await sleep(130);
    const s = f.state();
    assert.ok(Math.abs(lastOkBootMs(s) - lastOk) < 25, `a tick's state names a heartbeat ${Math.round(lastOkBootMs(s) - lastOk)} ms off the others`);
  }
  // SIGTERM late in a tick (ticks are 250 ms): the stop writes the state from the last tick's verdict.
  const last = f.state().written_at_mono_ms;
  await waitFor('a fresh tick', () => f.state()?.written_at_mono_ms > last, 2000, 2);
  const tickAt = f.state().written_at_mono_ms;
  await waitFor('200 ms into the tick', () => bootMonoMs() >= tickAt + 200, 2000, 1);
  assert.equal(await f.stop(), 0);
  const s = f.state();
  assert.equal(s.clean_stop, true);
  const shift = lastOkBootMs(s) - lastOk;
  assert.ok(Math.abs(shift) < 25, `the clean stop's state names a last verified heartbeat ${Math.round(shift)} ms after the one the loop counted from: a restart would fence that much late`);
});
