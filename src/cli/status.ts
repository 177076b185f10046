// `brick status [--json]`: what the agent and the fencer are doing, from the fencer's state file and
// fence marker (local disk; never a pool) and one authenticated call to the agent. The exit code is
// the verdict, for scripts and monitoring checks: 0 all well, 3 degraded, 4 not protected
// (commands.ts EXIT_CODES).
import type { Config } from '../config/schema.js';
import type { Io } from './io.js';
import { EXIT } from './commands.js';
import { checkAgent, type AgentCheck } from './agent-check.js';
import { currentPoolAges, fencerNotRunning, loadFencerState, stateAgeS, statePath, round3, type FencerState, type PoolState } from '../fencer/state.js';
import { markerPath, readFenceMarker } from '../fencer/marker.js';

export type Verdict = 'ok' | 'degraded' | 'not-protected';

export interface StatusReport {
  verdict: Verdict;
  /** Why the verdict is not ok, one short phrase each (most serious first). */
  reasons: string[];
  agent: AgentCheck;
  fencer:
    | null
    | {
        running: boolean;
        /** Why the fencer is not running (null when it is): a stale, cleanly stopped or other boot's state, or its writer gone. */
        not_running: string | null;
        state_age_s: number;
        pid: number;
        action: FencerState['action'];
        host_id: string;
        watchdog: FencerState['watchdog'];
        fenced: FencerState['fenced'];
        /** As of now. While the fencer is not running, state is "unknown" and fence_in_s null: nothing is counting. */
        pools: Array<Omit<PoolState, 'state'> & { state: PoolState['state'] | 'unknown' }>;
        /** fencer.runtime_pools_file and why the fencer does not apply it (null when it does). */
        runtime_pools?: { file: string; error: string | null } | null;
        /** [[fencer.pool]] paths of the config that the fencer does not guard: it started before they were added. */
        unguarded?: string[];
      };
  last_fence: ReturnType<typeof readFenceMarker> | null;
  /** Why the state file, which is there, cannot be used (fencer is null then); null otherwise. */
  state_error: string | null;
  state_file: string;
  marker_file: string;
}

type Facts = Omit<StatusReport, 'verdict' | 'reasons'>;

/** The verdict, a pure function of the gathered facts. */
export function judgeStatus(r: Facts): { verdict: Verdict; reasons: string[] } {
  const bad: string[] = [];
  const warn: string[] = [];
  const f = r.fencer;
  if (!f) bad.push(r.state_error ? `the fencer state ${r.state_file} is unusable (${r.state_error})` : 'the fencer is not running (no state file)');
  else {
    if (!f.running) bad.push(`the fencer is not running (${f.not_running ?? `state ${f.state_age_s} s old`})`);
    if (f.fenced) bad.push(`the fencer fenced at ${f.fenced.at} (pool ${f.fenced.pool})`);
    if (f.running && !f.pools.length) bad.push('the fencer guards no pool');
    if (f.running && f.runtime_pools?.error) warn.push(`the runtime pools file ${f.runtime_pools.file} is unusable (${f.runtime_pools.error}); the fencer keeps its last good set`);
    if (f.action === 'log-only') bad.push('fencer.action = "log-only": a lost pool never resets this host');
    if (f.running) for (const p of f.unguarded ?? []) bad.push(`pool ${p} is in the config but not guarded (restart brick-fencer to apply the config)`);
    if (f.running) {
      for (const p of f.pools) {
        if (p.state === 'expired') bad.push(`pool ${p.path} expired`);
        else if (p.state === 'late') warn.push(`pool ${p.path} is late`);
        else if (p.state === 'unverified' && cannotFence(p)) bad.push(`pool ${p.path} has not verified within the start-up window and guards VMs: losing it cannot fence this host (it is not armed)`);
        else if (p.state === 'unverified') warn.push(`pool ${p.path} has no verified heartbeat yet`);
        else if (p.state === 'dead') warn.push(`pool ${p.path} expired but no running VM uses it`);
        if (p.stuck_probes) warn.push(`pool ${p.path} has ${p.stuck_probes} stuck probe(s)`);
        if (p.removing) warn.push(`runtime pool ${p.path} was removed but stays guarded (${p.removing})`);
      }
      if (!f.watchdog.device) warn.push('no watchdog: a wedged fencer cannot reset this host');
      else if (f.watchdog.not_a_device) warn.push(`${f.watchdog.device} is not a watchdog device (a file): a wedged fencer cannot reset this host`);
      else if (!f.watchdog.open || !f.watchdog.petting) warn.push('the watchdog is not petted');
    }
  }
  if (!r.agent.reachable) warn.push(`the agent does not answer (${r.agent.answer})`);
  if (r.last_fence) warn.push(`a fence marker from ${r.last_fence.at} is waiting to be read`);
  return { verdict: bad.length ? 'not-protected' : warn.length ? 'degraded' : 'ok', reasons: [...bad, ...warn] };
}

