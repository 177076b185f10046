// The fencer across crashes and restarts, pure: a fencer's loop simulated tick by tick on the real
// decisions (planner.planTick), its state file written as the daemon writes it (state.verdictAgesAt,
// JSON text read back by state.fencerStateOf and state.stateRecord) and its lease (lease.leaseRecord),
// killed at every point of its cycle, mid-write included, and the next fencer started on what it
// left (planner.inherit). The rules: a restart or a crash never loses an expiry (the next fencer
// fences at the deadline the previous one was counting to, or at its own first probe deadline if
// that is later, never a fence_after_s after the restart) and never fences before its first probe
// deadline; no fencer pets past the expiry; a state file cut at any byte, of another boot or of
// another host is never taken for a healthy pool.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inherit, planTick, type Facts, type Inherited } from '../../src/fencer/planner.js';
import { fencerStateOf, loadedStateOf, stateRecord, verdictAgesAt } from '../../src/fencer/state.js';
import { leaseRecord, type Lease } from '../../src/fencer/lease.js';
import type { Timing } from '../../src/fencer/pool-health.js';

const TICK = 250;
const T: Timing = { probeIntervalMs: 500, probeTimeoutMs: 2000, fenceAfterMs: 15_000 };
const F = T.fenceAfterMs;
const BOOT = 'boot-1';
/** Wall clock at CLOCK_MONOTONIC 0 (the simulation's global clock is CLOCK_MONOTONIC, ms). */
const WALL0 = 1_750_000_000_000;
/** A probe of the healthy pool answers this long after it starts. */
const LATENCY = 100;
/** The pool hangs here: probes started from then on never answer. */
const HANG = 3000;
/** The last probe verified before the hang started here (probes at 0, 500, ... by the first fencer, loop at 0). */
const LAST_OK = 2500;

interface Previous {
  /** The state file's text as the last complete write left it (a write the crash cut never renamed). */
  stateText?: string;
  lease?: Lease;
}

interface Outcome extends Previous {
  fenceAt?: number;
  pets: number[];
  inherited: Inherited[];
  /** The fencer's process monotonic 0 on the global clock. */
  origin: number;
  loopStart: number;
  /** Its last verdict's last verified heartbeat (global ms), when it had one. */
  judgedLastOk?: number;
}

/**
 * One fencer, from its start (`start`: inherit runs then; its loop starts `startup` ms later) until
 * it fences, is killed at `crashAt`, or stops cleanly at `stopAt` (between ticks, as a SIGTERM does).
 * Each tick writes the state `writeDelay` ms after it judged (the probes it spawns come first); a
 * crash before that write leaves the previous state.
 */
