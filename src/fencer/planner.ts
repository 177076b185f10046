// The fencer's every decision, as pure functions of facts the daemon gathers (daemon.ts is a thin
// loop: gather facts → planTick → act). Nothing here touches the host or reads a clock.
//
// Per tick the plan says which probes start, whether to ask which pools running VMs use, each
// pool's verdict (pool-health.ts), whether to pet the watchdog, whether to fence and with which
// action, and whether a log-only "fence" is over. At start, `inherit` decides what a new fencer
// carries over from the one before it (reference/fencing.md: wdmd keeps a client's expiry when the
// client goes away; sbd never fences during start-up).
import { judgePool, type InUse, type PoolHealthState, type PoolVerdict, type Timing } from './pool-health.js';

/**
 * The configured fence action. Open: a new kind (e.g. kill-vms) is added to the config schema and
 * to the daemon's act(); if the host stays up after it, it goes in KEEPS_HOST_UP too.
 */
export type FenceAction = 'reboot' | 'crash' | 'log-only' | 'command' | (string & {});

/** Actions after which the host keeps running: the watchdog stays petted, and the fence is re-armed once no pool expires. */
const KEEPS_HOST_UP = new Set<string>(['log-only']);

export function actionKeepsHostUp(a: FenceAction): boolean {
  return KEEPS_HOST_UP.has(a);
}

export interface PoolFacts {
  path: string;
  fenceWhen: 'in-use' | 'always';
  /** Monotonic ms at which the last probe verified by THIS process started; undefined before the first. */
  lastOkMs: number | undefined;
  /**
   * Carried over from a fencer that did not stop cleanly (`inherit`): its last verified heartbeat on
   * this process's monotonic clock, or null when that fencer had the pool armed but its age is lost.
   * undefined: nothing inherited.
   */
  inheritedLastOkMs?: number | null;
  /** Deadline of the first probe this process started of the pool; undefined before it started. */
  firstProbeDeadlineMs: number | undefined;
  probeInFlight: boolean;
  lastProbeStartMs: number | undefined;
  /**
   * A runtime pool the orchestrator added while this process ran: when it was added (monotonic ms).
   * Its start-up window runs from then, and it never fails start-up (the fencer guards the other
   * pools on; the pool is reported overdue). undefined: guarded since this process started.
   */
  addedMs?: number;
  /**
   * The fencer's own loop stalled (SIGSTOP, a frozen VM, swap) and the pool expired during the stall:
   * an age measured across the fencer's own stall is no verdict on the storage, so it does not fence
   * before this (monotonic ms: one probe started after the resume has reached its deadline). The
   * watchdog is not petted past it meanwhile. undefined: no such hold.
   */
  resumeHoldUntilMs?: number;
}

export interface VmFacts {
  inFlight: boolean;
  /** The last answer to "which pools do running VMs use" and when it came (monotonic ms). */
  answer?: { atMs: number; map: ReadonlyMap<string, boolean> | 'unknown' };
  /** When the first query started; undefined before. */
  firstStartMs?: number;
  /** No query can ever answer (vm_query = none, or no tool): every pool counts as used. */
  never: boolean;
  refreshMs: number;
  timeoutMs: number;
}

export interface Facts {
  nowMs: number;
  timing: Timing;
  action: FenceAction;
  watchdog: boolean;
  /** The pool the fencer has fenced for (log-only: reported) and not cleared; null when none. */
  fenced: string | null;
  pools: PoolFacts[];
  vm: VmFacts;
  /** When this process started its loop (monotonic ms) and fencer.startup_window_s (reference/fencing.md rule 9). */
  startup?: { startedMs: number; windowMs: number };
}

export interface PoolPlan extends PoolVerdict {
  inUse: InUse;
  /** Would fence, but the pool has not had its fair chance since this start (first probe deadline, first VM answer). */
  held: boolean;
  /** Not verified by this process within the start-up window (from startedMs + windowMs on): an error. */
  overdue: boolean;
}