/**
 * Not verified within fencer.startup_window_s, never armed, and VMs use it (or fence_when = "always"):
 * it cannot fence. A config pool in this state fails start-up (the fencer exits); a runtime pool
 * added while the fencer runs never does (planner.failStartup), so this can last.
 */
function cannotFence(p: { startup_overdue?: boolean; armed: boolean; fence_when: string; in_use: unknown }): boolean {
  return p.startup_overdue === true && !p.armed && (p.fence_when === 'always' || p.in_use !== false);
}

export function exitCode(v: Verdict): number {
  return v === 'ok' ? EXIT.OK : v === 'degraded' ? EXIT.DEGRADED : EXIT.NOT_PROTECTED;
}

export async function statusReport(config: Config, opts: { timeoutMs?: number; nowMs?: number } = {}): Promise<StatusReport> {
  const agent = await checkAgent(config, opts.timeoutMs ?? 5000);
  const nowMs = opts.nowMs ?? Date.now();
  const { state: s, problem } = loadFencerState(config.fencer.state_dir);
  const notRunning = s ? fencerNotRunning(s, nowMs) : null;
  const running = s ? notRunning === null : false;
  const facts: Facts = {
    agent,
    fencer: s
      ? {
          running,
          not_running: notRunning,
          state_age_s: round3(stateAgeS(s, nowMs)),
          pid: s.pid,
          action: s.action,
          host_id: s.host_id,
          watchdog: s.watchdog,
          fenced: s.fenced,
          // Config pools first, then the orchestrator's: each says which it is (source).
          pools: [...s.pools.filter((p) => p.source !== 'runtime'), ...s.pools.filter((p) => p.source === 'runtime')].map((p) => {
            const ages = currentPoolAges(s, p, nowMs);
            const q = { ...p, source: p.source ?? ('config' as const) };
            // A stopped fencer counts nothing down: its last "fences in" would be a lie.
            return running ? { ...q, ...ages } : { ...q, state: 'unknown' as const, fence_in_s: null, last_ok_age_s: ages.last_ok_age_s };
          }),
          runtime_pools: s.runtime_pools ?? null,
          unguarded: config.fencer.pool.map((p) => p.path).filter((p) => !s.pools.some((q) => samePath(q.path, p))),
        }
      : null,
    last_fence: readFenceMarker(config.fencer.marker_dir) ?? null,
    state_error: problem ?? null,
    state_file: statePath(config.fencer.state_dir),
    marker_file: markerPath(config.fencer.marker_dir),
  };
  return { ...judgeStatus(facts), ...facts };
}

const samePath = (a: string, b: string) => (a.replace(/\/+$/, '') || '/') === (b.replace(/\/+$/, '') || '/');

const s1 = (n: number | null) => (n === null ? '-' : `${n.toFixed(1)} s`);
const ms = (n: number | null) => (n === null ? '-' : `${Math.round(n)}`);

function agentLine(a: AgentCheck): string {
  if (a.reachable) return `agent:    ${a.listen} reachable (an authenticated call answered in ${a.ms} ms)`;
  return `agent:    ${a.listen} NOT reachable: ${a.detail ?? a.answer}`;
}

