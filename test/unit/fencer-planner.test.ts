// The fencer's decisions (src/fencer/planner.ts), pure: every timeout at −ε, =, +ε.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inherit, planTick, resumeHoldUntil, STALL_GAP_MS, SUSPEND_NOISE_MS, vmAnswerAcrossSuspend, inUseNow, logRepeatNow, shouldLogRepeat, withKillVms, REPEAT_LOG_MS, type Facts, type PoolFacts, type PreviousRecord, type VmFacts } from '../../src/fencer/planner.js';
import type { Timing } from '../../src/fencer/pool-health.js';

const T: Timing = { probeIntervalMs: 5000, probeTimeoutMs: 10000, fenceAfterMs: 30000 };
const E = 1; // ε, ms
const vmAnswered = (map: Map<string, boolean> | 'unknown' = 'unknown', atMs = 0): VmFacts => ({ inFlight: false, never: false, refreshMs: 5000, timeoutMs: 10_000, answer: { atMs, map } });
const vmNever: VmFacts = { inFlight: false, never: true, refreshMs: 5000, timeoutMs: 10_000 };
const pool = (o: Partial<PoolFacts> = {}): PoolFacts => ({
  path: '/p',
  fenceWhen: 'in-use',
  lastOkMs: 0,
  firstProbeDeadlineMs: T.probeTimeoutMs,
  probeInFlight: false,
  lastProbeStartMs: 0,
  ...o,
});
const facts = (o: Partial<Facts> = {}): Facts => ({ nowMs: 0, timing: T, action: 'reboot', watchdog: true, fenced: null, pools: [pool()], vm: vmNever, ...o });

test('pet and fence at fence_after_s: −ε pets, = and +ε fence and stop petting', () => {
  const p = [pool({ path: '/a' }), pool({ path: '/b', lastOkMs: 20_000 }), pool({ path: '/c', lastOkMs: undefined })];
  let plan = planTick(facts({ pools: p, nowMs: 30_000 - E }));
  assert.equal(plan.pet, true);
  assert.equal(plan.fence, undefined);
  for (const now of [30_000, 30_000 + E]) {
    plan = planTick(facts({ pools: p, nowMs: now }));
    assert.equal(plan.pet, false, `${now}`);
    assert.equal(plan.fence?.pool.path, '/a');
    assert.equal(plan.fence?.action, 'reboot');
  }
  plan = planTick(facts({ pools: p, nowMs: 1000, fenced: '/a' }));
  assert.equal(plan.pet, false, 'never pet again after a fence');
  assert.equal(plan.fence, undefined, 'one fence');
  plan = planTick(facts({ pools: [pool()], nowMs: 40_000, vm: vmAnswered(new Map([['/p', false]]), 39_000) }));
  assert.equal(plan.pet, true, 'a dead idle pool does not gate the watchdog');
  assert.equal(plan.pools[0].state, 'dead');
  assert.equal(planTick(facts({ watchdog: false, nowMs: 1 })).pet, false, 'no watchdog, nothing to pet');
});

test('log-only: keeps petting, reports one fence, re-arms once no pool expires (the reset is a planner decision)', () => {
  let plan = planTick(facts({ action: 'log-only', nowMs: 30_000 }));
  assert.equal(plan.pet, true);
  assert.equal(plan.fence?.pool.path, '/p');
  plan = planTick(facts({ action: 'log-only', nowMs: 31_000, fenced: '/p' }));
  assert.equal(plan.fence, undefined, 'reported once');
  assert.equal(plan.clearFenced, false);
  plan = planTick(facts({ action: 'log-only', nowMs: 31_000, fenced: '/p', pools: [pool({ lastOkMs: 30_500 })] }));
  assert.equal(plan.clearFenced, true, 'the pool verified again: the next expiry is reported again');
  // A real action never clears.
  assert.equal(planTick(facts({ nowMs: 31_000, fenced: '/p', pools: [pool({ lastOkMs: 30_500 })] })).clearFenced, false);
  // An action this planner does not know (a new kind) resets the host like reboot: no more pets.
  assert.equal(planTick(facts({ action: 'kill-vms', nowMs: 30_000 })).pet, false);
});

test('VM usage goes stale at 3 refreshes + the query timeout: −ε still counts, = still counts, +ε is unknown', () => {
  const vm = vmAnswered(new Map([['/p', false]]), 1000);
  const limit = 1000 + 3 * 5000 + 10_000;
  assert.equal(inUseNow('/p', vm, limit - E), false);
  assert.equal(inUseNow('/p', vm, limit), false);
  assert.equal(inUseNow('/p', vm, limit + E), 'unknown');
  assert.equal(inUseNow('/other', vm, 1000), 'unknown', 'a pool the answer does not cover is unknown');
  // Stale usage counts as used: an old "idle" answer does not keep an expired pool from fencing.
  const plan = planTick(facts({ nowMs: limit + E, pools: [pool({ lastOkMs: limit + E - 30_000 })], vm }));
  assert.equal(plan.fence?.pool.path, '/p');
});