function runFencer(o: { pid: number; start: number; startup: number; prev: Previous; crashAt?: number; stopAt?: number; writeDelay: number }): Outcome {
  const origin = o.start; // process monotonic = global − origin
  const prevState = o.prev.stateText === undefined ? undefined : fencerStateOf(o.prev.stateText);
  const inherited = inherit(['/p'], prevState && stateRecord(prevState), o.prev.lease && leaseRecord(o.prev.lease), {
    pid: o.pid, bootId: BOOT, nowWallMs: WALL0 + o.start, bootWallMs: WALL0, nowMonoMs: 0, nowBootMonoMs: o.start, fenceAfterMs: F,
  });
  const inh = inherited.find((i) => i.path === '/p');
  let lastOkMs: number | undefined;
  let firstDeadline: number | undefined;
  let lastStart: number | undefined;
  let inFlight: number | undefined;
  let stateText = o.prev.stateText;
  let lease = o.prev.lease;
  let leaseKey: string | undefined;
  const out: Outcome = { pets: [], inherited, origin, loopStart: o.start + o.startup, stateText, lease };
  const write = (atG: number, v: ReturnType<typeof planTick>['pools'][number] | undefined, judgedG: number, clean: boolean) => {
    const s = {
      version: 1, pid: o.pid, boot_id: BOOT, clean_stop: clean, written_at_ms: WALL0 + atG, written_at_mono_ms: atG,
      pools: [{ path: '/p', armed: v?.armed ?? false, state: v?.state ?? 'unverified', ...verdictAgesAt(v, atG - judgedG) }],
    };
    stateText = JSON.stringify(s) + '\n';
    const armed = v?.armed ? ['/p'] : [];
    const key = JSON.stringify([clean, armed]);
    if (key !== leaseKey) {
      leaseKey = key;
      lease = { version: 1, pid: o.pid, boot_id: BOOT, written_at_ms: WALL0 + atG, written_at_mono_ms: atG, clean, armed };
    }
  };
  let last: { v: ReturnType<typeof planTick>['pools'][number]; G: number } | undefined;
  for (let G = out.loopStart; ; G += TICK) {
    if (o.crashAt !== undefined && G >= o.crashAt) break;
    if (o.stopAt !== undefined && G >= o.stopAt) {
      write(o.stopAt, last?.v, last?.G ?? o.stopAt, true);
      break;
    }
    const t = G - origin;
    if (inFlight !== undefined) {
      const startedG = inFlight + origin;
      if (startedG < HANG && G >= startedG + LATENCY) {
        lastOkMs = lastOkMs === undefined ? inFlight : Math.max(lastOkMs, inFlight);
        inFlight = undefined;
      } else if (t >= inFlight + T.probeTimeoutMs) inFlight = undefined;
    }
    const facts: Facts = {
      nowMs: t, timing: T, action: 'reboot', watchdog: true, fenced: null,
      vm: { inFlight: false, never: true, refreshMs: 1000, timeoutMs: 10_000 },
      startup: { startedMs: out.loopStart - origin, windowMs: 120_000 },
      pools: [{ path: '/p', fenceWhen: 'always', lastOkMs, inheritedLastOkMs: inh?.lastOkMs, firstProbeDeadlineMs: firstDeadline, probeInFlight: inFlight !== undefined, lastProbeStartMs: lastStart }],
    };
    const plan = planTick(facts);
    if (plan.startProbes.includes('/p')) {
      inFlight = lastStart = t;
      firstDeadline ??= t + T.probeTimeoutMs;
    }
    last = { v: plan.pools[0], G };
    const v = plan.pools[0];
    if (v.ageMs !== undefined) out.judgedLastOk = G - v.ageMs;
    if (plan.fence) {
      out.fenceAt = G;
      break;
    }
    if (plan.pet) out.pets.push(G);
    if (o.crashAt !== undefined && G + o.writeDelay > o.crashAt) break; // killed mid-write: the rename never happened
    write(G + o.writeDelay, v, G, false);
  }
  return { ...out, stateText, lease };
}

/** The first fencer: starts at 0, the pool verifies until HANG. */
const first = (end: { crashAt?: number; stopAt?: number }, writeDelay = 30) => runFencer({ pid: 100, start: 0, startup: 0, prev: {}, writeDelay, ...end });

/** Where the next fencer's inherited heartbeat lies on the global clock. */
const inheritedAt = (r: Outcome) => (r.inherited[0]?.lastOkMs == null ? undefined : r.inherited[0].lastOkMs + r.origin);

/** The state stores ages to the ms (round3 of seconds), and float sums of them are not exact: a tick on the boundary may fall either side of it. */
const MS = 1;

function assertFencedOnTime(r: Outcome, what: string): void {
  const firstProbeDeadline = r.loopStart + T.probeTimeoutMs;
  const due = Math.max(LAST_OK + F, firstProbeDeadline);
  assert.ok(r.fenceAt !== undefined, `${what}: never fenced`);
  assert.ok(r.fenceAt >= due - MS, `${what}: fenced at ${r.fenceAt}, before ${due} (expiry ${LAST_OK + F}, first probe deadline ${firstProbeDeadline})`);
  assert.ok(r.fenceAt < due + TICK + MS, `${what}: fenced at ${r.fenceAt}, more than a tick after ${due} (expiry ${LAST_OK + F}, first probe deadline ${firstProbeDeadline})`);
}

const noPetPastExpiry = (runs: Outcome[], what: string) => {
  for (const r of runs) for (const p of r.pets) assert.ok(p < LAST_OK + F + MS, `${what}: petted at ${p}, past the expiry at ${LAST_OK + F}`);
};

test('the simulation itself: without a crash the pool fences at its last verified heartbeat + fence_after_s, and is petted until then', () => {
  const r = first({});
  assert.equal(r.fenceAt, LAST_OK + F);
  assert.equal(r.pets.at(-1), LAST_OK + F - TICK);
  noPetPastExpiry([r], 'no crash');
});

