// One pool's verdict, a pure function of its facts and a monotonic "now" (planner.ts uses it for
// the whole tick). Nothing here touches the host.
//
// A pool's life (reference/fencing.md §7 rules 3, 4, 9, 12):
//   unverified  no verified heartbeat yet: not armed, never fences, never gates the watchdog
//   healthy     last verified heartbeat younger than warn_after (60 % of fence_after_s)
//   late        older than warn_after: logged and reported, still petted
//   expired     older than fence_after_s and used by a running VM (or fence_when = "always"): fence
//   dead        older than fence_after_s but no running VM uses it: reported, does not fence
// Ages above MAX_LEGITIMATE_AGE_MS count as expired whatever else holds (sbd's rule).

import { fencerTickMs } from '../config/rules.js';

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
  // Written so that an age that is no number (NaN) is expired too, as sbd clamps absurd ages.
  const expired = !(ageMs < t.fenceAfterMs) || ageMs > MAX_LEGITIMATE_AGE_MS;
  if (expired) {
    return used
      ? { path: f.path, state: 'expired', armed: true, ageMs, fenceInMs: 0, fence: true }
      : { path: f.path, state: 'dead', armed: true, ageMs, fenceInMs: undefined, fence: false };
  }
  const state = ageMs >= WARN_FRACTION * t.fenceAfterMs ? 'late' : 'healthy';
  return { path: f.path, state, armed: true, ageMs, fenceInMs: used ? t.fenceAfterMs - ageMs : undefined, fence: false };
}

/** The main loop's period: often enough to fence within ~0.25 s of the expiry and pet ≥ 4× per watchdog timeout. */
export function tickMs(t: Timing, watchdogTimeoutMs: number): number {
  return fencerTickMs(t.probeIntervalMs / 1000, watchdogTimeoutMs / 1000);
}