test('probes and VM queries are due at the interval: −ε not yet, = and +ε now; never while one is in flight', () => {
  const p = pool({ lastProbeStartMs: 1000 });
  assert.deepEqual(planTick(facts({ pools: [p], nowMs: 6000 - E })).startProbes, []);
  assert.deepEqual(planTick(facts({ pools: [p], nowMs: 6000 })).startProbes, ['/p']);
  assert.deepEqual(planTick(facts({ pools: [p], nowMs: 6000 + E })).startProbes, ['/p']);
  assert.deepEqual(planTick(facts({ pools: [{ ...p, probeInFlight: true }], nowMs: 60_000 })).startProbes, []);
  assert.deepEqual(planTick(facts({ pools: [pool({ lastProbeStartMs: undefined })], nowMs: 0 })).startProbes, ['/p'], 'the first probe at once');
  const vm = vmAnswered('unknown', 1000);
  assert.equal(planTick(facts({ vm, nowMs: 6000 - E })).queryVms, false);
  assert.equal(planTick(facts({ vm, nowMs: 6000 })).queryVms, true);
  assert.equal(planTick(facts({ vm: { ...vm, inFlight: true }, nowMs: 60_000 })).queryVms, false);
  assert.equal(planTick(facts({ vm, pools: [], nowMs: 60_000 })).queryVms, false, 'no pools, no query');
});

test('start-up hold: an inherited expired pool fences only at its first probe deadline (−ε held, = and +ε fence), and is never petted meanwhile', () => {
  // Inherited 100 s old, the first probe of this start began at 0 and has until 10 000.
  const inh = pool({ lastOkMs: undefined, inheritedLastOkMs: -100_000, firstProbeDeadlineMs: 10_000 });
  let plan = planTick(facts({ pools: [inh], nowMs: 10_000 - E }));
  assert.equal(plan.pools[0].state, 'expired');
  assert.equal(plan.pools[0].held, true);
  assert.equal(plan.fence, undefined);
  assert.equal(plan.pet, false, 'an expiry the previous fencer left is not petted past');
  for (const now of [10_000, 10_000 + E]) assert.equal(planTick(facts({ pools: [inh], nowMs: now })).fence?.pool.path, '/p', `${now}`);
  // Before the first probe has even started: held.
  assert.equal(planTick(facts({ pools: [{ ...inh, firstProbeDeadlineMs: undefined }], nowMs: 50_000 })).fence, undefined);
  // The first probe verified: fresh, petted.
  plan = planTick(facts({ pools: [{ ...inh, lastOkMs: 2000 }], nowMs: 9000 }));
  assert.equal(plan.pools[0].state, 'healthy');
  assert.equal(plan.pet, true);
  // Age lost (the lease only): expired at once, held until the first probe deadline.
  const lost = pool({ lastOkMs: undefined, inheritedLastOkMs: null, firstProbeDeadlineMs: 10_000 });
  assert.equal(planTick(facts({ pools: [lost], nowMs: 10_000 - E })).fence, undefined);
  assert.equal(planTick(facts({ pools: [lost], nowMs: 10_000 })).fence?.pool.path, '/p');
  assert.equal(planTick(facts({ pools: [lost], nowMs: 0 })).pet, false);
  // A fresh pool (nothing inherited, never verified) neither fences nor gates the watchdog.
  plan = planTick(facts({ pools: [pool({ lastOkMs: undefined })], nowMs: 1e6 }));
  assert.deepEqual([plan.pools[0].state, plan.pet, plan.fence], ['unverified', true, undefined]);
});

test('start-up hold: an in-use pool waits for the first VM answer, up to the query timeout (−ε held, = fences)', () => {
  const inh = pool({ lastOkMs: undefined, inheritedLastOkMs: -100_000, firstProbeDeadlineMs: 10_000 });
  const waiting: VmFacts = { inFlight: true, never: false, refreshMs: 5000, timeoutMs: 15_000, firstStartMs: 0 };
  assert.equal(planTick(facts({ pools: [inh], vm: waiting, nowMs: 15_000 - E })).fence, undefined);
  assert.equal(planTick(facts({ pools: [inh], vm: waiting, nowMs: 15_000 })).fence?.pool.path, '/p');
  // The answer says idle: dead, no fence, pets again.
  const idle = planTick(facts({ pools: [inh], vm: { ...waiting, inFlight: false, answer: { atMs: 11_000, map: new Map([['/p', false]]) } }, nowMs: 11_000 }));
  assert.deepEqual([idle.pools[0].state, idle.fence, idle.pet], ['dead', undefined, true]);
  // fence_when = always does not wait for VMs.
  assert.equal(planTick(facts({ pools: [{ ...inh, fenceWhen: 'always' }], vm: waiting, nowMs: 10_000 })).fence?.pool.path, '/p');
});

