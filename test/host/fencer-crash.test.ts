// The REAL fencer killed (SIGKILL) or stopped (SIGTERM) while its pool hangs, and started again: the
// pool's deadline is the one the previous fencer was counting to, carried through its state file,
// never a fresh fence_after_s from the restart (rule 1), and never reached before the pool's first
// probe since the restart has had its deadline (rule 2). fence_after_s is long here (15 s) so that a
// deadline carried (fence ≈ last verified heartbeat + F) and one reset by the restart (fence ≥ the
// kill + F) are seconds apart whatever the load; the early side is exact, the late side generous.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { BindfsPool, FencerRun, SHORT, faultfsMissing, fencerWithFaultyMarkerDir, fuseMissing, removeRoot, sleep, tempRoot, waitFor, fuseSuite, type FencerTimings } from './fencer-harness.js';
import { bootMonoMs } from '../../src/fencer/clock.js';

const { skip, cleanups } = fuseSuite(fuseMissing() ?? faultfsMissing());

const LONG: FencerTimings = { probe_interval_s: 0.5, probe_timeout_s: 2, fence_after_s: 15, watchdog_timeout_s: 4 };
const F = LONG.fence_after_s * 1000;
/** How late a carried fence may come on a loaded 2-core machine: well below F, so a reset deadline cannot pass for it. */
const LATE_SLACK_MS = 4000;

async function setup(name: string) {
  const root = tempRoot(`fencer-crash-${name}`);
  const pool = new BindfsPool(root);
  const f = new FencerRun(root, [{ path: pool.mnt, fence_when: 'always' }], LONG, { startup_window_s: 60 });
  cleanups.push(() => removeRoot(root), () => pool.cleanup(), () => f.kill());
  await pool.mount();
  return { root, pool, f };
}

