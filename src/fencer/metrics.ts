// The fencer's state as Prometheus metrics on the agent's GET /metrics, so an alert can fire before a
// fence (a late pool) and after one (the marker). Collected on scrape from the state file the
// fencer rewrites every tick (read through state.ts, never a pool) and the fence marker: nothing is
// kept between scrapes and a scrape costs two small local file reads. Those reads run off the event
// loop with a deadline, at most one outstanding per directory (shared/bounded-read.ts): a state_dir
// or marker_dir on a disk that hangs delays a scrape by the deadline, never the agent, and the
// scrape then says the state could not be used (brick_fencer_state_unusable) with the metrics read
// from it absent, as for a corrupt file.
//
// While the fencer is not running, nothing counts down: per-pool countdowns are left out and each
// pool's state is "unknown", so a dashboard never shows a frozen "fences in" for a stopped fencer.
import { Counter, Gauge, type Registry } from 'prom-client';
import { currentPoolAges, fencerRunning, loadFencerStateBounded, stateAgeS, type FencerState } from './state.js';
import { readFenceMarkerBounded } from './marker.js';
import type { BoundedReader } from '../shared/bounded-read.js';

export const POOL_STATES = ['unverified', 'healthy', 'late', 'expired', 'dead', 'unknown'] as const;

interface Snapshot {
  state: FencerState | undefined;
  /** The state file is there but could not be used: unreadable, no answer in time, or not a state. */
  unusable: boolean;
  running: boolean;
  nowMs: number;
  lastFenceS: number | undefined;
}

/** The scrape's facts from what was read (pure but for fencerRunning's look at the writer's pid and boot id). */
export function fencerSnapshot(loaded: Awaited<ReturnType<typeof loadFencerStateBounded>>, marker: Awaited<ReturnType<typeof readFenceMarkerBounded>>, nowMs: number): Snapshot {
  // An unusable file (truncated, another schema, unreadable, no answer in time) reads as none: no TypeError in a scrape.
  const state = loaded.state;
  const m = marker.marker ?? state?.fenced ?? undefined;
  const at = m ? Date.parse(m.at) : NaN;
  return { state, unusable: loaded.problem !== undefined, running: state ? fencerRunning(state, nowMs) : false, nowMs, lastFenceS: Number.isFinite(at) ? at / 1000 : undefined };
}