const ctx = { pid: 200, bootId: 'boot-1', nowWallMs: 1_000_000, bootWallMs: 0, nowMonoMs: 50_000, fenceAfterMs: 30_000 };
const rec = (o: Partial<PreviousRecord> = {}): PreviousRecord => ({ pid: 100, bootId: 'boot-1', writtenAtMs: 990_000, clean: false, armed: [{ path: '/p', lastOkAgeS: 2 }], ...o });

test('inherit: a crash carries the age on by the wall-clock gap; a clean stop fence_after_s ago or more or another boot carry nothing; our own pid (come round again) carries', () => {
  assert.deepEqual(inherit(['/p'], rec(), undefined, ctx), [{ path: '/p', lastOkMs: 50_000 - 12_000, fromPid: 100, ageS: 12 }]);
  const F = ctx.fenceAfterMs;
  assert.deepEqual(inherit(['/p'], rec({ clean: true, writtenAtMs: ctx.nowWallMs - F }), undefined, ctx), [], 'clean stop F ago: no age forward');
  assert.deepEqual(inherit(['/p'], rec({ clean: true, writtenAtMs: ctx.nowWallMs - F - E }), undefined, ctx), [], 'clean stop F + ε ago: no age forward');
  assert.deepEqual(inherit(['/p'], rec({ bootId: 'boot-0' }), undefined, ctx), [], 'another boot');
  // The crashed fencer's pid came round to this start (pid_max wrapped): its expiry is not dropped.
  assert.deepEqual(inherit(['/p'], rec({ pid: 200 }), undefined, ctx), [{ path: '/p', lastOkMs: 50_000 - 12_000, fromPid: 200, ageS: 12 }], 'our own pid');
  assert.deepEqual(inherit(['/p'], undefined, rec({ pid: 200, armed: [{ path: '/p', lastOkAgeS: null }] }), ctx), [{ path: '/p', lastOkMs: null, fromPid: 200, ageS: null }], 'our own pid, the lease only');
  assert.deepEqual(inherit(['/q'], rec(), undefined, ctx), [], 'a pool no longer configured');
  assert.deepEqual(inherit(['/p'], rec({ armed: [] }), undefined, ctx), [], 'nothing armed');
  // Records without a boot id: by wall clock against the boot time.
  assert.equal(inherit(['/p'], rec({ bootId: undefined, writtenAtMs: -1 }), undefined, ctx).length, 0);
});

test('inherit: the lease keeps a pool armed when the state file is gone; the latest record decides clean or not', () => {
  const lease = rec({ writtenAtMs: 900_000, armed: [{ path: '/p', lastOkAgeS: null }] });
  assert.deepEqual(inherit(['/p'], undefined, lease, ctx), [{ path: '/p', lastOkMs: null, fromPid: 100, ageS: null }], 'state_dir removed: armed, age lost');
  assert.equal(inherit(['/p'], rec(), lease, ctx)[0].ageS, 12, 'the state file gives the age');
  assert.deepEqual(inherit(['/p'], rec({ writtenAtMs: 800_000 }), { ...lease, clean: true }, ctx), [], 'a later clean stop in the lease wins over an old state file');
  assert.deepEqual(inherit(['/p'], rec({ clean: true, writtenAtMs: 1_000_000 - 30_000 }), { ...lease, writtenAtMs: 800_000 }, ctx), [], 'a later clean state (F ago) wins over an older lease');
  assert.deepEqual(inherit(['/p'], rec({ pid: 150 }), lease, ctx)[0].fromPid, 150, 'the latest fencer decides');
});

