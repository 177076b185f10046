// The fencer's lease: `<marker_dir>/fencer-lease.json` on local persistent disk, the second record
// (after the state file in state_dir) of which pools the running fencer has armed. Written only
// when that set changes, at start and at a clean stop (atomic, fsynced), so a fencer that crashes
// and comes back to a state_dir that is gone, full or unreadable still knows it had armed pools
// (wdmd keeps a client's expiry when the client goes away, reference/fencing.md §2.3).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PreviousRecord } from './planner.js';

export const LEASE_FILE = 'fencer-lease.json';

export interface Lease {
  version: 1;
  pid: number;
  boot_id: string | null;
  written_at_ms: number;
  /** CLOCK_MONOTONIC of this write, ms (clock.bootMonoMs). */
  written_at_mono_ms?: number;
  /** CLOCK_BOOTTIME − CLOCK_MONOTONIC of this write, ms (clock.ts fencerClock.bootOffset): grows by the host's suspends. */
  boot_offset_ms?: number;
  /** true once the fencer stopped cleanly: nothing to carry forward. */
  clean: boolean;
  armed: string[];
}

export function leasePath(markerDir: string): string {
  return join(markerDir, LEASE_FILE);
}

/** The lease file's text; the fencer posts it to its marker writer (children), never writes it itself. */
export function leaseText(l: Lease): string {
  return JSON.stringify(l) + '\n';
}

export function readLease(markerDir: string): Lease | undefined {
  try {
    const l = JSON.parse(readFileSync(leasePath(markerDir), 'utf8')) as Lease;
    return l && l.version === 1 && Array.isArray(l.armed) && typeof l.pid === 'number' ? l : undefined;
  } catch {
    return undefined;
  }
}

export function leaseRecord(l: Lease): PreviousRecord {
  return {
    pid: l.pid,
    bootId: l.boot_id ?? undefined,
    writtenAtMs: l.written_at_ms,
    ...(typeof l.written_at_mono_ms === 'number' ? { writtenAtMonoMs: l.written_at_mono_ms } : {}),
    ...(typeof l.boot_offset_ms === 'number' ? { bootOffsetMs: l.boot_offset_ms } : {}),
    // Only a clean stop that says so is one (a crash's expiry must not go for a "clean" that is no true).
    clean: l.clean === true,
    armed: l.armed.filter((path): path is string => typeof path === 'string').map((path) => ({ path, lastOkAgeS: null })),
  };
}

/** This boot's id (changes at every boot), or undefined where the kernel has none. */
export function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
