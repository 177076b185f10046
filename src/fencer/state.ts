// The fencer's state file, `<state_dir>/fencer.json`, rewritten atomically (temp + rename) every
// tick by the daemon and read by `brick status`, heartbeat_status, host_capabilities and the Ovm3
// storage-health calls. Ages in it are as of `written_at_ms`; readers add the file's own age
// (`stateAgeS`) and treat a file older than STATE_STALE_S as "the fencer is not running".
import { chmodSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../shared/atomic-write.js';
import { dirsMade } from '../shared/dir-mode.js';
import { processFacts, recordedProcess, type ProcessFacts } from '../shared/process-identity.js';
import { boundedReader, noAnswer, readFailure, type BoundedReader } from '../shared/bounded-read.js';
import { bootMonoMs } from './clock.js';
import { bootId } from './lease.js';
import type { PoolHealthState, InUse } from './pool-health.js';
import type { FenceMarker } from './marker.js';
import type { PreviousRecord } from './planner.js';
import type { KillVmsCounters, PoolKillSnapshot } from './kill-vms/snapshot.js';

export const STATE_FILE = 'fencer.json';
/** state_dir's mode when brick makes it (as the packages do: /run/brick 0755): the agent and `brick status` read the state. */
export const STATE_DIR_MODE = 0o755;

/** Where a guarded pool comes from: config, a [[fencer.pool]]; runtime, the orchestrator (runtime-pools.ts). */
export type PoolSource = 'config' | 'runtime';
export const STATE_STALE_S = 5;

export interface PoolState {
  path: string;
  /** config: a [[fencer.pool]]; runtime: added by the orchestrator. Absent in states written before runtime pools: config. */
  source?: PoolSource;
  /** Gone from the runtime pools file but still guarded (a fence may be due): why. null or absent otherwise. */
  removing?: string | null;
  heartbeat: 'ovm' | 'kvm';
  heartbeat_file: string;
  /** The path with its symlinks resolved at start (or when added): what the probes use. */
  resolved?: string;
  fence_when: 'in-use' | 'always';
  state: PoolHealthState;
  /** A verified heartbeat has been seen since the fencer started. */
  armed: boolean;
  in_use: InUse;
  /** Seconds since the last verified heartbeat started; null before the first. */
  last_ok_age_s: number | null;
  /** Seconds before this pool fences the host; null when it cannot (unverified, idle, dead). */
  fence_in_s: number | null;
  probe_latency_ms: { last: number | null; min: number | null; max: number | null };
  /** Probes past their deadline whose child has not exited (D state). */
  stuck_probes: number;
  /** Seconds the oldest stuck probe has been outstanding. */
  stuck_for_s: number | null;
  probes_ok: number;
  probes_failed: number;
  last_error: string | null;
  /** Not verified within fencer.startup_window_s of start (reference/fencing.md rule 9). */
  startup_overdue?: boolean;
  /** action = "kill-vms": what was killed on this pool and whether it is fenced. */
  kill_vms?: PoolKillSnapshot;
}

export interface FencerState {
  version: 1;
  pid: number;
  /**
   * The writer's start time (/proc/<pid>/stat starttime, clock ticks since boot): with pid, one
   * process across pid reuse (shared/process-identity). Absent in states written before it was, or
   * when /proc could not tell.
   */
  pid_start?: string;
  /** /proc/sys/kernel/random/boot_id: a state file from another boot carries nothing forward. */
  boot_id?: string | null;
  /** Written by a clean stop (SIGTERM/SIGINT): a fencer started more than fence_after_s later inherits nothing from it. */
  clean_stop?: boolean;
  host_id: string;
  /** Wall clock of this write, epoch ms. */
  written_at_ms: number;
  /** CLOCK_MONOTONIC of this write, ms (clock.bootMonoMs): comparable within this boot_id, immune to wall-clock steps. */
  written_at_mono_ms?: number;
  /** CLOCK_BOOTTIME − CLOCK_MONOTONIC of this write, ms (clock.ts fencerClock.bootOffset): its growth since is the host's suspends. */
  boot_offset_ms?: number;
  started_at_ms: number;
  action: 'reboot' | 'crash' | 'kill-vms' | 'log-only' | 'command';
  fence_after_s: number;
  probe_interval_s: number;
  probe_timeout_s: number;
  /** not_a_device: watchdog_device is a regular file or FIFO, which resets nothing. */
  watchdog: { device: string; open: boolean; petting: boolean; last_pet_age_s: number | null; timeout_s: number; not_a_device?: boolean };
  /** Set once the fencer has fenced (or, with log-only, would have). */
  fenced: FenceMarker | null;
  /** The marker found at start: the fence before the last boot, until an admin removes it. */
  last_fence: FenceMarker | null;
  pools: PoolState[];
  /** fencer.runtime_pools_file, and why it is not applied (null when it is, or absent). */
  runtime_pools?: { file: string; error: string | null };
  /** action = "kill-vms": counters over all pools since the fencer started. */
  kill_vms?: KillVmsCounters;
}

export function statePath(stateDir: string): string {
  return join(stateDir, STATE_FILE);
}

/**
 * Synchronous and on local disk (state_dir): no threadpool work, so a poisoned pool cannot delay it.
 * A state_dir that disappeared (rm -rf /run/brick) is made again: the next fencer must find the file.
 */
export function writeFencerState(stateDir: string, s: FencerState): void {
  const text = JSON.stringify(s) + '\n';
  // Atomic, not fsynced: rewritten every tick (an fsync per tick on a loaded disk would delay the
  // loop), and it only has to survive the fencer process, never the host (a state file from before
  // a boot is ignored; the lease in marker_dir is the durable record).
  const o = { durable: false };
  try {
    writeFileAtomic(statePath(stateDir), text, o);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    ensureDir(stateDir, STATE_DIR_MODE);
    writeFileAtomic(statePath(stateDir), text, o);
  }
}

/** What a new fencer needs from this state (planner.inherit). */
export function stateRecord(s: FencerState): PreviousRecord {
  return {
    pid: s.pid,
    bootId: s.boot_id ?? undefined,
    writtenAtMs: s.written_at_ms,
    ...(typeof s.written_at_mono_ms === 'number' ? { writtenAtMonoMs: s.written_at_mono_ms } : {}),
    ...(typeof s.boot_offset_ms === 'number' ? { bootOffsetMs: s.boot_offset_ms } : {}),
    clean: s.clean_stop === true,
    armed: s.pools.filter((p) => p.armed).map((p) => ({ path: p.path, lastOkAgeS: p.last_ok_age_s })),
  };
}

/**
 * Make `dir` and its missing parents with exactly `mode` (mkdir(2) applies the umask: 0755 would be
 * 0700 under umask 077, and a 0777 asked for would stay 0777 under umask 000). A directory that is
 * there already is left as it is (`brick doctor` says when others can write it).
 */
export function ensureDir(dir: string, mode = 0o755): void {
  // mkdirSync returns the first directory it made: it and every one below it down to dir are ours.
  for (const d of dirsMade(dir, mkdirSync(dir, { recursive: true, mode }))) chmodSync(d, mode);
}

/**
 * readFencerState for the agent's event loop (storage health): read with a deadline, at most one read
 * outstanding in state_dir (shared/bounded-read.ts). unread: why the file is there but could not be
 * read (an errno, no answer in time); undefined when it was read or there is none.
 */
export async function readFencerStateBounded(stateDir: string, reader: BoundedReader = boundedReader): Promise<{ state?: FencerState; unread?: string }> {
  const r = await reader.read(statePath(stateDir));
  if (r.kind === 'ok') return { state: fencerStateOf(r.text) };
  return r.kind === 'error' && r.code === 'ENOENT' ? {} : { unread: readFailure(r) };
}

/** The state the daemon last wrote, or undefined when there is none (or it is unreadable). */
export function readFencerState(stateDir: string): FencerState | undefined {
  let text: string;
  try {
    text = readFileSync(statePath(stateDir), 'utf8');
  } catch {
    return undefined;
  }
  return fencerStateOf(text);
}

/** readFencerState's judgement of the file's text (pure): the state, or undefined when it is no state. */
export function fencerStateOf(text: string): FencerState | undefined {
  try {
    const s = JSON.parse(text) as FencerState;
    if (!isObj(s) || s.version !== 1 || !Array.isArray(s.pools)) return undefined;
    // The fencer's start-up reads this (inherit, its runtime pools, kill-vms): a pool entry it cannot
    // read goes (a null one made start-up throw a TypeError: a crash loop, nothing guarded), and a
    // runtime pool's settings that are not ours are no runtime pool to rebuild. What is left of an
    // entry is judged as it is (an age that is no number is lost: planner.inherit).
    s.pools = s.pools
      .filter((p) => isObj(p) && typeof p.path === 'string')
      .map((p) => (p.source === 'runtime' && !(['ovm', 'kvm'].includes(p.heartbeat) && ['in-use', 'always'].includes(p.fence_when)) ? { ...p, source: undefined } : p));
    return s;
  } catch {
    return undefined;
  }
}

/** A reader's view of the state: the state, nothing when there is no file, or why the file is unusable. */
export interface LoadedState {
  state?: FencerState;
  problem?: string;
  /** The disk did not answer in time (a hung state_dir): problem says so. */
  noAnswer?: boolean;
}

/**
 * The state for a reader that reports it (brick status, heartbeat_status, host_capabilities, the
 * metrics): the state, nothing when there is no file, or why the file is unusable (not JSON, a
 * field those readers use missing or of another type), so that they say so instead of calling a
 * file that is there "missing" or failing on it with a TypeError.
 */
export function loadFencerState(stateDir: string): LoadedState {
  let text: string;
  try {
    text = readFileSync(statePath(stateDir), 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? {} : { problem: `cannot read it: ${code ?? (e as Error).message}` };
  }
  return loadedStateOf(text);
}

/**
 * loadFencerState for the agent's event loop (brick serve): the file is read off the main thread
 * with a deadline and at most one read outstanding in state_dir (shared/bounded-read.ts), so a
 * state_dir that hangs gives "could not be read within N s" instead of stopping every call.
 */
export async function loadFencerStateBounded(stateDir: string, reader: BoundedReader = boundedReader): Promise<LoadedState> {
  const r = await reader.read(statePath(stateDir));
  if (r.kind === 'ok') return loadedStateOf(r.text);
  if (r.kind === 'error' && r.code === 'ENOENT') return {};
  return noAnswer(r) ? { problem: readFailure(r), noAnswer: true } : { problem: readFailure(r) };
}

/** loadFencerState's judgement of the file's text (pure). */
export function loadedStateOf(text: string): LoadedState {
  let s: unknown;
  try {
    s = JSON.parse(text);
  } catch {
    return { problem: text.trim() ? 'not JSON (truncated or corrupt)' : 'not JSON (empty)' };
  }
  const problem = stateShapeProblem(s);
  return problem ? { problem } : { state: s as FencerState };
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const numOrNull = (v: unknown) => v === null || isNum(v);

/** The first field a reader of the state uses that is missing or of the wrong type, or null. */
function stateShapeProblem(s: unknown): string | null {
  if (!isObj(s)) return 'not a JSON object';
  if (s.version !== 1) return `version ${JSON.stringify(s.version)}, not 1`;
  for (const k of ['pid', 'written_at_ms'] as const) if (!isNum(s[k])) return `${k} is not a number`;
  for (const k of ['host_id', 'action'] as const) if (typeof s[k] !== 'string') return `${k} is not a string`;
  if (s.pid_start !== undefined && typeof s.pid_start !== 'string') return 'pid_start is not a string';
  const w = s.watchdog;
  if (!isObj(w) || typeof w.device !== 'string' || typeof w.open !== 'boolean' || typeof w.petting !== 'boolean') return 'watchdog is not {device, open, petting}';
  if (s.fenced !== null && !isObj(s.fenced)) return 'fenced is neither null nor a marker';
  if (!Array.isArray(s.pools)) return 'pools is not an array';
  for (const [i, p] of s.pools.entries()) {
    if (!isObj(p) || typeof p.path !== 'string' || typeof p.state !== 'string' || typeof p.armed !== 'boolean') return `pools[${i}] is not {path, state, armed, ...}`;
    if (!numOrNull(p.last_ok_age_s) || !numOrNull(p.fence_in_s)) return `pools[${i}]: last_ok_age_s or fence_in_s is neither a number nor null`;
    if (!isObj(p.probe_latency_ms)) return `pools[${i}].probe_latency_ms is not {last, min, max}`;
  }
  return null;
}

/** This boot's id and CLOCK_MONOTONIC (ms, clock.bootMonoMs) at a wall-clock `nowMs`: what a state's mono stamp is compared with. */
export interface MonoNow {
  bootId: string | null | undefined;
  monoMs: number;
}

/** MonoNow gathered now, for the wall-clock `nowMs` (CLOCK_MONOTONIC moved back by the time since nowMs). */
export function monoNow(nowMs = Date.now(), boot: string | null | undefined = bootId()): MonoNow {
  return { bootId: boot, monoMs: bootMonoMs() - (Date.now() - nowMs) };
}

/**
 * Seconds since the daemon wrote this state, as of `nowMs` (wall clock) and `mono` (CLOCK_MONOTONIC at
 * nowMs, and this boot's id: pure when the caller passes them). A state of this boot that carries its
 * CLOCK_MONOTONIC stamp is aged by that clock: a wall clock stepped back after the fencer stopped
 * would otherwise make its last file look "from the future", i.e. fresh, until the clock caught up
 * (and a step forward would make a running fencer's file look stale).
 */
export function stateAgeS(s: FencerState, nowMs = Date.now(), mono: MonoNow = monoNow(nowMs)): number {
  if (typeof s.written_at_mono_ms === 'number' && s.boot_id && s.boot_id === mono.bootId) return Math.max(0, (mono.monoMs - s.written_at_mono_ms) / 1000);
  return Math.max(0, (nowMs - s.written_at_ms) / 1000);
}

/**
 * The state was written in another boot (both boot ids known and different): its fencer ended with
 * that boot, however recent its wall-clock stamp reads (a clock behind after the reboot, an RTC not
 * yet stepped by NTP, would make it look fresh).
 */
export function stateOfAnotherBoot(s: FencerState, boot: string | null | undefined): boolean {
  return Boolean(s.boot_id && boot && s.boot_id !== boot);
}

/**
 * Why the fencer that wrote this state is not running, or null when it is: it rewrote the state
 * within STATE_STALE_S (by CLOCK_MONOTONIC within a boot: stateAgeS), that write was not its last
 * (a clean stop writes clean_stop), the state is of this boot (a state_dir on persistent disk keeps
 * the last boot's file, which a wall clock behind it would make look fresh), and its writer still
 * runs (fencerWriterGone: a SIGKILL leaves a fresh file for up to STATE_STALE_S). A reused pid
 * cannot make an old file look fresh: the age decides that; the writer's pid and start time only
 * tell a fresh file's writer is gone.
 */
export function fencerNotRunning(s: FencerState, nowMs = Date.now(), boot: string | null = bootId() ?? null, writer?: ProcessFacts, mono: MonoNow = monoNow(nowMs, boot)): string | null {
  if (stateOfAnotherBoot(s, boot)) return 'its state is from another boot';
  const age = stateAgeS(s, nowMs, mono);
  if (s.clean_stop === true) return `it stopped cleanly ${round3(age)} s ago`;
  if (age > STATE_STALE_S) return `its last state is ${round3(age)} s old`;
  // writer: a caller that gathered it already (a pure reply built from facts); else gathered here.
  return fencerWriterGone(s, writer ?? fencerWriter(s));
}

/** The fencer is running: fencerNotRunning has nothing to say. */
export function fencerRunning(s: FencerState, nowMs = Date.now(), boot: string | null = bootId() ?? null): boolean {
  return fencerNotRunning(s, nowMs, boot) === null;
}

/**
 * Why the process that wrote this state no longer runs (pure), or null when it does: no process has
 * its pid, or one has but started at another time than the writer (the fencer died and another
 * process drew its pid: by the pid alone it would read as running, and status as "ok", while
 * nothing guards the host). A state without pid_start (written by a brick before it carried one)
 * is judged by the pid alone, as it was then.
 */
export function fencerWriterGone(s: FencerState, writer: ProcessFacts): string | null {
  switch (recordedProcess({ pid: s.pid, start: s.pid_start }, writer)) {
    case 'gone':
      return `its process (pid ${s.pid}) is gone`;
    case 'reused':
      return `its process (pid ${s.pid}) is gone: that pid is another process's now (started at another time)`;
    default:
      return null;
  }
}

/** What /proc says now of the process that wrote this state (gathered: signal 0 and its start time). */
export function fencerWriter(s: FencerState): ProcessFacts {
  return processFacts(s.pid);
}

/**
 * A pool's verdict's ages (planner: judged at a tick) as of `sinceMs` after that tick, when the
 * state is written: the file's ages are as of its written_at, and the next fencer's inherit adds
 * only the time since the write. A state written as judged by a stop up to a tick later (or after a
 * stall of the loop) would make the last verified heartbeat that much younger, and a restart fence
 * that much late.
 */
export function verdictAgesAt(v: { ageMs?: number; fenceInMs?: number } | undefined, sinceMs: number): { last_ok_age_s: number | null; fence_in_s: number | null } {
  const d = Math.max(0, sinceMs);
  return {
    last_ok_age_s: v?.ageMs === undefined ? null : round3((v.ageMs + d) / 1000),
    fence_in_s: v?.fenceInMs === undefined ? null : round3(Math.max(0, v.fenceInMs - d) / 1000),
  };
}

/** A pool's ages brought up to `nowMs` (the file may be up to a tick old). */
export function currentPoolAges(s: FencerState, p: PoolState, nowMs = Date.now()): { last_ok_age_s: number | null; fence_in_s: number | null } {
  const d = stateAgeS(s, nowMs);
  return {
    last_ok_age_s: p.last_ok_age_s === null ? null : round3(p.last_ok_age_s + d),
    fence_in_s: p.fence_in_s === null ? null : round3(Math.max(0, p.fence_in_s - d)),
  };
}

export function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
