// Shared by the e2e test files: the prerequisite gate (CI=true: fail; elsewhere: skip with the
// reason), the fencer timings the scenarios use, and recording measured times in bench/out/.
import { mkdirSync, readFileSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { missingPrerequisites, REPO } from './image.js';
import type { Vm, VmEvent } from './vm.js';
import { describeFigure, type Figure } from '../../bench/lib.js';

/** undefined when the VM tier can run here; otherwise why not. With CI=true a reason is a failure. */
export function vmUnavailable(): string | undefined {
  if (process.env.BRICK_E2E_SKIP === '1' && process.env.CI !== 'true') return 'BRICK_E2E_SKIP=1';
  const missing = missingPrerequisites();
  if (!missing.length) return undefined;
  const why = `end-to-end VM prerequisites missing: ${missing.join(', ')} (run scripts/install-test-deps.sh)`;
  if (process.env.CI === 'true') throw new Error(why);
  return why;
}

/** Short fencer timings so a scenario takes seconds; they satisfy config/rules.ts (fence_after ≥ 2 × probe_timeout). */
export const TIMING = { probe_interval_s: 1, probe_timeout_s: 2, fence_after_s: 6, watchdog_timeout_s: 5 } as const;

/**
 * fence_after_s 10: the short suspend (1-2 s) must not fence, and a probe in flight across it may
 * wait out its whole probe_timeout_s on an NFS call the resumed client retransmits: the pool's age
 * on resume is up to a probe cycle, the suspend, that timeout and the next probe (about 7 s here).
 */
export const SUSPEND_TIMING = { ...TIMING, fence_after_s: 10 } as const;

/**
 * From resume to the reset: the fencer's first tick after it (250 ms at TIMING), the fence marker's
 * write (waited on for 500 ms at most), and the resumed guest's user space getting an emulated CPU
 * back on a loaded machine: 0.85-1.21 s measured here, the marker wait included. A fence that waited
 * for anything else would come fence_after_s (10 s) later, or never.
 */
export const RESUME_FENCE_BOUND_S = 3;

export const SUSPEND_FIGURE_TITLE = 'resume from a suspend to RAM past fence_after_s to sysrq reset (guest kernel clock: printk time of "PM: suspend exit" to that of "sysrq: Resetting")';

/**
 * The slow-storage scenario's timings. Under TCG a probe's four child processes alone take 0.3-1 s
 * of the guest's emulated CPU (a few ms on a real host), so with probe_timeout_s = 2 the 30 % left
 * after 0.7 × probe_timeout_s of NFS delay is eaten by the emulator, not by brick: a longer
 * timeout keeps the scenario about storage latency. These are brick's shipped defaults (5/10/30/20 s),
 * the watchdog's included: the scenario proves that slow but answering NFS does not fence (no sysrq,
 * heartbeats keep landing), not how fast softdog fires. With watchdog_timeout_s = 5 a TCG guest on a
 * loaded machine missed pets for 5 s before the test began and softdog reset it: a stall of the
 * emulator, not of brick (fence-sigstop covers the watchdog path at a short timeout).
 */
export const NETEM_TIMING = { probe_interval_s: 5, probe_timeout_s: 10, fence_after_s: 30, watchdog_timeout_s: 20 } as const;

/**
 * The kill-vms scenario's timings (test/e2e/kill-vms.test.ts, bench/kill-vms.ts): brick's default
 * probes and watchdog, as NETEM_TIMING, for a TCG guest on a loaded machine.
 */
export const KILL_VMS_TIMING = {
  probe_interval_s: 5,
  probe_timeout_s: 10,
  fence_after_s: 30,
  watchdog_timeout_s: 20,
  // Not the default 10 s: under TCG on a loaded 2-core machine one scan of the guest's /proc took
  // 5-7 s (measured: the round that finds the holders, then the round after the kill that must
  // show them gone, did not both finish in 10 s, and the guest was reset with "still held by").
  kill_timeout_s: 30,
  // fence_after_s + kill_timeout_s + watchdog_timeout_s + 5 = 85 must be below it (check-config)
  dead_host_window_s: 90,
} as const;

/**
 * How late the host may see qemu exit after the guest's reset, on top of a bound measured on the
 * guest's clock: the console line's trip to the host and qemu's exit. The bounds themselves are
 * asserted on the guest kernel's own timestamps (printk time of the reset vs /proc/uptime at the cut).
 */
export const HOST_SLACK_S = 0.25;

/**
 * What the guest's clock cannot resolve: /proc/uptime has 10 ms resolution, and an emulated CPU
 * sharing 2 host cores with other test VMs may run an expired kernel timer (softdog's) a few tens of
 * ms late. Added to bounds that have no other slack (softdog: reset = last pet + watchdog_timeout_s).
 */
export const GUEST_CLOCK_SLACK_S = 0.05;

/** The uptime=S field the guest prints on its cut/stop line. */
export function uptimeField(e: VmEvent): number {
  const m = /uptime=(\d+\.\d+)/.exec(e.text);
  if (!m) throw new Error(`no uptime= in guest line "${e.text}"`);
  return Number(m[1]);
}

export const secondsBetween = (a: number, b: number) => Math.round(b - a) / 1000;

/** The guest-side checks: every "ok" name, and the text of every "fail". */
export function guestChecks(vm: Vm): { ok: string[]; failed: string[] } {
  return { ok: vm.events.filter((e) => e.event === 'ok').map((e) => e.text), failed: vm.failures() };
}

export function lastTickBefore(vm: Vm, atHostMs: number): VmEvent | undefined {
  return vm.events.filter((e) => e.event === 'tick' && e.hostMs <= atHostMs).at(-1);
}

/** A tick gap longer than this is counted as time the guest did not run (its ticker: a line every 0.25 s; 0.36 s mean, 0.52 s max here). */
export const STALL_GAP_S = 1;

/**
 * How long the guest's user space did not run between two moments of its clock (epoch ms from its
 * own `date`), as its ticker (lib.sh, a line every 0.25 s) shows: over consecutive ticks (and the
 * event `from` that starts the stretch), the sum of what each gap longer than STALL_GAP_S exceeds
 * it by. A TCG guest whose qemu the loaded host does not schedule runs no timer, the fencer's
 * included, and shows it here as a gap. The fencer is a normal process like the ticker, so a fencer
 * that waits on something else (a blocked read, the thread pool) does not show here.
 */
export function guestStall(vm: Vm, fromGuestMs: number): { stallS: number; maxGapS: number; ticks: number } {
  const at = [fromGuestMs, ...vm.events.filter((e) => e.event === 'tick' && e.guestMs >= fromGuestMs).map((e) => e.guestMs)];
  let stall = 0;
  let maxGap = 0;
  for (let i = 1; i < at.length; i++) {
    const gap = (at[i] - at[i - 1]) / 1000;
    maxGap = Math.max(maxGap, gap);
    if (gap > STALL_GAP_S) stall += gap - STALL_GAP_S;
  }
  const r3 = (n: number) => Math.round(n * 1000) / 1000;
  return { stallS: r3(stall), maxGapS: r3(maxGap), ticks: at.length - 1 };
}

/**
 * When (guest epoch ms) the first console line matching `re` was printed, as closely as the guest's
 * E2E lines around it place it: the last one before it and the first one after it.
 */
export function consoleLineAt(vm: Vm, re: RegExp): { line: string; afterMs?: number; beforeMs?: number } | undefined {
  let last: number | undefined;
  for (let i = 0; i < vm.lines.length; i++) {
    const l = vm.lines[i];
    const e = /E2E (\d+\.\d+) /.exec(l);
    if (e) last = Number(e[1]) * 1000;
    else if (re.test(l)) {
      let next: number | undefined;
      for (let j = i + 1; j < vm.lines.length && next === undefined; j++) {
        const n = /E2E (\d+\.\d+) /.exec(vm.lines[j]);
        if (n) next = Number(n[1]) * 1000;
      }
      return { line: l, afterMs: last, beforeMs: next };
    }
  }
  return undefined;
}

/**
 * Merge figures into bench/out/<area>.json (default e2e.json; bench/lib.ts's format, so bench/report.ts
 * renders them): several test files write it, each replacing its own figure ids. Also prints one line per figure.
 */
export function recordE2e(figures: Figure[], note?: string, area = 'e2e'): void {
  const dir = join(REPO, 'bench', 'out');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${area}.json`);
  let doc: { area: string; at: string; loadavg?: number[]; figures: Figure[]; notes?: string[] } = { area, at: '', figures: [] };
  if (existsSync(file)) {
    try {
      doc = JSON.parse(readFileSync(file, 'utf8'));
      doc.figures ??= [];
    } catch {
      /* a torn file from a concurrent writer: start over */
    }
  }
  const ids = new Set(figures.map((f) => f.id));
  doc.figures = [...doc.figures.filter((f) => !ids.has(f.id)), ...figures].sort((a, b) => a.id.localeCompare(b.id));
  doc.at = new Date().toISOString();
  doc.loadavg = loadavg();
  if (note) doc.notes = [...(doc.notes ?? []).filter((n) => n.split(':')[0] !== note.split(':')[0]), note];
  const tmp = `${file}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify(doc, null, 2) + '\n');
  renameSync(tmp, file);
  for (const f of figures) process.stdout.write(`${area}: ${describeFigure(f)}\n`);
}

/** One measured run as a figure (n = 1; bench/e2e.ts repeats runs for more samples). */
export function figure(id: string, title: string, unit: string, samples: number[], bound?: number, note?: string): Figure {
  return { id: `e2e.${id}`, title, unit, better: 'lower', brick: { name: 'brick', samples }, ...(bound === undefined ? {} : { bound }), ...(note ? { note } : {}) };
}