test('inherit: a clean stop followed by a start within fence_after_s is a restart: the armed pools carry on (−ε carries, = does not)', () => {
  const F = ctx.fenceAfterMs;
  // systemctl restart (an upgrade's try-restart) while the pool hangs: its age, 2 s at the stop, goes on.
  assert.deepEqual(inherit(['/p'], rec({ clean: true, writtenAtMs: ctx.nowWallMs - 1000 }), undefined, ctx), [{ path: '/p', lastOkMs: 50_000 - 3000, fromPid: 100, ageS: 3 }]);
  assert.equal(inherit(['/p'], rec({ clean: true, writtenAtMs: ctx.nowWallMs - F + E }), undefined, ctx).length, 1, 'F − ε after the stop');
  assert.equal(inherit(['/p'], rec({ clean: true, writtenAtMs: ctx.nowWallMs - F }), undefined, ctx).length, 0, 'F after the stop');
  // The clean lease alone (state_dir gone): armed, age lost.
  const lease = rec({ clean: true, writtenAtMs: ctx.nowWallMs - 1000, armed: [{ path: '/p', lastOkAgeS: null }] });
  assert.deepEqual(inherit(['/p'], undefined, lease, ctx), [{ path: '/p', lastOkMs: null, fromPid: 100, ageS: null }]);
  // A clean stop with nothing armed carries nothing, however soon the start.
  assert.deepEqual(inherit(['/p'], rec({ clean: true, writtenAtMs: ctx.nowWallMs - 1000, armed: [] }), undefined, ctx), []);
});

test('inherit: the gap since a record of this boot is CLOCK_MONOTONIC\'s, whatever the wall clock did; other records fall back to the wall clock', () => {
  const c = { ...ctx, nowBootMonoMs: 7_000_000 };
  // Written 10 s ago by the monotonic clock; the wall clock stepped back 60 s since (it says −50 s).
  const stepped = rec({ writtenAtMs: ctx.nowWallMs + 50_000, writtenAtMonoMs: 6_990_000 });
  assert.equal(inherit(['/p'], stepped, undefined, c)[0].ageS, 12, '2 s at the write + 10 s since');
  // Stepped forward 60 s: the wall clock says 70 s, the pool is 12 s old.
  assert.equal(inherit(['/p'], rec({ writtenAtMs: ctx.nowWallMs - 70_000, writtenAtMonoMs: 6_990_000 }), undefined, c)[0].ageS, 12);
  // A clean stop 10 s ago by the monotonic clock is a restart even when the wall clock says 70 s (> F).
  assert.equal(inherit(['/p'], rec({ clean: true, writtenAtMs: ctx.nowWallMs - 70_000, writtenAtMonoMs: 6_990_000 }), undefined, c).length, 1);
  assert.equal(inherit(['/p'], rec({ clean: true, writtenAtMs: ctx.nowWallMs, writtenAtMonoMs: 7_000_000 - c.fenceAfterMs }), undefined, c).length, 0, 'F ago by the monotonic clock');
  // The latest record is the one written last by the monotonic clock (here the lease, clean).
  const lease = rec({ clean: true, writtenAtMs: ctx.nowWallMs - 90_000, writtenAtMonoMs: 6_995_000 - c.fenceAfterMs, armed: [{ path: '/p', lastOkAgeS: null }] });
  assert.deepEqual(inherit(['/p'], rec({ writtenAtMs: ctx.nowWallMs, writtenAtMonoMs: 6_990_000 - c.fenceAfterMs }), lease, c), []);
  // No stamp, or one from another boot id: the wall clock.
  assert.equal(inherit(['/p'], rec(), undefined, c)[0].ageS, 12);
  assert.equal(inherit(['/p'], rec({ bootId: undefined, writtenAtMonoMs: 1 }), undefined, { ...c, bootId: undefined })[0].ageS, 12);
});

test('inherit across a host suspend: the growth of the boot offset (CLOCK_BOOTTIME − CLOCK_MONOTONIC) since the write is added to the gap (SUSPEND_NOISE_MS: −ε and = are noise, +ε counts); without both stamps, CLOCK_MONOTONIC alone', () => {
  const c = { ...ctx, nowBootMonoMs: 7_000_000, nowBootOffsetMs: 500_000 };
  // Crashed 10 s ago by CLOCK_MONOTONIC, pool 2 s old then; the host slept 25 s in between (offset 475 000 → 500 000).
  const r = rec({ writtenAtMs: ctx.nowWallMs, writtenAtMonoMs: 6_990_000, bootOffsetMs: 475_000 });
  assert.equal(inherit(['/p'], r, undefined, c)[0].ageS, 37, '2 s + 10 s + 25 s asleep');
  for (const grew of [SUSPEND_NOISE_MS - E, SUSPEND_NOISE_MS])
    assert.equal(inherit(['/p'], { ...r, bootOffsetMs: 500_000 - grew }, undefined, c)[0].ageS, 12, `${grew} ms is /proc/uptime's steps`);
  assert.equal(inherit(['/p'], { ...r, bootOffsetMs: 500_000 - SUSPEND_NOISE_MS - E }, undefined, c)[0].ageS, 12 + (SUSPEND_NOISE_MS + E) / 1000);
  assert.equal(inherit(['/p'], { ...r, bootOffsetMs: 600_000 }, undefined, c)[0].ageS, 12, 'an offset that shrank (another namespace\'s record) adds nothing');
  assert.equal(inherit(['/p'], { ...r, bootOffsetMs: undefined }, undefined, c)[0].ageS, 12, 'a record from before the stamp');
  assert.equal(inherit(['/p'], r, undefined, { ...c, nowBootOffsetMs: undefined })[0].ageS, 12, '/proc/uptime unreadable now');
  // A clean stop 10 s before by CLOCK_MONOTONIC but 35 s before in real time (F = 30 s) is no restart: nothing carried.
  assert.deepEqual(inherit(['/p'], { ...r, clean: true }, undefined, c), []);
  assert.equal(inherit(['/p'], { ...r, clean: true, bootOffsetMs: 500_000 - 19_999 }, undefined, c).length, 1, 'under F with the suspend: a restart');
  // The record written last is still told by CLOCK_MONOTONIC when both were written in one wake period.
  const lease = rec({ clean: true, writtenAtMs: ctx.nowWallMs, writtenAtMonoMs: 6_995_000, bootOffsetMs: 475_000, armed: [{ path: '/p', lastOkAgeS: null }] });
  assert.deepEqual(inherit(['/p'], r, lease, c), [], 'the lease is the latest word: a clean stop 30 s ago in real time');
});