function since(f: FencerRun, from: number): string {
  return f.lines.slice(from).join('\n');
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

/**
 * Start the fencer and wait for its fence; every pet it made after `expiryBootMs` (CLOCK_MONOTONIC)
 * is counted. The stand-in watchdog is emptied first: its size is then this start's pets.
 */
async function startUntilFence(f: FencerRun, expiryBootMs: number): Promise<{ fencedAt: number; startedAt: number; petsAfterExpiry: number; log: string }> {
  writeFileSync(f.watchdog, '');
  const from = f.lines.length;
  const startedAt = bootMonoMs();
  f.start();
  let petsAtExpiry = -1;
  const ok = await waitFor('the fence', () => {
    if (petsAtExpiry < 0 && bootMonoMs() >= expiryBootMs) petsAtExpiry = f.watchdogSize();
    return f.sysrqText().includes('b');
  }, 60_000, 5).catch(() => false);
  const fencedAt = bootMonoMs();
  assert.ok(ok, `never fenced (exit ${f.proc!.exitCode}):\n${since(f, from)}`);
  return { fencedAt, startedAt, petsAfterExpiry: petsAtExpiry < 0 ? 0 : f.watchdogSize() - petsAtExpiry, log: since(f, from) };
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

test('SIGKILL while the pool hangs, at points spread over the probe/tick cycle, then an immediate restart: the fence comes at the deadline the crashed fencer was counting to (never before it, never a fence_after_s later), and nothing is petted past it', { skip, timeout: 300_000 }, async (t) => {
  // Kill points after the freeze is confirmed: spread over a few ticks and probe intervals
  // (0.25 s and 0.5 s), so some land mid-write of the state file and some mid-probe-start.
  for (const extraMs of [0, 137, 389]) {
    const { pool, f } = await setup(`kill-${extraMs}`);
    const lastOk = await armAndFreeze(pool, f);
    await sleep(extraMs);
    f.kill();
    await f.exit;
    const expiry = lastOk + F;
    const r = await startUntilFence(f, expiry);
    assert.match(r.log, /stays armed from the previous fencer/);
    // Rule 2: never before this start's first probe deadline; rule 1: never before the expiry itself either.
    assert.ok(r.fencedAt >= expiry - 5, `fenced ${Math.round(expiry - r.fencedAt)} ms before the carried expiry (kill +${extraMs} ms):\n${r.log}`);
    assert.ok(r.fencedAt >= r.startedAt + LONG.probe_timeout_s * 1000, `fenced before the restart's first probe deadline:\n${r.log}`);
    // Rule 1: at the carried deadline (the restart took a few seconds of it), not F after the restart.
    assert.ok(r.fencedAt <= expiry + LATE_SLACK_MS, `fenced ${Math.round(r.fencedAt - expiry)} ms after the carried expiry (restarted ${Math.round(r.startedAt - lastOk)} ms after the last verified heartbeat; a reset deadline would be ≥ ${Math.round(r.startedAt + F - expiry)} ms):\n${r.log}`);
    assert.equal(r.petsAfterExpiry, 0, `petted past the carried expiry:\n${r.log}`);
    t.diagnostic(`kill +${extraMs} ms: restarted ${Math.round(r.startedAt - lastOk)} ms after the last verified heartbeat, fenced ${Math.round(r.fencedAt - expiry)} ms after the carried expiry`);
    f.kill();
    await f.exit;
    pool.cleanup();
  }
});

test('two crashes in a row while the pool hangs (the second after the restarted fencer wrote its own state from the inherited age): the third fencer still fences at the first fencer\'s deadline', { skip, timeout: 180_000 }, async (t) => {
  const { pool, f } = await setup('two-crashes');
  const lastOk = await armAndFreeze(pool, f);
  f.kill();
  await f.exit;
  const firstPid = f.state().pid;
  // The second fencer: killed once it has written states of its own (the age it inherited, aged on).
  const from = f.lines.length;
  f.start();
  const s2 = await waitFor('the second fencer\'s own state', () => {
    const s = f.state();
    return s && s.pid === f.proc!.pid && s.pid !== firstPid && s.pools[0]?.armed && s;
  }, 30_000, 5).catch(() => undefined);
  assert.ok(s2, `the second fencer wrote no state with the pool armed:\n${since(f, from)}`);
  assert.ok(Math.abs(lastOkBootMs(s2) - lastOk) < 25, `the second fencer's state names a heartbeat ${Math.round(lastOkBootMs(s2) - lastOk)} ms off the first's`);
  await sleep(300);
  f.kill();
  await f.exit;
  const expiry = lastOk + F;
  const r = await startUntilFence(f, expiry);
  assert.match(r.log, new RegExp(`stays armed from the previous fencer \\(pid ${s2.pid}\\)`));
  assert.ok(r.fencedAt >= expiry - 5, `fenced ${Math.round(expiry - r.fencedAt)} ms before the carried expiry:\n${r.log}`);
  assert.ok(r.fencedAt <= expiry + LATE_SLACK_MS, `fenced ${Math.round(r.fencedAt - expiry)} ms after the carried expiry:\n${r.log}`);
  assert.equal(r.petsAfterExpiry, 0, `petted past the carried expiry:\n${r.log}`);
  t.diagnostic(`third start ${Math.round(r.startedAt - lastOk)} ms after the last verified heartbeat, fenced ${Math.round(r.fencedAt - expiry)} ms after the carried expiry`);
});

test('SIGKILL between the fence decision and the fence action (the marker still being written to a hung marker_dir): the next fencer fences again at its first probe deadline and never pets', { skip, timeout: 180_000 }, async () => {
  const { pool, markerFs, f } = await fencerWithFaultyMarkerDir('fencer-crash-marker', cleanups);
  const lastOk = await armAndFreeze(pool, f);
  // The action waits on the marker up to MARKER_DEADLINE_MS: the kill lands in that wait.
  markerFs.setMode('hang');
  await waitFor('the fence decided', () => f.lines.some((l) => l.includes('FENCING this host')), 20_000, 1);
  f.kill();
  await f.exit;
  assert.equal(f.sysrqText(), '', 'killed before the fence action, as meant');
  // The disk answers again: the dead fencer's marker write (its children) may land now or not.
  markerFs.setMode('ok');
  const r = await startUntilFence(f, lastOk + SHORT.fence_after_s * 1000);
  assert.match(r.log, /stays armed from the previous fencer/);
  assert.ok(r.fencedAt >= r.startedAt + SHORT.probe_timeout_s * 1000, `fenced before the restart's first probe deadline:\n${r.log}`);
  assert.equal(f.watchdogSize(), 0, `the restart petted over an expiry the dead fencer had already decided to fence for:\n${r.log}`);
});
