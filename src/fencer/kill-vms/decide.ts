// fencer.action = "kill-vms": what to do about one pool, as a pure function of its verdict, the
// facts gathered from /proc and /sys (gather.ts), and the monotonic clock. Nothing here touches the
// host; the daemon carries out the plan through act.ts.
//
// A pool's kill-vms life:
//   idle     nothing to do (healthy, late, unverified, or dead and unused)
//   killing  it expired while in use: SIGKILL every process holding a file on it, until a round of
//            facts gathered AFTER the kills shows no holder left, every killed process gone, and no
//            write to the pool still pending in the kernel. Bounded: kill_timeout_s after the kills
//            began, or at once when a kill fails, the host is reset as with action = "reboot".
//   fenced   spared: the pool's VMs are dead and nothing of theirs can still reach the storage. It
//            stays fenced until a heartbeat that STARTED after the fence is verified; meanwhile a new
//            holder (a VM started on it) is killed the same way.
import type { VmIdentity } from './proc-parse.js';

export interface Holder {
  pid: number;
  /** /proc/<pid>/stat starttime: the pid and this name one process, across pid reuse. */
  start: string;
  comm: string;
  /** How it holds the pool: "fd 7", "map", ... */
  how: string[];
  vm?: VmIdentity;
}

export interface KilledProc {
  pid: number;
  start: string;
  comm: string;
  vm?: VmIdentity;
  how: string[];
  killedAtMs: number;
  goneAtMs?: number;
}

/** One round of facts about one pool, gathered after `atMs` (monotonic, when the round began). */
export interface KillFacts {
  atMs: number;
  /** Every /proc entry was read within the round's deadline; an incomplete scan proves nothing. */
  complete: boolean;
  holders: Holder[];
  /** Things holding the pool that no signal can kill (a loop device backed by a file on it). */
  kernelHolders: string[];
  /** "pid:start" of each process killed earlier that still has a live thread. */
  alive: string[];
  /** Only gathered when no holder is left. known=false: this kernel cannot show it (why). */
  pending?: { known: true; items: string[]; sockets?: SocketBytes[] } | { known: false; why: string };
  /** What went wrong reading; shown in the reset reason. */
  errors: string[];
}

/** TCP sockets to the pool's server holding bytes the kernel would (re)transmit. */
export interface SocketBytes {
  addr: string;
  port: number;
  bytes: number;
}

export type PoolKillState =
  | { phase: 'idle' }
  | { phase: 'killing'; sinceMs: number; deadlineMs: number; fencedSinceMs?: number; killed: KilledProc[]; lastFacts?: string; socketsAborted?: boolean }
  | { phase: 'fenced'; sinceMs: number; killed: KilledProc[] };

export interface PoolKillInput {
  /** The pool's verdict this tick asks for a fence (expired and in use). */
  fence: boolean;
  /** Monotonic ms at which the last verified probe started. */
  lastOkMs: number | undefined;
  /** The newest round of facts, if any. */
  facts?: KillFacts;
  /** Kills that failed since the last plan (pid → error). */
  killErrors: Array<{ pid: number; comm: string; error: string }>;
}

export interface PoolKillPlan {
  next: PoolKillState;
  /** SIGKILL these now. */
  kill: Holder[];
  /** Reset the host (as action = "reboot"), with this reason. */
  reset?: string;
  /** The pool was just spared: its VMs are dead, nothing is pending (destroy domains, write markers, log). */
  spared?: KilledProc[];
  /** The pool was verified again after a kill-vms fence. */
  verifiedAgain?: boolean;
  /** Start a new round of facts if none is running. */
  gather: boolean;
  /** Do not start probes of this pool (their own blocked requests would hide the evidence). */
  holdProbes: boolean;
  /** Just entered 'killing' from idle: abort the pool's probe in flight. */
  abortProbe?: boolean;
  /**
   * Destroy these TCP sockets (SOCK_DESTROY): nothing else is pending, only bytes the kernel would
   * retransmit (a killed process's request, a killed probe's): once the socket is gone no byte of
   * them can reach the server; requests still queued as RPC tasks are resent and stay visible.
   */
  abortSockets?: SocketBytes[];
}

const key = (p: { pid: number; start: string }) => `${p.pid}:${p.start}`;

export function describeHolders(hs: Array<{ pid: number; comm: string; vm?: VmIdentity }>): string {
  return hs.map((h) => `${h.pid} (${h.vm?.name ? `VM ${h.vm.name}` : h.comm})`).join(', ');
}