test('repeated failures are logged on change, then at most once a minute (−ε quiet, = logs)', () => {
  assert.equal(shouldLogRepeat({ msg: null, atMs: -Infinity }, 'ENOSPC', 0), true);
  assert.equal(shouldLogRepeat({ msg: 'ENOSPC', atMs: 0 }, 'ENOSPC', REPEAT_LOG_MS - E), false);
  assert.equal(shouldLogRepeat({ msg: 'ENOSPC', atMs: 0 }, 'ENOSPC', REPEAT_LOG_MS), true);
  assert.equal(shouldLogRepeat({ msg: 'ENOSPC', atMs: 0 }, 'EROFS', 1), true);
});

test('logRepeatNow: the daemon\'s failure logs (pet, state, lease, lock, runtime pools) note what they said and when', () => {
  const prev = { msg: null as string | null, atMs: -Infinity };
  assert.equal(logRepeatNow(prev, 'ENOSPC', 5), true);
  assert.deepEqual({ ...prev }, { msg: 'ENOSPC', atMs: 5 });
  assert.equal(logRepeatNow(prev, 'ENOSPC', 5 + REPEAT_LOG_MS - E), false);
  assert.deepEqual({ ...prev }, { msg: 'ENOSPC', atMs: 5 }, 'a quiet repeat does not move the minute');
  assert.equal(logRepeatNow(prev, 'EROFS', 6), true, 'another error is said at once');
  assert.equal(logRepeatNow(prev, 'EROFS', 6 + REPEAT_LOG_MS), true);
  assert.deepEqual({ ...prev }, { msg: 'EROFS', atMs: 6 + REPEAT_LOG_MS });
  prev.msg = null; // it worked again
  assert.equal(logRepeatNow(prev, 'EROFS', 7 + REPEAT_LOG_MS), true, 'the same error after a success is said again');
});

test('kill-vms: the controller decides the reset; petting goes on while it kills, never past a held inherited expiry', () => {
  const plan = planTick(facts({ action: 'kill-vms', nowMs: 30_000, pools: [pool({ path: '/a' }), pool({ path: '/b', lastProbeStartMs: 0 })] }));
  assert.equal(plan.fence?.pool.path, '/a');
  let k = withKillVms(plan, { hold: new Set(['/a']) }, true);
  assert.deepEqual([k.pet, k.fence, k.startProbes], [true, undefined, ['/b']], 'killing: petted, no reset, /a probes held');
  k = withKillVms(plan, { reset: { pool: '/a', reason: 'a holder survived' }, hold: new Set() }, true);
  assert.deepEqual([k.pet, k.fence?.pool.path, k.fence?.action, k.fence?.why], [false, '/a', 'kill-vms', 'a holder survived']);
  const held = planTick(facts({ action: 'kill-vms', nowMs: 1000, pools: [pool({ lastOkMs: undefined, inheritedLastOkMs: null, firstProbeDeadlineMs: 10_000 })] }));
  assert.equal(withKillVms(held, { hold: new Set() }, true).pet, false);
});