export function formatStatus(r: StatusReport): string {
  const out: string[] = [];
  out.push(agentLine(r.agent));
  const f = r.fencer;
  if (!f && r.state_error) out.push(`fencer:   NOT RUNNING? ${r.state_file} is unusable (${r.state_error}); a running fencer rewrites it every tick`);
  else if (!f) out.push(`fencer:   NOT RUNNING (no state: ${r.state_file} missing)`);
  else {
    out.push(
      `fencer:   ${f.running ? 'running' : `NOT RUNNING (${f.not_running ?? `its last state is ${f.state_age_s} s old`})`}, pid ${f.pid}, action ${f.action}, host id ${f.host_id}` +
        (f.fenced ? `, FENCED at ${f.fenced.at} (pool ${f.fenced.pool})` : ''),
    );
    const w = f.watchdog;
    out.push(
      w.device
        ? w.not_a_device
          ? `watchdog: ${w.device} is NOT a watchdog device (a regular file or FIFO): a wedged fencer cannot reset this host; load the driver and remove the file`
          : `watchdog: ${w.device} ${!f.running ? 'unknown' : w.open ? (w.petting ? 'petted' : 'NOT petted') : 'closed'}, last pet ${s1(w.last_pet_age_s)} ago, timeout ${w.timeout_s} s`
        : 'watchdog: none (fencer.watchdog_device = ""): a wedged fencer cannot reset this host',
    );
    for (const p of f.pools) {
      out.push(
        `pool ${p.path} (${p.source === 'runtime' ? 'runtime, added by the orchestrator' : 'config'}): ${f.running ? p.state : 'unknown (the fencer is not running)'}` +
          (p.removing ? ' (REMOVED, still guarded until it verifies)' : '') +
          (f.running && p.state === 'unverified' && p.startup_overdue ? ' (NOT VERIFIED within the start-up window)' : '') +
          // Armed with no age: inherited from a fencer whose record of the age was lost (planner.inherit).
          (p.armed && p.last_ok_age_s === null ? ', last heartbeat unknown (armed by the previous fencer, its age lost), ' : `, last heartbeat ${s1(p.last_ok_age_s)} ago, `) +
          `fences in ${s1(p.fence_in_s)}, in use ${p.in_use}, probe ${ms(p.probe_latency_ms.min)}/${ms(p.probe_latency_ms.max)} ms min/max` +
          (p.stuck_probes ? `, ${p.stuck_probes} stuck probe(s) for ${s1(p.stuck_for_s)}` : '') +
          (p.last_error ? `, last error: ${p.last_error}` : ''),
      );
      const k = p.kill_vms;
      if (k && (k.phase !== 'idle' || k.processes_killed_total))
        out.push(
          `  kill-vms: ${k.phase === 'idle' ? 'not fenced' : k.phase === 'killing' ? `KILLING (waiting for: ${k.waiting_for})` : `FENCED since ${k.fenced_since} (until a heartbeat is verified)`}` +
            `; killed ${k.processes_killed_total} process(es), ${k.vms_killed_total} VM(s)` +
            (k.killed.length ? `, last: ${k.killed.map((x) => `${x.vm ?? x.comm} (pid ${x.pid}${x.gone_after_s === null ? ', not gone' : `, gone after ${x.gone_after_s} s`})`).join(', ')} at ${k.last_kill_at}` : ''),
        );
    }
    if (f.running) for (const p of f.unguarded ?? []) out.push(`pool ${p} (config): NOT GUARDED: the fencer runs an older config without it; restart brick-fencer`);
    if (!f.pools.length) out.push('pools:    guarding no pool (add [[fencer.pool]] to the config, or the orchestrator adds pools with heartbeat_add_pool)');
    if (f.runtime_pools?.error) out.push(`runtime pools: ${f.runtime_pools.file} is UNUSABLE (${f.runtime_pools.error}); the fencer keeps its last good set`);
  }
  if (r.last_fence)
    out.push(`last fence: ${r.last_fence.at}, pool ${r.last_fence.pool}: ${r.last_fence.reason} (remove ${r.marker_file} once understood)`);
  out.push(
    r.verdict === 'ok'
      ? 'verdict:  ok'
      : `verdict:  ${r.verdict === 'degraded' ? 'DEGRADED' : 'NOT PROTECTED'}: ${r.reasons.join('; ')}`,
  );
  return out.join('\n') + '\n';
}

export async function status(config: Config, opts: { json: boolean; io: Io; timeoutMs?: number; configPath?: string }): Promise<number> {
  const r = await statusReport(config, { timeoutMs: opts.timeoutMs });
  opts.io.out(opts.json ? JSON.stringify(r, null, 2) + '\n' : formatStatus(r));
  return exitCode(r.verdict);
}