export interface Plan {
  pools: PoolPlan[];
  /** Paths whose next probe starts now. */
  startProbes: string[];
  queryVms: boolean;
  pet: boolean;
  /** Fence now, for this pool, with this action (and why, when not plain expiry). */
  fence?: { pool: PoolPlan; action: FenceAction; why?: string };
  /** A log-only fence is over (no pool expires any more): forget it, so the next expiry is reported again. */
  clearFenced: boolean;
  /**
   * Start-up failed: these overdue pools guard VMs (fence_when = "always", or a running VM uses them
   * or usage is unknown, which counts as used as for fencing) and are not armed. The fencer exits
   * non-zero rather than pet the watchdog forever over storage it never verified. Never while a fence
   * is under way, never for a pool armed by the previous fencer (its expiry fences).
   */
  failStartup?: { pools: string[] };
}

/** What running VMs' use of a pool is, as of now: an answer older than a few refreshes is no answer. */
export function inUseNow(path: string, vm: VmFacts, nowMs: number): InUse {
  const a = vm.answer;
  if (!a || a.map === 'unknown' || nowMs - a.atMs > 3 * vm.refreshMs + vm.timeoutMs) return 'unknown';
  return a.map.get(path) ?? 'unknown';
}

/**
 * The last answer about running VMs after a host suspend: nothing started or stopped on the host while
 * it slept, so the answer is as old as the time awake since it (atMs moves forward by the suspend). An
 * idle pool that expired across the suspend stays dead rather than fencing on an answer only the
 * suspend made stale; a used one fences.
 */
export function vmAnswerAcrossSuspend(a: VmFacts['answer'], suspendedMs: number): VmFacts['answer'] {
  return a && suspendedMs > 0 ? { ...a, atMs: a.atMs + suspendedMs } : a;
}

/** Still waiting for the first answer about VMs, within its deadline (an idle pool must not fence on "unknown" yet). */
function awaitingFirstVmAnswer(vm: VmFacts, nowMs: number): boolean {
  if (vm.never || vm.answer) return false;
  return vm.firstStartMs === undefined || nowMs < vm.firstStartMs + vm.timeoutMs;
}

function judge(p: PoolFacts, inUse: InUse, nowMs: number, t: Timing): PoolVerdict {
  const lastOkMs = p.lastOkMs ?? (p.inheritedLastOkMs === null ? undefined : p.inheritedLastOkMs);
  const v = judgePool({ path: p.path, fenceWhen: p.fenceWhen, lastOkMs, inUse }, nowMs, t);
  if (p.lastOkMs === undefined && p.inheritedLastOkMs === null) {
    // Armed by the previous fencer, age lost: it has until this start's first probe deadline.
    const used = p.fenceWhen === 'always' || inUse !== false;
    const state: PoolHealthState = used ? 'expired' : 'dead';
    return { path: p.path, state, armed: true, ageMs: undefined, fenceInMs: used ? 0 : undefined, fence: used };
  }
  return v;
}