/** Why the pool cannot be spared yet, from the last round (for the reset reason and the state file). */
export function notYet(f: KillFacts | undefined, killed: KilledProc[]): string {
  if (!f) return 'no facts gathered yet (reading /proc did not finish)';
  const why: string[] = [];
  if (!f.complete) why.push(`the /proc scan did not complete${f.errors.length ? ` (${f.errors.slice(0, 3).join('; ')})` : ''}`);
  if (f.holders.length) why.push(`still held by ${describeHolders(f.holders)}`);
  if (f.kernelHolders.length) why.push(`held by ${f.kernelHolders.join(', ')}, which no signal can kill`);
  const alive = killed.filter((k) => f.alive.includes(key(k)));
  if (alive.length) why.push(`killed but not gone: ${describeHolders(alive)}`);
  if (f.pending && !f.pending.known) why.push(`cannot show that no write is pending: ${f.pending.why}`);
  if (f.pending && f.pending.known && f.pending.items.length) why.push(`writes still pending: ${f.pending.items.join('; ')}`);
  return why.join('; ') || 'waiting for the pending-write check';
}

function proven(f: KillFacts, killed: KilledProc[]): boolean {
  return (
    f.complete &&
    f.holders.length === 0 &&
    f.kernelHolders.length === 0 &&
    !killed.some((k) => f.alive.includes(key(k))) &&
    f.pending !== undefined &&
    f.pending.known &&
    f.pending.items.length === 0
  );
}

function addKilled(killed: KilledProc[], hs: Holder[], now: number): KilledProc[] {
  const seen = new Set(killed.map(key));
  return [...killed, ...hs.filter((h) => !seen.has(key(h))).map((h) => ({ pid: h.pid, start: h.start, comm: h.comm, vm: h.vm, how: h.how, killedAtMs: now }))];
}

function markGone(killed: KilledProc[], f: KillFacts | undefined, now: number): KilledProc[] {
  if (!f || !f.complete) return killed;
  return killed.map((k) => (k.goneAtMs === undefined && k.killedAtMs <= f.atMs && !f.alive.includes(key(k)) && !f.holders.some((h) => key(h) === key(k)) ? { ...k, goneAtMs: now } : k));
}

export function planPoolKill(s: PoolKillState, input: PoolKillInput, nowMs: number, killTimeoutMs: number): PoolKillPlan {
  const idle = (): PoolKillPlan => ({ next: { phase: 'idle' }, kill: [], gather: false, holdProbes: false });

  if (s.phase === 'idle') {
    if (!input.fence) return idle();
    return {
      next: { phase: 'killing', sinceMs: nowMs, deadlineMs: nowMs + killTimeoutMs, killed: [] },
      kill: [],
      gather: true,
      holdProbes: true,
      abortProbe: true,
    };
  }

  // Facts from a round that began before this phase describe a world before the kills.
  const f = input.facts && input.facts.atMs >= s.sinceMs ? input.facts : undefined;

  if (s.phase === 'fenced') {
    if (input.lastOkMs !== undefined && input.lastOkMs > s.sinceMs) return { ...idle(), verifiedAgain: true };
    if (f && f.complete && (f.holders.length || f.kernelHolders.length)) {
      // A VM (or anything) started on the fenced pool: it writes to storage this host cannot see.
      const killed = addKilled(s.killed, f.holders, nowMs);
      return {
        next: { phase: 'killing', sinceMs: nowMs, deadlineMs: nowMs + killTimeoutMs, fencedSinceMs: s.sinceMs, killed },
        kill: f.holders,
        gather: true,
        holdProbes: true,
        abortProbe: true,
      };
    }
    return { next: s, kill: [], gather: true, holdProbes: false };
  }

  // killing
  if (input.killErrors.length) {
    const e = input.killErrors.map((k) => `pid ${k.pid} (${k.comm}): ${k.error}`).join('; ');
    return { next: s, kill: [], gather: false, holdProbes: true, reset: `kill-vms could not kill what holds the pool: ${e}` };
  }
  const killed = markGone(addKilled(s.killed, f?.holders ?? [], nowMs), f, nowMs);
  if (f && proven(f, killed)) {
    const spared = killed.filter((k) => k.killedAtMs >= s.sinceMs);
    return { next: { phase: 'fenced', sinceMs: s.fencedSinceMs ?? s.sinceMs, killed }, kill: [], gather: false, holdProbes: false, spared };
  }
  const why = notYet(f, killed);
  if (
    f && f.complete && !f.holders.length && !f.kernelHolders.length && !killed.some((k) => f.alive.includes(key(k))) &&
    f.pending?.known && f.pending.items.length === 1 && f.pending.sockets?.length && !s.socketsAborted && nowMs < s.deadlineMs
  )
    return { next: { ...s, killed, lastFacts: why, socketsAborted: true }, kill: [], gather: true, holdProbes: true, abortSockets: f.pending.sockets };
  if (nowMs >= s.deadlineMs) {
    return {
      next: { ...s, killed, lastFacts: why },
      kill: [],
      gather: false,
      holdProbes: true,
      reset: `kill-vms could not show within kill_timeout_s (${killTimeoutMs / 1000} s) that nothing on this host can still write to the pool: ${why}`,
    };
  }
  return { next: { ...s, killed, lastFacts: why }, kill: f?.holders ?? [], gather: true, holdProbes: true };
}
