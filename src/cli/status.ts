// `brick status [--json]`: what the agent and the fencer are doing, from the fencer's state file and
// fence marker (local disk) and a TCP connect to the agent's listen address. Never touches a pool.
import { connect } from 'node:net';
import type { Config } from '../config/schema.js';
import type { Io } from './io.js';
import { parseListen } from '../config/rules.js';
import { currentPoolAges, fencerRunning, readFencerState, stateAgeS, statePath, round3, type FencerState } from '../fencer/state.js';
import { markerPath, readFenceMarker } from '../fencer/marker.js';

function reachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export interface StatusReport {
  agent: { listen: string; reachable: boolean };
  fencer:
    | null
    | {
        running: boolean;
        state_age_s: number;
        pid: number;
        action: FencerState['action'];
        host_id: string;
        watchdog: FencerState['watchdog'];
        fenced: FencerState['fenced'];
        pools: Array<FencerState['pools'][number]>;
      };
  last_fence: ReturnType<typeof readFenceMarker> | null;
  state_file: string;
  marker_file: string;
}

export async function statusReport(config: Config, nowMs = Date.now()): Promise<StatusReport> {
  const l = parseListen(config.server.listen);
  const s = readFencerState(config.fencer.state_dir);
  return {
    agent: { listen: config.server.listen, reachable: l && l.port > 0 ? await reachable(l.host, l.port) : false },
    fencer: s
      ? {
          running: fencerRunning(s, nowMs),
          state_age_s: round3(stateAgeS(s, nowMs)),
          pid: s.pid,
          action: s.action,
          host_id: s.host_id,
          watchdog: s.watchdog,
          fenced: s.fenced,
          pools: s.pools.map((p) => ({ ...p, ...currentPoolAges(s, p, nowMs) })),
        }
      : null,
    last_fence: readFenceMarker(config.fencer.marker_dir) ?? null,
    state_file: statePath(config.fencer.state_dir),
    marker_file: markerPath(config.fencer.marker_dir),
  };
}

const s1 = (n: number | null) => (n === null ? '-' : `${n.toFixed(1)} s`);
const ms = (n: number | null) => (n === null ? '-' : `${Math.round(n)}`);

export function formatStatus(r: StatusReport): string {
  const out: string[] = [];
  out.push(`agent:    ${r.agent.listen} ${r.agent.reachable ? 'reachable' : 'NOT reachable (brick serve not running?)'}`);
  const f = r.fencer;
  if (!f) out.push(`fencer:   NO STATE (${r.state_file} missing): brick fencer is not running`);
  else {
    out.push(
      `fencer:   ${f.running ? 'running' : `NOT RUNNING (state ${f.state_age_s} s old)`}, pid ${f.pid}, action ${f.action}, host id ${f.host_id}` +
        (f.fenced ? `, FENCED at ${f.fenced.at} (pool ${f.fenced.pool})` : ''),
    );
    const w = f.watchdog;
    out.push(
      w.device
        ? `watchdog: ${w.device} ${w.open ? (w.petting && f.running ? 'petted' : 'NOT petted') : 'closed'}, last pet ${s1(w.last_pet_age_s)} ago, timeout ${w.timeout_s} s`
        : 'watchdog: none (fencer.watchdog_device = ""): a wedged fencer cannot reset this host',
    );
    for (const p of f.pools) {
      out.push(
        `pool ${p.path}: ${f.running ? p.state : 'unknown'}, last heartbeat ${s1(p.last_ok_age_s)} ago, ` +
          `fences in ${p.fence_in_s === null ? '-' : s1(p.fence_in_s)}, in use ${p.in_use}, probe ${ms(p.probe_latency_ms.min)}/${ms(p.probe_latency_ms.max)} ms min/max` +
          (p.stuck_probes ? `, ${p.stuck_probes} stuck probe(s) for ${s1(p.stuck_for_s)}` : '') +
          (p.last_error ? `, last error: ${p.last_error}` : ''),
      );
    }
    if (!f.pools.length) out.push('pools:    none configured ([[fencer.pool]])');
  }
  if (r.last_fence)
    out.push(`last fence: ${r.last_fence.at}, pool ${r.last_fence.pool}: ${r.last_fence.reason} (remove ${r.marker_file} once understood)`);
  return out.join('\n') + '\n';
}

export async function status(config: Config, opts: { json: boolean; io: Io }): Promise<number> {
  const r = await statusReport(config);
  opts.io.out(opts.json ? JSON.stringify(r, null, 2) + '\n' : formatStatus(r));
  return 0;
}