export function registerFencerMetrics(registry: Registry, fencer: { state_dir: string; marker_dir: string }, reader?: BoundedReader): void {
  let snap: Promise<Snapshot> | undefined;
  // prom-client starts every metric's collect() in one synchronous loop per scrape: read the files
  // once for all of them (both at once), and forget the snapshot as soon as that loop is over.
  const current = (): Promise<Snapshot> => {
    if (!snap) {
      setImmediate(() => (snap = undefined));
      const nowMs = Date.now();
      snap = Promise.all([loadFencerStateBounded(fencer.state_dir, reader), readFenceMarkerBounded(fencer.marker_dir, reader)]).then(([loaded, marker]) => fencerSnapshot(loaded, marker, nowMs));
    }
    return snap;
  };
  const gauge = <L extends string>(name: string, help: string, labelNames: L[], fill: (g: Gauge<L>, s: Snapshot) => void) =>
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const s = await current();
        this.reset();
        fill(this, s);
      },
    });
  const counter = <L extends string>(name: string, help: string, labelNames: L[], fill: (set: (labels: Record<L, string>, v: number) => void, s: Snapshot) => void) =>
    new Counter<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const s = await current();
        this.reset();
        fill((labels, v) => this.inc(labels as never, v), s);
      },
    });
  const pools = (s: Snapshot) => s.state?.pools ?? [];

  gauge('brick_fencer_state_unusable', '1 when the fencer\'s state file is there but could not be used (not read within 2 s: a hung disk; a read error; not a state this brick reads): the metrics read from it are then absent', [], (g, s) => g.set(s.unusable ? 1 : 0));
  gauge('brick_fencer_running', '1 while the fencer rewrites its state file (brick fencer runs), else 0', [], (g, s) => g.set(s.running ? 1 : 0));
  gauge('brick_fencer_state_age_seconds', 'age of the fencer\'s state file; the fencer counts as stopped above 5 s', [], (g, s) => {
    if (s.state) g.set(stateAgeS(s.state, s.nowMs));
  });
  gauge('brick_fencer_fence_after_seconds', 'fencer.fence_after_s: a used pool fences after this long without a verified heartbeat', [], (g, s) => {
    if (s.state) g.set(s.state.fence_after_s);
  });
  gauge('brick_fencer_pools', 'pools the fencer guards (configured and added at run time)', [], (g, s) => {
    if (s.state) g.set(pools(s).length);
  });
  gauge('brick_fencer_fenced', '1 once the running fencer has fenced (or, log-only, would have)', [], (g, s) => {
    if (s.state) g.set(s.running && s.state.fenced ? 1 : 0);
  });
  gauge('brick_fencer_last_fence_timestamp_seconds', 'when this host last fenced, Unix time (the fence marker, until an admin removes it); 0 = no marker', [], (g, s) => {
    if (s.lastFenceS !== undefined) g.set(s.lastFenceS);
  });
  gauge('brick_fencer_watchdog_open', '1 while the fencer holds the watchdog device open', [], (g, s) => {
    if (s.state) g.set(s.running && s.state.watchdog.open ? 1 : 0);
  });
  gauge('brick_fencer_watchdog_petting', '1 while the fencer pets the watchdog (every armed, used pool verified)', [], (g, s) => {
    if (s.state) g.set(s.running && s.state.watchdog.open && s.state.watchdog.petting ? 1 : 0);
  });
  gauge('brick_fencer_watchdog_last_pet_age_seconds', 'seconds since the fencer last petted the watchdog', [], (g, s) => {
    const a = s.state?.watchdog.last_pet_age_s;
    if (s.state && a !== null && a !== undefined) g.set(a + stateAgeS(s.state, s.nowMs));
  });
  gauge('brick_fencer_pool_state', '1 for the pool\'s current state (unknown while the fencer is not running), 0 for the others', ['pool', 'state'], (g, s) => {
    for (const p of pools(s)) {
      const st = s.running ? p.state : 'unknown';
      for (const x of POOL_STATES) g.set({ pool: p.path, state: x }, x === st ? 1 : 0);
    }
  });
  gauge('brick_fencer_pool_armed', '1 once the pool has had a verified heartbeat (only armed pools fence)', ['pool'], (g, s) => {
    for (const p of pools(s)) g.set({ pool: p.path }, p.armed ? 1 : 0);
  });
  gauge('brick_fencer_pool_in_use', '1 when a running VM uses the pool (or the answer is unknown, which counts as used)', ['pool'], (g, s) => {
    for (const p of pools(s)) g.set({ pool: p.path }, p.in_use === false ? 0 : 1);
  });
  gauge('brick_fencer_pool_heartbeat_age_seconds', 'seconds since the pool\'s last verified heartbeat (absent before the first)', ['pool'], (g, s) => {
    for (const p of pools(s)) {
      const a = currentPoolAges(s.state!, p, s.nowMs).last_ok_age_s;
      if (a !== null) g.set({ pool: p.path }, a);
    }
  });
  gauge('brick_fencer_pool_fence_in_seconds', 'seconds before this pool fences the host (absent when it cannot: unverified, idle, or the fencer stopped)', ['pool'], (g, s) => {
    if (!s.running) return;
    for (const p of pools(s)) {
      const f = currentPoolAges(s.state!, p, s.nowMs).fence_in_s;
      if (f !== null) g.set({ pool: p.path }, f);
    }
  });
  gauge('brick_fencer_pool_probe_latency_seconds', 'probe latency: the last probe, and the min and max since the fencer started', ['pool', 'stat'], (g, s) => {
    for (const p of pools(s))
      for (const stat of ['last', 'min', 'max'] as const) {
        const v = p.probe_latency_ms[stat];
        if (v !== null) g.set({ pool: p.path, stat }, v / 1000);
      }
  });
  gauge('brick_fencer_pool_stuck_probes', 'probes past their deadline whose child has not exited (D state)', ['pool'], (g, s) => {
    for (const p of pools(s)) g.set({ pool: p.path }, p.stuck_probes);
  });
  counter('brick_fencer_pool_probes_ok_total', 'verified probes since the fencer started', ['pool'], (set, s) => {
    for (const p of pools(s)) set({ pool: p.path }, p.probes_ok);
  });
  counter('brick_fencer_pool_probe_failures_total', 'failed probes (error, mismatch or deadline) since the fencer started', ['pool'], (set, s) => {
    for (const p of pools(s)) set({ pool: p.path }, p.probes_failed);
  });
}