test('start-up window (fencing.md rule 9): a pool not verified by startedMs + window is overdue at = and +ε, not at −ε; it fails start-up only when it guards VMs', () => {
  const W = 120_000;
  const startup = { startedMs: 1000, windowMs: W };
  const at = 1000 + W;
  const unverified = (o: Partial<PoolFacts> = {}) => pool({ lastOkMs: undefined, firstProbeDeadlineMs: 1000 + T.probeTimeoutMs, lastProbeStartMs: at - 1000, probeInFlight: true, ...o });
  // fence_when = "always": −ε still waits (petting), = and +ε fail start-up and stop petting.
  let plan = planTick(facts({ startup, nowMs: at - E, pools: [unverified({ fenceWhen: 'always' })] }));
  assert.equal(plan.pools[0].overdue, false);
  assert.equal(plan.failStartup, undefined);
  assert.equal(plan.pet, true, 'an unverified pool inside the window is petted over (it was never armed)');
  for (const now of [at, at + E]) {
    plan = planTick(facts({ startup, nowMs: now, pools: [unverified({ fenceWhen: 'always' })] }));
    assert.equal(plan.pools[0].overdue, true, `${now}`);
    assert.deepEqual(plan.failStartup, { pools: ['/p'] }, `${now}`);
    assert.equal(plan.pet, false, 'no pet on the way out');
    assert.equal(plan.fence, undefined, 'never armed: no fence');
  }
  // fence_when = "in-use": a VM uses it (or usage unknown, which counts as used) → fail; no VM uses it → only overdue.
  for (const [vm, fails] of [[vmAnswered(new Map([['/p', true]]), at), true], [vmNever, true], [vmAnswered(new Map([['/p', false]]), at), false]] as const) {
    plan = planTick(facts({ startup, nowMs: at + E, vm, pools: [unverified()] }));
    assert.equal(plan.pools[0].overdue, true);
    assert.deepEqual(plan.failStartup, fails ? { pools: ['/p'] } : undefined);
    assert.equal(plan.pet, !fails, 'an idle overdue pool keeps the fencer running and petting');
  }
  // A pool verified once in this start is never overdue; nor is any pool without a start-up fact.
  plan = planTick(facts({ startup, nowMs: at + E, pools: [pool({ lastOkMs: 2000, fenceWhen: 'always' })] }));
  assert.equal(plan.pools[0].overdue, false);
  assert.equal(planTick(facts({ nowMs: at + E, pools: [unverified({ fenceWhen: 'always' })] })).failStartup, undefined);
  // A fence under way (or a pool that fences now) takes precedence over the exit.
  plan = planTick(facts({ startup, nowMs: at + E, fenced: '/q', pools: [unverified({ fenceWhen: 'always' })] }));
  assert.equal(plan.failStartup, undefined);
  const both = [pool({ path: '/q', lastOkMs: 0, fenceWhen: 'always' }), unverified({ fenceWhen: 'always' })];
  plan = planTick(facts({ startup, nowMs: at + E, pools: both }));
  assert.equal(plan.fence?.pool.path, '/q');
  assert.equal(plan.failStartup, undefined);
  // kill-vms keeps petting over its own expiry, never over a failed start-up.
  plan = planTick(facts({ startup, action: 'kill-vms', nowMs: at, pools: [unverified({ fenceWhen: 'always' })] }));
  assert.equal(withKillVms(plan, { hold: new Set() }, true).pet, false);
});

test('resume hold (the fencer itself stalled): an expiry measured across the stall fences only at resumeHoldUntilMs (−ε held, = and +ε fence), never petted meanwhile', () => {
  // Last verified at 0, the loop stalled until 40 000, the hold runs to 52 000.
  const p = pool({ resumeHoldUntilMs: 52_000, lastProbeStartMs: 0 });
  const plan = planTick(facts({ pools: [p], nowMs: 52_000 - E }));
  assert.equal(plan.pools[0].state, 'expired');
  assert.equal(plan.pools[0].held, true);
  assert.equal(plan.fence, undefined);
  assert.equal(plan.pet, false);
  for (const now of [52_000, 52_000 + E]) assert.equal(planTick(facts({ pools: [p], nowMs: now })).fence?.pool.path, '/p', `${now}`);
  // The fresh probe (started at 40 250) verified: healthy, petted.
  const ok = planTick(facts({ pools: [{ ...p, lastOkMs: 40_250 }], nowMs: 42_000 }));
  assert.deepEqual([ok.pools[0].state, ok.pet, ok.fence], ['healthy', true, undefined]);
});