test('SIGKILL at every point of the tick cycle (mid state-file write included) while the pool hangs, restart after any gap: the inherited heartbeat is the one the crashed fencer counted from, the fence comes at its deadline (or the first probe deadline), never a fence_after_s after the restart, never petted past', () => {
  let n = 0;
  for (let crashAt = HANG + LATENCY + TICK + 1; crashAt < LAST_OK + F + 2000; crashAt += 37)
    for (const gap of [0, 40, 900, 4000, 11_000, 30_000])
      for (const writeDelay of [0, 30, 240]) {
        const a = first({ crashAt }, writeDelay);
        if (a.fenceAt !== undefined) continue; // it fenced before the kill
        const b = runFencer({ pid: 101, start: crashAt + gap, startup: 700, prev: a, writeDelay: 30 });
        const what = `kill at ${crashAt}, restart ${gap} ms later, write ${writeDelay} ms after judging`;
        assert.ok(Math.abs(inheritedAt(b)! - LAST_OK) < MS, `${what}: inherited the heartbeat at ${inheritedAt(b)}, not ${LAST_OK}`);
        assertFencedOnTime(b, what);
        noPetPastExpiry([a, b], what);
        n++;
      }
  assert.ok(n > 1500, `${n} crash points`);
});

test("a clean stop (SIGTERM, between ticks) and a restart within fence_after_s while the pool hangs: the state the stop writes is aged to its write, so the restart fences at the same deadline (a stop's state written as judged would hand on a heartbeat up to a tick younger)", () => {
  for (let stopAt = HANG + LATENCY + TICK + 1; stopAt < LAST_OK + F; stopAt += 41)
    for (const gap of [0, 900, 4000, F - 1]) {
      const a = first({ stopAt });
      assert.equal(fencerStateOf(a.stateText!)!.clean_stop, true);
      const b = runFencer({ pid: 101, start: stopAt + gap, startup: 700, prev: a, writeDelay: 30 });
      const what = `SIGTERM at ${stopAt}, restart ${gap} ms later`;
      if (gap >= F) continue;
      assert.ok(Math.abs(inheritedAt(b)! - LAST_OK) < MS, `${what}: inherited the heartbeat at ${inheritedAt(b)}, not ${LAST_OK}`);
      assertFencedOnTime(b, what);
      noPetPastExpiry([a, b], what);
    }
});

test("two crashes in a row (the second fencer killed before, during or after writing states of its own from the inherited age), then a third start: it fences at the first fencer's deadline", () => {
  let n = 0;
  for (let crash1 = HANG + LATENCY + TICK + 1; crash1 < LAST_OK + F; crash1 += 523)
    for (const gap1 of [0, 1500])
      for (let lived = 0; lived < 4000; lived += 113)
        for (const gap2 of [0, 2500]) {
          const a = first({ crashAt: crash1 });
          if (a.fenceAt !== undefined) continue;
          const bStart = crash1 + gap1;
          const b = runFencer({ pid: 101, start: bStart, startup: 700, prev: a, crashAt: bStart + 700 + lived, writeDelay: 30 });
          const what = `first killed at ${crash1}, second started ${gap1} ms later and killed after ${lived} ms of loop, third ${gap2} ms later`;
          if (b.fenceAt !== undefined) {
            assertFencedOnTime(b, what);
            continue;
          }
          const c = runFencer({ pid: 102, start: bStart + 700 + lived + gap2, startup: 700, prev: b, writeDelay: 30 });
          assert.ok(Math.abs(inheritedAt(c)! - LAST_OK) < MS, `${what}: inherited the heartbeat at ${inheritedAt(c)}, not ${LAST_OK}`);
          assertFencedOnTime(c, what);
          noPetPastExpiry([a, b, c], what);
          n++;
        }
  assert.ok(n > 100, `${n} double crashes`);
});

