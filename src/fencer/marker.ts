// The fence marker: `<marker_dir>/fence-marker.json` on local persistent disk, written durably just
// before the fence action so it survives the reset. After boot the fencer reports it (state
// `last_fence`), and so do `brick status` and heartbeat_status, until an administrator who has looked
// at why the host fenced removes the file (`rm /var/lib/brick/fence-marker.json`). brick never clears
// it by itself: a host that fenced must stay visibly "fenced before" until a person acknowledges it.
//
// The fence action never waits on the marker for more than MARKER_DEADLINE_MS: marker_dir is written
// only by short coreutils children (as the probe writes a pool, probe.ts), never by the fencer
// process itself (a hung FUSE or NFS marker_dir would pin a libuv thread or the main thread), and
// the fence goes ahead at the deadline even if a child sits in the kernel forever.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Runner } from '../shared/run.js';
import {
  DURABLE_STEP_TIMEOUT_MS, durableWriteSteps, resolveDurableWriteTools, writeDurably, type DurableOutcome, type DurableWriteTools,
} from '../shared/durable-write.js';
import { writeFileAtomic } from '../shared/atomic-write.js';
import { boundedReader, readFailure, type BoundedReader } from '../shared/bounded-read.js';
import { monoMs } from './clock.js';

export const MARKER_FILE = 'fence-marker.json';
export const MARKER_DEADLINE_MS = 500;
/** marker_dir's mode when brick makes it (as the packages do: /var/lib/brick 0700). */
export const MARKER_DIR_MODE = 0o700;

export interface FenceMarker {
  /** Wall clock, ISO 8601. */
  at: string;
  pool: string;
  reason: string;
  action: string;
  host_id: string;
  /** Seconds since the pool's last verified heartbeat when the fencer fenced. */
  last_ok_age_s: number | null;
}

export function markerPath(markerDir: string): string {
  return join(markerDir, MARKER_FILE);
}

export function writeFenceMarker(markerDir: string, m: FenceMarker): void {
  writeFileAtomic(markerPath(markerDir), JSON.stringify(m) + '\n');
}

export function readFenceMarker(markerDir: string): FenceMarker | undefined {
  try {
    return fenceMarkerOf(readFileSync(markerPath(markerDir), 'utf8'));
  } catch {
    return undefined;
  }
}

/** The marker in the file's text, or undefined when it is none (pure). */
export function fenceMarkerOf(text: string): FenceMarker | undefined {
  try {
    const m = JSON.parse(text) as FenceMarker;
    return m && typeof m.at === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The fence marker for the agent's event loop (heartbeat_status, the metrics): read with a deadline,
 * at most one read outstanding in marker_dir (shared/bounded-read.ts), so a marker_dir on a disk
 * that hangs costs a reply at most the deadline. gone: there is no marker file (an admin removed
 * it: the fence is acknowledged); unread: why it is there but could not be read (an errno, no
 * answer in time, or not a marker), when the caller has only the fencer's own copy to go by.
 */
export async function readFenceMarkerBounded(markerDir: string, reader: BoundedReader = boundedReader): Promise<{ marker?: FenceMarker; gone?: true; unread?: string }> {
  const r = await reader.read(markerPath(markerDir));
  if (r.kind === 'ok') {
    const marker = fenceMarkerOf(r.text);
    return marker ? { marker } : { unread: 'not a fence marker' };
  }
  return r.kind === 'error' && r.code === 'ENOENT' ? { gone: true } : { unread: readFailure(r) };
}

export type MarkerOutcome = DurableOutcome;

/**
 * Writes to marker_dir (the fence marker, the lease) through child processes, so the fencer never
 * blocks on that directory: nothing here waits on a child past its own deadline.
 */
export interface MarkerWriter {
  /**
   * Write the marker durably. Resolves by `deadlineMs` whatever the disk does ('timeout'; the
   * write goes on in the background and is logged through `late` if it ends after all); never rejects.
   */
  write(markerDir: string, m: FenceMarker, deadlineMs?: number, late?: (outcome: 'written' | { error: string }, afterMs: number) => void): Promise<MarkerOutcome>;
  /**
   * Write a file durably without waiting. One write per file at a time, in order; a text posted
   * while one is under way replaces any not yet started (the latest wins, an older one never lands
   * after a newer one). `done` reports the outcome of a write that ran; a replaced one never runs.
   */
  post(file: string, text: string, done?: (error: string | null) => void): void;
  /** Resolves true once everything posted so far is done, false at the deadline. */
  flush(deadlineMs: number): Promise<boolean>;
}

/** The coreutils the writer runs, absolute paths resolved once at start (host-tools.ts). */
export type MarkerTools = DurableWriteTools;

export async function resolveMarkerTools(): Promise<MarkerTools> {
  return resolveDurableWriteTools("the fencer's marker writes need");
}

/** Each child's deadline (it is SIGKILLed then; one stuck in the kernel keeps its file's queue, never the fencer). */
export const MARKER_STEP_TIMEOUT_MS = DURABLE_STEP_TIMEOUT_MS;

/** One durable replacement of `file`: the same steps as writeFileAtomic, each a child (shared/durable-write.ts). */
export const markerWriteSteps = durableWriteSteps;

interface FileQueue {
  busy: boolean;
  next?: { text: string; done?: (error: string | null) => void };
  idle: Array<() => void>;
}

/** The writer (created once, at start-up: the fence path starts nothing but its children). */
export function startMarkerWriter(tools: MarkerTools, run: Runner, opts: { stepTimeoutMs?: number; now?: () => number } = {}): MarkerWriter {
  const stepTimeoutMs = opts.stepTimeoutMs ?? MARKER_STEP_TIMEOUT_MS;
  const now = opts.now ?? monoMs;
  const queues = new Map<string, FileQueue>();
  const pump = (file: string, q: FileQueue): void => {
    const job = q.next;
    if (!job) {
      q.busy = false;
      for (const w of q.idle.splice(0)) w();
      return;
    }
    q.next = undefined;
    q.busy = true;
    void writeDurably(run, tools, file, job.text, stepTimeoutMs).then((error) => {
      try {
        job.done?.(error);
      } finally {
        pump(file, q);
      }
    });
  };
  const post = (file: string, text: string, done?: (error: string | null) => void): void => {
    let q = queues.get(file);
    if (!q) queues.set(file, (q = { busy: false, idle: [] }));
    q.next = { text, done };
    if (!q.busy) pump(file, q);
  };
  return {
    write(markerDir, m, deadlineMs = MARKER_DEADLINE_MS, late) {
      const start = now();
      return new Promise<MarkerOutcome>((resolve) => {
        let settled = false;
        const timer = setTimeout(() => {
          settled = true;
          resolve('timeout');
        }, deadlineMs);
        try {
          post(markerPath(markerDir), JSON.stringify(m) + '\n', (error) => {
            const outcome = error === null ? ('written' as const) : { error };
            if (settled) return late?.(outcome, now() - start - deadlineMs);
            settled = true;
            clearTimeout(timer);
            resolve(outcome);
          });
        } catch (e) {
          settled = true;
          clearTimeout(timer);
          resolve({ error: (e as Error).message });
        }
      });
    },
    post,
    flush(deadlineMs) {
      const busy = [...queues.values()].filter((q) => q.busy);
      if (!busy.length) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), deadlineMs);
        let left = busy.length;
        for (const q of busy)
          q.idle.push(() => {
            if (--left === 0) {
              clearTimeout(timer);
              resolve(true);
            }
          });
      });
    },
  };
}
