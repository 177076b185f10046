// The fencer's clocks. CLOCK_MONOTONIC (process.hrtime) stops while the host is suspended to RAM or
// disk, as softdog's timer and every timer of this process do; CLOCK_BOOTTIME and the peers' clocks
// go on. A pool's age must count that time: a host whose heartbeat was silent for longer than
// fence_after_s may have had its VMs started elsewhere, whatever its own clocks say.
import { readFileSync } from 'node:fs';

// Milliseconds since this module loaded, as performance.now() counts from the process's start. The
// global `performance` loads perf_hooks and its timing modules (about 0.5 MB of the fencer's idle
// RSS) for nothing else.
const origin = process.hrtime.bigint();

export const monoMs = (): number => Number(process.hrtime.bigint() - origin) / 1e6;

/**
 * CLOCK_MONOTONIC itself, in ms: the same clock in every process of this boot, so a stamp one fencer
 * writes and the next one reads gives the time between them whatever the wall clock did meanwhile.
 */
export const bootMonoMs = (): number => Number(process.hrtime.bigint() / 1000n) / 1000;

/** /proc/uptime's first field (CLOCK_BOOTTIME, in 10 ms steps) in ms; undefined when unreadable or not a number. */
export function parseUptimeMs(text: string): number | undefined {
  const m = /^(\d+)(?:\.(\d{1,9}))?\s/.exec(text);
  if (!m) return undefined;
  const frac = m[2] ? Number(m[2].padEnd(3, '0').slice(0, 3)) : 0;
  return Number(m[1]) * 1000 + frac;
}

function readUptimeMs(): number | undefined {
  try {
    return parseUptimeMs(readFileSync('/proc/uptime', 'latin1'));
  } catch {
    return undefined;
  }
}

/**
 * How long the host has been suspended since the first sample: the growth of CLOCK_BOOTTIME −
 * CLOCK_MONOTONIC, which only a suspend changes (a time namespace's offsets are constant). Pure: fed
 * readings; never decreases. /proc/uptime's 10 ms steps can add up to 10 ms once, never more.
 */
export class SuspendMeter {
  private base: number | undefined;
  private total = 0;

  /** Take a reading (boottime undefined: unreadable, nothing learnt); returns the total suspended so far, ms. */
  sample(boottimeMs: number | undefined, monotonicMs: number): number {
    if (boottimeMs === undefined || !Number.isFinite(boottimeMs)) return this.total;
    const d = boottimeMs - monotonicMs;
    if (this.base === undefined) this.base = d;
    else this.total = Math.max(this.total, d - this.base);
    return this.total;
  }

  get totalMs(): number {
    return this.total;
  }

  /** CLOCK_BOOTTIME − CLOCK_MONOTONIC as of the last reading (the first one's, plus the growth since), ms; undefined before any. */
  get offsetMs(): number | undefined {
    return this.base === undefined ? undefined : Math.round(this.base + this.total);
  }
}

/**
 * The fencer's clock: CLOCK_MONOTONIC since this module loaded plus the time the host was suspended
 * since the fencer's first sample (CLOCK_BOOTTIME with CLOCK_MONOTONIC's resolution). `sample()`
 * reads /proc/uptime (one read of a procfs file: it never waits on storage) and is called at the top of
 * every loop tick, which is where a resume is first seen; between samples the clock runs on
 * CLOCK_MONOTONIC alone, so it never goes back and never jumps but at a sample.
 */
export function fencerClock(
  read: () => number | undefined = readUptimeMs,
  mono: () => number = bootMonoMs,
): { now: () => number; sample: () => number; bootOffset: () => number | undefined } {
  const meter = new SuspendMeter();
  const at = mono();
  meter.sample(read(), at);
  return {
    now: () => mono() - at + meter.totalMs,
    sample: () => {
      const m = mono();
      return meter.sample(read(), m);
    },
    /**
     * CLOCK_BOOTTIME − CLOCK_MONOTONIC (ms) as of the last sample: the host's suspends since boot (plus
     * a time namespace's constant offset), to 10 ms. A record stamped with it and with bootMonoMs lets
     * the next fencer count a suspend between the two (planner.inherit); no read of its own. A suspend
     * after the last sample makes it low, which the next fencer counts as more suspend, never less.
     * undefined while /proc/uptime has never been read.
     */
    bootOffset: () => meter.offsetMs,
  };
}