test('the state file cut at every byte (a write that is no rename, a disk that lost its tail): never a state, never "healthy"; with the lease the pool stays armed, age lost: held to the first probe deadline, never petted, then fenced', () => {
  const a = first({ crashAt: HANG + 5000 });
  const text = a.stateText!;
  assert.ok(fencerStateOf(text), 'the whole file is a state');
  assert.ok(loadedStateOf(text).problem, 'the simulated state lacks fields the readers need: they report it');
  // A complete state a reader accepts, cut at every byte: the readers report a problem, never a state.
  const full = JSON.stringify({
    version: 1, pid: 100, boot_id: BOOT, host_id: 'h', written_at_ms: WALL0, written_at_mono_ms: 1, action: 'reboot',
    watchdog: { device: '/dev/watchdog', open: true, petting: true }, fenced: null,
    pools: [{ path: '/p', state: 'healthy', armed: true, last_ok_age_s: 1, fence_in_s: 14, probe_latency_ms: { last: 1, min: 1, max: 1 } }],
  }) + '\n';
  assert.ok(loadedStateOf(full).state);
  for (let k = 0; k < full.length - 1; k++) {
    assert.equal(loadedStateOf(full.slice(0, k)).state, undefined, `cut at ${k}`);
    assert.match(loadedStateOf(full.slice(0, k)).problem!, /not JSON/, `cut at ${k}`);
  }
  for (let k = 0; k < text.length - 1; k++) {
    const cut = text.slice(0, k);
    assert.equal(fencerStateOf(cut), undefined, `cut at ${k}: ${JSON.stringify(cut)}`);
    // The next fencer on the cut file and the lease: armed with its age lost, never fresh.
    const b = runFencer({ pid: 101, start: HANG + 6000, startup: 700, prev: { stateText: cut, lease: a.lease }, writeDelay: 30 });
    assert.deepEqual(b.inherited.map((i) => [i.path, i.lastOkMs, i.fromPid]), [['/p', null, 100]], `cut at ${k}`);
    assert.deepEqual(b.pets, [], `cut at ${k}: petted over a pool whose age was lost`);
    assert.equal(b.fenceAt, b.loopStart + T.probeTimeoutMs, `cut at ${k}: not fenced at the first probe deadline`);
  }
  // The cut file and no lease (marker_dir lost too): a fresh start, the pool unverified, never healthy or armed.
  const fresh = runFencer({ pid: 101, start: HANG + 6000, startup: 700, prev: { stateText: text.slice(0, 40) }, crashAt: HANG + 20_000, writeDelay: 30 });
  assert.deepEqual(fresh.inherited, []);
  assert.equal(fencerStateOf(fresh.stateText!)!.pools[0].state, 'unverified');
  assert.equal(fresh.fenceAt, undefined);
});

test('a state file of another boot or another host (another boot id) carries nothing; the lease of this boot still keeps the pool armed; one of another boot does not', () => {
  const a = first({ crashAt: HANG + 5000 });
  const other = JSON.parse(a.stateText!);
  for (const s of [{ ...other, boot_id: 'boot-0' }, { ...other, boot_id: 'another-host-boot', host_id: 'another-host' }]) {
    const text = JSON.stringify(s);
    const alone = runFencer({ pid: 101, start: HANG + 6000, startup: 700, prev: { stateText: text }, crashAt: HANG + 8000, writeDelay: 30 });
    assert.deepEqual(alone.inherited, [], 'nothing from another boot');
    const withLease = runFencer({ pid: 101, start: HANG + 6000, startup: 700, prev: { stateText: text, lease: a.lease }, writeDelay: 30 });
    assert.equal(withLease.inherited[0]?.lastOkMs, null, 'the lease of this boot: armed, age lost');
    assert.equal(withLease.fenceAt, withLease.loopStart + T.probeTimeoutMs);
    assert.deepEqual(withLease.pets, []);
    const oldLease = runFencer({ pid: 101, start: HANG + 6000, startup: 700, prev: { stateText: text, lease: { ...a.lease!, boot_id: 'boot-0' } }, crashAt: HANG + 8000, writeDelay: 30 });
    assert.deepEqual(oldLease.inherited, [], 'a lease of another boot carries nothing either');
  }
});

test("verdictAgesAt: a verdict's ages brought to the write, `sinceMs` after the tick that judged it (fence_in_s never below 0); no age stays none", () => {
  assert.deepEqual(verdictAgesAt({ ageMs: 4000, fenceInMs: 11_000 }, 0), { last_ok_age_s: 4, fence_in_s: 11 });
  assert.deepEqual(verdictAgesAt({ ageMs: 4000, fenceInMs: 11_000 }, 250), { last_ok_age_s: 4.25, fence_in_s: 10.75 });
  assert.deepEqual(verdictAgesAt({ ageMs: 14_999, fenceInMs: 1 }, 1 - 1), { last_ok_age_s: 14.999, fence_in_s: 0.001 });
  assert.deepEqual(verdictAgesAt({ ageMs: 14_999, fenceInMs: 1 }, 1), { last_ok_age_s: 15, fence_in_s: 0 });
  assert.deepEqual(verdictAgesAt({ ageMs: 14_999, fenceInMs: 1 }, 2), { last_ok_age_s: 15.001, fence_in_s: 0 });
  assert.deepEqual(verdictAgesAt({ ageMs: 20_000, fenceInMs: undefined }, 100), { last_ok_age_s: 20.1, fence_in_s: null });
  assert.deepEqual(verdictAgesAt(undefined, 100), { last_ok_age_s: null, fence_in_s: null });
  assert.deepEqual(verdictAgesAt({ ageMs: 1000, fenceInMs: 14_000 }, -5), { last_ok_age_s: 1, fence_in_s: 14 }, 'a clock read before the judgement adds nothing');
});
