// The fencer's decisions, as pure functions of the pools' facts and a monotonic "now". Nothing here
// touches the host: daemon.ts gathers the facts (probe results, VM usage) and carries out the plan.
//
// A pool's life (reference/fencing.md §7 rules 3, 4, 9, 12):
//   unverified  no verified heartbeat yet: not armed, never fences, never gates the watchdog
//   healthy     last verified heartbeat younger than warn_after (60 % of fence_after_s)
//   late        older than warn_after: logged and reported, still petted
//   expired     older than fence_after_s and used by a running VM (or fence_when = "always"): fence
//   dead        older than fence_after_s but no running VM uses it: reported, does not fence
// Ages above MAX_LEGITIMATE_AGE_MS count as expired whatever else holds (sbd's rule).

export type PoolHealthState = 'unverified' | 'healthy' | 'late' | 'expired' | 'dead';
export type InUse = boolean | 'unknown';

export const WARN_FRACTION = 0.6;
export const MAX_LEGITIMATE_AGE_MS = 3600_000;

export interface Timing {
  probeIntervalMs: number;
  probeTimeoutMs: number;
  fenceAfterMs: number;
}

export interface PoolFacts {
  path: string;
  fenceWhen: 'in-use' | 'always';
  /** Monotonic ms at which the last verified probe STARTED (its content's time); undefined before the first. */
  lastOkMs: number | undefined;
  /** Whether a running VM uses the pool; 'unknown' (no answer) counts as used. */
  inUse: InUse;
}

export interface PoolVerdict {
  path: string;
  state: PoolHealthState;
  armed: boolean;
  /** Age of the last verified heartbeat, ms; undefined before the first. */
  ageMs: number | undefined;
  /** Time left before this pool fences the host, ms (0 when expired); undefined when it cannot fence now. */
  fenceInMs: number | undefined;
  /** This pool asks for the fence now. */
  fence: boolean;
}

export function poolUsed(f: Pick<PoolFacts, 'fenceWhen' | 'inUse'>): boolean {
  return f.fenceWhen === 'always' || f.inUse !== false;
}

export function judgePool(f: PoolFacts, nowMs: number, t: Timing): PoolVerdict {
  if (f.lastOkMs === undefined) return { path: f.path, state: 'unverified', armed: false, ageMs: undefined, fenceInMs: undefined, fence: false };
  const ageMs = Math.max(0, nowMs - f.lastOkMs);
  const used = poolUsed(f);
  const expired = ageMs >= t.fenceAfterMs || ageMs > MAX_LEGITIMATE_AGE_MS;
  if (expired) {
    return used
      ? { path: f.path, state: 'expired', armed: true, ageMs, fenceInMs: 0, fence: true }
      : { path: f.path, state: 'dead', armed: true, ageMs, fenceInMs: undefined, fence: false };
  }
  const state = ageMs >= WARN_FRACTION * t.fenceAfterMs ? 'late' : 'healthy';
  return { path: f.path, state, armed: true, ageMs, fenceInMs: used ? t.fenceAfterMs - ageMs : undefined, fence: false };
}

export interface TickPlan {
  verdicts: PoolVerdict[];
  /** Pet the watchdog this tick. */
  pet: boolean;
  /** Fence now because of this pool (the first expired one). */
  fence?: PoolVerdict;
}

/**
 * What to do this tick. The watchdog is petted only while no used, armed pool has expired and the
 * host has not been fenced; `log-only` keeps petting (it promised not to reset the host) but still
 * reports the fence it would have done.
 */
export function planTick(
  pools: PoolFacts[],
  nowMs: number,
  t: Timing,
  opts: { fenced: boolean; action: 'reboot' | 'crash' | 'kill-vms' | 'log-only' | 'command' },
): TickPlan {
  const verdicts = pools.map((p) => judgePool(p, nowMs, t));
  const expired = verdicts.find((v) => v.fence);
  if (opts.action === 'log-only') return { verdicts, pet: true, fence: opts.fenced ? undefined : expired };
  if (opts.fenced) return { verdicts, pet: false };
  return { verdicts, pet: !expired, fence: expired };
}

/**
 * When the next probe of a pool may start: probe_interval_s after the previous one started, and
 * never while it is still outstanding (the caller checks that).
 */
export function nextProbeAt(lastStartMs: number | undefined, t: Timing): number {
  return lastStartMs === undefined ? 0 : lastStartMs + t.probeIntervalMs;
}

/** The main loop's period: often enough to fence within ~0.25 s of the expiry and pet ≥ 4× per watchdog timeout. */
export function tickMs(t: Timing, watchdogTimeoutMs: number): number {
  return Math.max(20, Math.min(250, t.probeIntervalMs / 2, watchdogTimeoutMs / 4));
}