export function planTick(f: Facts): Plan {
  const t = f.timing;
  const now = f.nowMs;
  const pools = f.pools.map((p): PoolPlan => {
    const inUse = inUseNow(p.path, f.vm, now);
    const v = judge(p, inUse, now, t);
    const graceOpen = p.firstProbeDeadlineMs === undefined || now < p.firstProbeDeadlineMs;
    const vmWait = p.fenceWhen === 'in-use' && awaitingFirstVmAnswer(f.vm, now);
    const resumeHold = p.resumeHoldUntilMs !== undefined && now < p.resumeHoldUntilMs;
    const held = v.fence && (graceOpen || vmWait || resumeHold);
    const overdue = f.startup !== undefined && p.lastOkMs === undefined && now >= (p.addedMs ?? f.startup.startedMs) + f.startup.windowMs;
    return { ...v, inUse, held, fence: v.fence && !held, overdue };
  });
  const startProbes = f.pools
    .filter((p) => !p.probeInFlight && (p.lastProbeStartMs === undefined || now >= p.lastProbeStartMs + t.probeIntervalMs))
    .map((p) => p.path);
  const queryVms = f.pools.length > 0 && !f.vm.inFlight && (!f.vm.answer || now - f.vm.answer.atMs >= f.vm.refreshMs);
  // A held pool is expired all the same: it does not fence yet, but it is not petted past either.
  const anyExpired = pools.some((p) => p.state === 'expired');
  const wants = pools.find((p) => p.fence);
  const keepsUp = actionKeepsHostUp(f.action);
  const pet = f.watchdog && (keepsUp || (f.fenced === null && !anyExpired));
  const fence = f.fenced === null && wants ? { pool: wants, action: f.action } : undefined;
  const clearFenced = keepsUp && f.fenced !== null && !wants;
  // Only a pool nothing armed: one armed by the previous fencer has its expiry running and fences by
  // it (a hold ends at its deadline); failing start-up instead would disarm the watchdog and hand the
  // same held expiry to the next start, and the next, without a fence.
  const guarding = pools.filter((p, i) => p.overdue && !p.armed && f.pools[i].addedMs === undefined && (f.pools[i].fenceWhen === 'always' || p.inUse !== false)).map((p) => p.path);
  const failStartup = f.fenced === null && !fence && guarding.length ? { pools: guarding } : undefined;
  return { pools, startProbes, queryVms, pet: pet && !failStartup, fence, clearFenced, ...(failStartup ? { failStartup } : {}) };
}

/** A growth of CLOCK_BOOTTIME over CLOCK_MONOTONIC up to this is /proc/uptime's 10 ms steps, not a suspend (clock.ts). */
export const SUSPEND_NOISE_MS = 50;

/** A gap between two loop ticks longer than the tick plus this is a stall of the fencer itself (SIGSTOP, a frozen VM). */
export const STALL_GAP_MS = 1000;

/**
 * The fencer's own loop stalled (SIGSTOP, a paused VM, swap) when the gap between two ticks is more
 * than a tick plus STALL_GAP_MS: then the monotonic ms until which a pool that was not expired before
 * the stall does not fence (PoolFacts.resumeHoldUntilMs): room for one probe started in the next two
 * ticks to reach its deadline. undefined: no stall (the first tick, or a gap up to the limit).
 *
 * Such a hold is safe because the watchdog counted the stall: the last pet came before it, so the host
 * is reset watchdog_timeout_s after that pet whatever the hold does. A host suspend (suspendedMs above
 * SUSPEND_NOISE_MS in the gap) stops the watchdog's timer with every other: nothing bounds a
 * hold then, and the peers have seen no heartbeat for the whole gap. No hold: an expired pool fences.
 */
export function resumeHoldUntil(lastLoopMs: number | undefined, nowMs: number, tickMs: number, t: Timing, suspendedMs = 0): number | undefined {
  if (suspendedMs > SUSPEND_NOISE_MS) return undefined;
  if (lastLoopMs === undefined || !(nowMs - lastLoopMs > tickMs + STALL_GAP_MS)) return undefined;
  return nowMs + 2 * tickMs + t.probeTimeoutMs;
}

// ---- start-up: what a new fencer carries over ----

/** What the previous fencer left: its state file (state_dir) or its lease (marker_dir), reduced to what matters. */
export interface PreviousRecord {
  pid: number;
  /** /proc/sys/kernel/random/boot_id when written; undefined for records that predate it. */
  bootId?: string;
  writtenAtMs: number;
  /** CLOCK_MONOTONIC when written (ms): within one boot, the gap to now whatever the wall clock did. */
  writtenAtMonoMs?: number;
  /** CLOCK_BOOTTIME − CLOCK_MONOTONIC when written (ms, clock.ts fencerClock.bootOffset): its growth since is the host's suspends. */
  bootOffsetMs?: number;
  /** It stopped cleanly (SIGTERM/SIGINT): it carries nothing forward, unless the next start is a restart (within fence_after_s). */
  clean: boolean;
  /** Pools it had armed, with the age of their last verified heartbeat at writtenAtMs (null: unknown). */
  armed: Array<{ path: string; lastOkAgeS: number | null }>;
}