test('inherit and judge: a previous record whose numbers are not numbers keeps the pool armed with its age lost; a NaN age is expired, never healthy', () => {
  // Another version's state file, or a hand edit: no written_at_ms, or an age that is no number.
  const noStamp = rec({ writtenAtMs: undefined as unknown as number });
  const badAge = rec({ armed: [{ path: '/p', lastOkAgeS: {} as unknown as number }] });
  for (const [what, r] of [['no written_at_ms', noStamp], ['an age that is an object', badAge]] as const) {
    const i = inherit(['/p'], r, undefined, ctx);
    assert.deepEqual(i, [{ path: '/p', lastOkMs: null, fromPid: 100, ageS: null }], what);
    // Age lost: expired, held until the first probe deadline (−ε), fences at it (=), never petted.
    const p = pool({ lastOkMs: undefined, inheritedLastOkMs: i[0].lastOkMs, firstProbeDeadlineMs: 10_000, fenceWhen: 'always' });
    const held = planTick(facts({ pools: [p], nowMs: 10_000 - E }));
    assert.deepEqual([held.pools[0].state, held.pet, held.fence], ['expired', false, undefined], what);
    assert.equal(planTick(facts({ pools: [p], nowMs: 10_000 })).fence?.pool.path, '/p', what);
  }
  // A good age in the other record still counts (the smallest readable one).
  assert.equal(inherit(['/p'], badAge, rec({ writtenAtMs: 995_000, armed: [{ path: '/p', lastOkAgeS: 1 }] }), ctx)[0].ageS, 6);
  // However a NaN reaches the verdict, it is an age past fence_after_s.
  const nan = planTick(facts({ pools: [pool({ lastOkMs: NaN, fenceWhen: 'always' })], nowMs: 20_000 }));
  assert.deepEqual([nan.pools[0].state, nan.pet, nan.fence?.pool.path], ['expired', false, '/p']);
});

test('start-up window: a pool armed from the previous fencer never fails start-up (that would disarm the watchdog and hand its expiry on, start after start); its expiry fences', () => {
  // startup_window_s = probe_timeout_s = 10 s (allowed), vm_query_timeout_s = 15 s; libvirt does not answer.
  const startup = { startedMs: 0, windowMs: 10_000 };
  const waiting: VmFacts = { inFlight: true, never: false, refreshMs: 5000, timeoutMs: 15_000, firstStartMs: 0 };
  const lost = pool({ lastOkMs: undefined, inheritedLastOkMs: null, firstProbeDeadlineMs: 10_000, probeInFlight: true });
  for (const now of [10_000 - E, 10_000, 10_000 + E, 15_000 - E]) {
    const plan = planTick(facts({ startup, vm: waiting, pools: [lost], nowMs: now }));
    assert.equal(plan.failStartup, undefined, `${now}: an armed pool's expiry is the fence's, not a failed start-up's`);
    assert.deepEqual([plan.pools[0].state, plan.pools[0].held, plan.pet, plan.fence], ['expired', true, false, undefined], `${now}`);
  }
  assert.equal(planTick(facts({ startup, vm: waiting, pools: [lost], nowMs: 15_000 })).fence?.pool.path, '/p', 'fenced once the VM answer is overdue');
  // Inherited 15 s old and not verified since (storage dead): no exit at the window, the countdown
  // goes on and fences at fence_after_s (−ε pets, = fences).
  const aging = pool({ lastOkMs: undefined, inheritedLastOkMs: -15_000, firstProbeDeadlineMs: 10_000, fenceWhen: 'always' });
  let plan = planTick(facts({ startup, pools: [aging], nowMs: 15_000 - E }));
  assert.deepEqual([plan.failStartup, plan.pools[0].state, plan.pet], [undefined, 'late', true]);
  plan = planTick(facts({ startup, pools: [aging], nowMs: 15_000 }));
  assert.deepEqual([plan.failStartup, plan.fence?.pool.path, plan.pet], [undefined, '/p', false]);
  // A pool nothing armed still fails start-up beside it.
  plan = planTick(facts({ startup, pools: [aging, pool({ path: '/q', lastOkMs: undefined, fenceWhen: 'always' })], nowMs: 12_000 }));
  assert.deepEqual(plan.failStartup, { pools: ['/q'] });
});

test('stall of the fencer\'s own loop: a gap of more than a tick + STALL_GAP_MS is one (−ε and = are not, +ε is), and the hold it gives lasts two ticks + probe_timeout_s', () => {
  const tick = 250;
  const limit = tick + STALL_GAP_MS;
  assert.equal(resumeHoldUntil(undefined, 50_000, tick, T), undefined, 'the first tick');
  assert.equal(resumeHoldUntil(10_000, 10_000 + limit - E, tick, T), undefined);
  assert.equal(resumeHoldUntil(10_000, 10_000 + limit, tick, T), undefined);
  const now = 10_000 + limit + E;
  assert.equal(resumeHoldUntil(10_000, now, tick, T), now + 2 * tick + T.probeTimeoutMs);
  // A pool at 29 s when the loop stalled for the gap: expired on resume. Held only when the gap was a stall.
  const p = pool({ lastOkMs: 10_000 - 29_000 });
  const held = planTick(facts({ pools: [{ ...p, resumeHoldUntilMs: resumeHoldUntil(10_000, now, tick, T) }], nowMs: now }));
  assert.deepEqual([held.pools[0].state, held.pools[0].held, held.fence, held.pet], ['expired', true, undefined, false]);
  const notStall = 10_000 + limit;
  const plan = planTick(facts({ pools: [{ ...p, resumeHoldUntilMs: resumeHoldUntil(10_000, notStall, tick, T) }], nowMs: notStall }));
  assert.equal(plan.fence?.pool.path, '/p', 'a gap within the limit is the storage\'s age: it fences');
});