export interface InheritContext {
  /** This process's pid (for the log; a record with the same pid is a previous fencer's all the same). */
  pid: number;
  bootId: string | undefined;
  /** Wall clock now and at boot (epoch ms): a record from before this boot is ignored. */
  nowWallMs: number;
  bootWallMs: number;
  nowMonoMs: number;
  /** CLOCK_MONOTONIC now (ms, clock.bootMonoMs): the gap to a record of this boot that carries its own stamp. */
  nowBootMonoMs?: number;
  /** CLOCK_BOOTTIME − CLOCK_MONOTONIC now (ms, clock.ts fencerClock.bootOffset): with a record's, the suspends since it was written. */
  nowBootOffsetMs?: number;
  /**
   * fencer.fence_after_s in ms: a start within it of a clean stop is a restart (systemctl restart, an
   * upgrade's try-restart) and carries the armed pools on as after a crash; a later start begins fresh.
   */
  fenceAfterMs: number;
}

export interface Inherited {
  path: string;
  /** On the new process's monotonic clock; null when the age is lost. */
  lastOkMs: number | null;
  fromPid: number;
  ageS: number | null;
}

/**
 * How long ago the record was written: by CLOCK_MONOTONIC when it carries a stamp of this very boot
 * (a wall-clock step between the two fencers, NTP or an admin's date, must not shorten or stretch
 * a pool's age), plus the time the host was suspended since (CLOCK_MONOTONIC stops then; the peers'
 * clocks do not) when both sides know it; else by the wall clock.
 */
function sinceMs(r: PreviousRecord, c: InheritContext): number {
  if (r.writtenAtMonoMs !== undefined && c.nowBootMonoMs !== undefined && r.bootId !== undefined && r.bootId === c.bootId)
    return c.nowBootMonoMs - r.writtenAtMonoMs + suspendedSince(r, c);
  return c.nowWallMs - r.writtenAtMs;
}

/** The host's suspends since the record was written (ms): the growth of its boot offset, past /proc/uptime's steps; 0 when either side lacks one. */
export function suspendedSince(r: Pick<PreviousRecord, 'bootOffsetMs'>, c: Pick<InheritContext, 'nowBootOffsetMs'>): number {
  if (typeof r.bootOffsetMs !== 'number' || typeof c.nowBootOffsetMs !== 'number' || !Number.isFinite(r.bootOffsetMs) || !Number.isFinite(c.nowBootOffsetMs)) return 0;
  const grew = c.nowBootOffsetMs - r.bootOffsetMs;
  return grew > SUSPEND_NOISE_MS ? grew : 0;
}

/**
 * The record was written in this boot: by boot id when both sides have one (a wall-clock step, NTP
 * at boot or an admin's date, cannot move a record across a boot), else by the wall clock at boot.
 * Also kill-vms' mount records (kill-vms/controller.ts inheritMounts).
 */
export function sameBoot(r: Pick<PreviousRecord, 'bootId' | 'writtenAtMs'>, c: Pick<InheritContext, 'bootId' | 'bootWallMs'>): boolean {
  if (r.bootId !== undefined && c.bootId !== undefined) return r.bootId === c.bootId;
  return r.writtenAtMs >= c.bootWallMs;
}

/**
 * A fencer that CRASHED (killed, OOM, a bug) while it had pools armed must not come back unarmed:
 * that would pet a watchdog over dead storage forever. It keeps each armed pool's last verified
 * heartbeat, aged by the time since the state file was written (sinceMs: CLOCK_MONOTONIC within a
 * boot), or — when the state file is gone or unreadable — keeps the pool armed with its age lost
 * (the lease in marker_dir). A clean stop
 * carries the same on when the next start comes within fence_after_s (a restart: a pool that hung
 * just before it would otherwise get a whole start-up window of pets, and no fence at all); a start
 * after a longer stop begins unverified. Either way no start fences before the pool's first probe
 * deadline (planTick's hold), so healthy storage never fences on an old age.
 */
export function inherit(poolPaths: string[], state: PreviousRecord | undefined, lease: PreviousRecord | undefined, c: InheritContext): Inherited[] {
  // Whatever pid wrote it: start-up reads both records under the instance lock before this process
  // writes either, so a record with our own pid is a previous fencer's whose pid came round again
  // (pid_max 32768 wraps within hours on a busy host), and its expiry is as binding as any other.
  const records = [state, lease].filter((r): r is PreviousRecord => r !== undefined && sameBoot(r, c));
  if (!records.length) return [];
  // The latest word of the previous fencer decides whether it stopped cleanly.
  const latest = records.reduce((a, b) => (sinceMs(b, c) < sinceMs(a, c) ? b : a));
  // A clean stop followed by a start within fence_after_s is a restart, not maintenance: a pool that
  // was armed (perhaps already hung, its countdown running) must not get a fresh start-up window.
  const carries = (r: PreviousRecord) => !r.clean || sinceMs(r, c) < c.fenceAfterMs;
  if (!carries(latest)) return [];
  const out: Inherited[] = [];
  for (const path of poolPaths) {
    const armedIn = records.filter((r) => carries(r) && r.pid === latest.pid && r.armed.some((a) => a.path === path));
    if (!armedIn.length) continue;
    // The age comes from a record that has one (the state file); the lease only says "armed".
    let ageS: number | null = null;
    for (const r of armedIn) {
      const a = r.armed.find((x) => x.path === path)!;
      if (a.lastOkAgeS === null) continue;
      const s = Math.max(0, a.lastOkAgeS) + Math.max(0, sinceMs(r, c) / 1000);
      // A record whose numbers are not numbers (another version's schema, a hand edit) gives no
      // age: the pool stays armed with its age lost, never with a NaN age that nothing expires.
      if (typeof a.lastOkAgeS !== 'number' || !Number.isFinite(s)) continue;
      ageS = ageS === null ? s : Math.min(ageS, s);
    }
    out.push({ path, lastOkMs: ageS === null ? null : c.nowMonoMs - ageS * 1000, fromPid: latest.pid, ageS });
  }
  return out;
}

/** Log a repeated failure (state file, lease) on change and then at most this often. */
export const REPEAT_LOG_MS = 60_000;

export function shouldLogRepeat(prev: { msg: string | null; atMs: number }, msg: string, nowMs: number): boolean {
  return msg !== prev.msg || nowMs - prev.atMs >= REPEAT_LOG_MS;
}

/**
 * shouldLogRepeat, with the failure noted in `prev` (no host involved): true when `msg` is to be
 * logged now, and then it counts as logged at nowMs. A success clears it (prev.msg = null).
 */
export function logRepeatNow(prev: { msg: string | null; atMs: number }, msg: string, nowMs: number): boolean {
  const due = shouldLogRepeat(prev, msg, nowMs);
  if (due) prev.atMs = nowMs;
  prev.msg = msg;
  return due;
}

/**
 * action = "kill-vms" (kill-vms/controller.ts decides, per tick, from this plan's verdicts): an
 * expired used pool keeps the watchdog petted while its holders are killed, and the host is reset
 * (the fence, sysrq 'b') only when the controller says so; probes it holds do not start. An expiry
 * inherited from a previous fencer and still held (start-up) is never petted past, as with any action.
 */
export function withKillVms(plan: Plan, k: { reset?: { pool: string; reason: string }; hold: ReadonlySet<string> }, watchdog: boolean): Plan {
  const heldExpired = plan.pools.some((p) => p.held && p.state === 'expired');
  const reset = k.reset && plan.pools.find((p) => p.path === k.reset!.pool);
  return {
    ...plan,
    startProbes: plan.startProbes.filter((p) => !k.hold.has(p)),
    pet: watchdog && !k.reset && !heldExpired && !plan.failStartup,
    fence: reset ? { pool: reset, action: 'kill-vms', why: k.reset!.reason } : undefined,
  };
}