test('host suspend: a gap in which the host was suspended gives no hold (more than SUSPEND_NOISE_MS suspended: +ε none; −ε and = are noise and hold as a stall); an expiry across it fences at once, and never pets', () => {
  const tick = 250;
  // Last verified at 0 (age 2 s when the host went to sleep at 2 000), suspended 10 s: the first tick
  // after resume is at 12 250 on the fencer's clock (CLOCK_MONOTONIC + the suspend).
  const last = 2000;
  const now = 12_250;
  for (const s of [SUSPEND_NOISE_MS - E, SUSPEND_NOISE_MS])
    assert.equal(resumeHoldUntil(last, now, tick, T, s), now + 2 * tick + T.probeTimeoutMs, `${s} ms suspended is /proc/uptime's steps: a stall`);
  assert.equal(resumeHoldUntil(last, now, tick, T, SUSPEND_NOISE_MS + E), undefined);
  assert.equal(resumeHoldUntil(last, now, tick, T, 10_000), undefined);
  // Its fence_after_s is 30 s here: the pool expires at 30 000 of the same clock, suspend included.
  const p = pool({ lastOkMs: 0, fenceWhen: 'always', resumeHoldUntilMs: resumeHoldUntil(last, 30_000 - E, tick, T, 28_000) });
  const young = planTick(facts({ pools: [p], nowMs: 30_000 - E }));
  assert.deepEqual([young.pools[0].state, young.fence, young.pet], ['late', undefined, true], '−ε: under fence_after_s, suspend included');
  for (const at of [30_000, 30_000 + E]) {
    const q = pool({ lastOkMs: 0, fenceWhen: 'always', resumeHoldUntilMs: resumeHoldUntil(last, at, tick, T, 28_000) });
    const plan = planTick(facts({ pools: [q], nowMs: at }));
    assert.deepEqual([plan.pools[0].state, plan.pools[0].held, plan.fence?.pool.path, plan.pet], ['expired', false, '/p', false], `${at}`);
  }
  // The same gap as a stall of the fencer alone (the watchdog counted it): held for one fresh probe.
  const stalled = pool({ lastOkMs: 0, fenceWhen: 'always', resumeHoldUntilMs: resumeHoldUntil(last, 30_000, tick, T, 0) });
  const plan = planTick(facts({ pools: [stalled], nowMs: 30_000 }));
  assert.deepEqual([plan.pools[0].held, plan.fence, plan.pet], [true, undefined, false]);
});

test('host suspend and the VM answer: it ages only by the time awake (stale at 3 refreshes + the timeout awake: = fresh, +ε unknown); an idle pool expired across the suspend stays dead, a used one fences', () => {
  // Answered at 0 (/idle unused, /used used), refresh 5 s, timeout 10 s: stale past 25 s of age.
  const vm = vmAnswered(new Map([['/idle', false], ['/used', true]]), 0);
  const pools = [pool({ path: '/idle', lastOkMs: 0 }), pool({ path: '/used', lastOkMs: 0 })];
  // Suspended 60 s at 10 000: the first tick after resume at 70 250. Unshifted, the answer reads 70 s old.
  const slept = { ...vm, answer: vmAnswerAcrossSuspend(vm.answer, 60_000) };
  assert.equal(slept.answer?.atMs, 60_000);
  assert.equal(inUseNow('/idle', vm, 70_250), 'unknown', 'what the suspend alone would make of it');
  const plan = planTick(facts({ pools, vm: slept, nowMs: 70_250 }));
  assert.deepEqual(plan.pools.map((p) => [p.path, p.inUse, p.state]), [['/idle', false, 'dead'], ['/used', true, 'expired']]);
  assert.equal(plan.fence?.pool.path, '/used');
  assert.equal(inUseNow('/idle', slept, 60_000 + 25_000), false, '= 25 s awake: fresh');
  assert.equal(inUseNow('/idle', slept, 60_000 + 25_000 + E), 'unknown', '+ε: stale');
  assert.equal(inUseNow('/idle', slept, 60_000 + 25_000 - E), false);
  assert.equal(vmAnswerAcrossSuspend(undefined, 60_000), undefined, 'no answer yet: none');
  assert.equal(vmAnswerAcrossSuspend(vm.answer, 0), vm.answer);
});
