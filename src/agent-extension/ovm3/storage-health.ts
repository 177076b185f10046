// check_dom0_storage_health_check / check_dom0_storage_health: the module started storagehealth.py
// from the agent and ran it in check mode for peers. brick's fencer is its own service (brick
// fencer, its own systemd unit). The check call adds the path it is given as a runtime pool
// (fencer/pool-admin.ts: format ovm, fence_when "always", as storagehealth.py panics on a hung
// write whatever runs) and reads the fencer's state in fencer.state_dir; a peer's heartbeat file is
// read through the fencer's peer check, in a child process with a deadline. The agent process
// itself never touches NFS with fs.
import { BrickError } from '../../shared/errors.js';
import { fencerNotRunning, fencerWriter, fencerWriterGone, monoNow, readFencerStateBounded, stateOfAnotherBoot, type FencerState } from '../../fencer/state.js';
import type { ProcessFacts } from '../../shared/process-identity.js';
import { bootId } from '../../fencer/lease.js';
import { checkPeerHeartbeat, type PeerCheckResult } from '../../fencer/peer-check.js';
import { resolvePoolPath } from '../../fencer/probe.js';
import { HOST_ID_RE } from '../../fencer/heartbeat-format.js';
import { addRuntimePool } from '../../fencer/pool-admin.js';
import { normalizePoolPath, readRuntimePoolsBounded } from '../../fencer/runtime-pools.js';
import type { CallContext } from '../../rpc/catalogue.js';
import { T } from '../../rpc/schema.js';
import { Invalid, refine } from '../../rpc/params.js';
import { plainText } from '../../rpc/formats.js';

/** This host's (or a peer's) CloudStack guid: it names the heartbeat file .hb-<guid>. */
export const Guid = refine(T.String({ description: 'a CloudStack host guid' }), (v): string => {
  const g = plainText(v, 128);
  if (!HOST_ID_RE.test(g)) throw new Invalid(`must be letters, digits, _ . : - (it names the heartbeat file .hb-<guid>), got "${g}"`);
  return g;
});

/** What the health check decides from, gathered at the edge (storageHealthCheck). */
export interface HealthCheckFacts {
  state: FencerState | undefined;
  /** Why the state file is there but could not be read (an errno; no answer in time: a hung state_dir). */
  stateUnread?: string;
  /** What /proc says of the state's writer (state.pid): whether it exists, and its start time. */
  writer: ProcessFacts;
  /** This boot's /proc/sys/kernel/random/boot_id (null: unreadable): a state of another boot is no running fencer. */
  bootId: string | null;
  guid: string;
  /** The call's path, resolved (symlinks, trailing slash); an Error when it could not be resolved (missing, or not in time). */
  path: string | Error;
  /** Each pool of the state (same order) → its path resolved; undefined when that did not finish in time. */
  poolPaths: Array<string | undefined>;
  nowMs: number;
  /** CLOCK_MONOTONIC (clock.bootMonoMs) at nowMs: a state of this boot is aged by it (state.ts stateAgeS). */
  monoMs: number;
  /** This call added the path as a runtime pool. */
  started: boolean;
  /** Why the path was not added (undefined when it was, or was guarded already). */
  notAdded?: string;
}

/** Actions that protect the pool's disks when the host loses it; log-only only says so. */
const PROTECTING = new Set<FencerState['action']>(['reboot', 'crash', 'kill-vms', 'command']);

/**
 * [running, started] (pure). running: the fencer runs (fresh state, its writer alive), heartbeats as
 * guid, guards THIS path, that pool is armed (a verified heartbeat seen) and its action protects.
 * started: this call added the path as a runtime pool (running is then false until the fencer has
 * picked it up and verified its first heartbeat).
 */
export function healthCheckReply(f: HealthCheckFacts): { reply: [boolean, boolean]; why: string } {
  const no = (why: string) => ({ reply: [false, f.started] as [boolean, boolean], why: f.started ? `added ${typeof f.path === 'string' ? f.path : 'the path'} as a runtime pool; ${why}` : why });
  const s = f.state;
  if (f.stateUnread) return no(`the fencer state ${f.stateUnread}: cannot tell whether the fencer guards this path`);
  if (!s) return no('no fencer state: is brick-fencer.service running?');
  if (stateOfAnotherBoot(s, f.bootId)) return no('the fencer state is from before the last boot: brick-fencer is not running');
  const gone = fencerWriterGone(s, f.writer);
  if (gone) return no(`the fencer that wrote the state is not running (${gone}): brick-fencer is not running`);
  const notRunning = fencerNotRunning(s, f.nowMs, f.bootId, f.writer, { bootId: f.bootId, monoMs: f.monoMs });
  if (notRunning) return no(`the fencer state is stale (${notRunning}): brick-fencer is not running`);
  if (s.host_id !== f.guid)
    return no(`the fencer writes heartbeats as "${s.host_id}" but CloudStack knows this host as "${f.guid}"; set fencer.host_id = "${f.guid}" so peers can check it`);
  if (f.path instanceof Error) return no(`cannot resolve the path asked about: ${f.path.message}`);
  const i = s.pools.findIndex((_, k) => f.poolPaths[k] !== undefined && f.poolPaths[k] === f.path);
  if (i < 0)
    return no(
      `the fencer does not guard ${f.path} (its pools: ${s.pools.map((p) => p.path).join(', ') || 'none'})` +
        (f.started ? ' yet: it picks the new pool up on its next tick' : f.notAdded ? `; not added: ${f.notAdded}` : ''),
    );
  const pool = s.pools[i]!;
  if (!pool.armed) return no(`the pool ${pool.path} is not armed yet: no verified heartbeat since the fencer started (state ${pool.state})`);
  if (!PROTECTING.has(s.action)) return no(`fencer.action = "${s.action}": losing ${pool.path} would only be logged, nothing is protected`);
  return { reply: [true, f.started], why: `guarding ${pool.path}, armed, action ${s.action}` };
}

/** A path with its symlinks resolved the way the fencer resolves its pools (realpath -e in a child with a deadline). */
async function resolvePath(p: string, ctx: CallContext, timeoutMs: number): Promise<string> {
  const r = await resolvePoolPath(p, { realpath: 'realpath' }, ctx.run, timeoutMs);
  if (r.error) throw new Error(`realpath -e ${p}: ${r.error}`);
  return r.path;
}

/** check_dom0_storage_health_check(path, script, guid, timeout, interval) → [running, started]. */
export async function storageHealthCheck([path, , guid, timeout, interval]: [string, string, string, number, number], ctx: CallContext): Promise<[boolean, boolean]> {
  if (!path.startsWith('/')) throw new BrickError('INVALID_PARAMS', `path: must be absolute, got "${path}"`);
  // Start the heartbeat on that path, as storagehealth.py did: a runtime pool. CloudStack's
  // setupServer passes its script directory (/opt/cloudstack/bin), which is no mount: nothing is
  // added then, and the reply says the path is not guarded. An add that fails never fails the call.
  let started = false;
  let notAdded: string | undefined;
  const norm = normalizePoolPath(path);
  if (!norm) notAdded = 'not a normalized absolute path';
  else
    try {
      const r = await addRuntimePool(
        { config: ctx.config, run: ctx.run, locks: ctx.locks.bound(ctx.signal), remainingMs: ctx.remainingMs, log: ctx.log },
        { path: norm, heartbeat: 'ovm', fenceWhen: 'always', addedBy: 'check_dom0_storage_health_check' },
      );
      started = r.added;
    } catch (e) {
      notAdded = (e as Error).message;
    }
  // Off the event loop with a deadline (shared/bounded-read.ts): a hung state_dir gives "cannot tell", never a stuck agent.
  const { state, unread } = await readFencerStateBounded(ctx.config.fencer.state_dir);
  const timeoutMs = Math.max(1, Math.min(ctx.config.fencer.probe_timeout_s * 1000, ctx.remainingMs() - 100));
  const [resolved, ...poolPaths] = await Promise.all(
    [path, ...(state?.pools ?? []).map((p) => p.path)].map((p) => resolvePath(p, ctx, timeoutMs).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))))),
  );
  const nowMs = Date.now();
  const boot = bootId() ?? null;
  const facts: HealthCheckFacts = {
    state,
    ...(unread === undefined ? {} : { stateUnread: unread }),
    writer: state ? fencerWriter(state) : { pidExists: false, pidStart: undefined },
    bootId: boot,
    guid,
    path: resolved!,
    poolPaths: poolPaths.map((p) => (p instanceof Error ? undefined : p)),
    nowMs,
    monoMs: monoNow(nowMs, boot).monoMs,
    started,
    ...(notAdded === undefined ? {} : { notAdded }),
  };
  const { reply, why } = healthCheckReply(facts);
  if (!reply[0]) ctx.log.warn({ guid, path, why }, 'check_dom0_storage_health_check: the heartbeat fencer does not protect this path');
  else ctx.log.info({ guid, path, why }, 'check_dom0_storage_health_check');
  if (ctx.config.fencer.fence_after_s > timeout)
    ctx.log.warn({ timeout, fence_after_s: ctx.config.fencer.fence_after_s }, 'CloudStack\'s ovm3.heartbeat.timeout is shorter than fencer.fence_after_s');
  void interval;
  return reply;
}

/** Combine per-pool peer checks (pure): any false → false; else any true → true; all unknown → cannot tell. */
export function combinePeerChecks(results: PeerCheckResult[]): boolean | 'unknown' {
  if (results.some((r) => r.alive === false)) return false;
  if (results.some((r) => r.alive === true)) return true;
  return 'unknown';
}

/** check_dom0_storage_health(path, script, guid, timeout) → true when host guid's heartbeat is fresh on the pools. */
export async function storageHealth([, , guid, maxAgeS]: [string, string, string, number], ctx: CallContext): Promise<boolean> {
  // The configured pools and the runtime ones (an unusable runtime pools file: the configured only).
  // Off the event loop with a deadline (shared/bounded-read.ts): a hung runtime pools file counts as unusable.
  const rt = await readRuntimePoolsBounded(ctx.config.fencer.runtime_pools_file);
  const pools = [...ctx.config.fencer.pool, ...(rt.kind === 'ok' ? rt.pools.filter((e) => !ctx.config.fencer.pool.some((p) => normalizePoolPath(p.path) === e.path)) : [])];
  if (!pools.length)
    throw new BrickError(
      'NOT_READY',
      rt.kind === 'error'
        ? `no [[fencer.pool]] in the config, and the runtime pools file ${ctx.config.fencer.runtime_pools_file} ${rt.noAnswer ? rt.error : `is unusable (${rt.error})`}: brick does not know which pools hold heartbeats`
        : 'no [[fencer.pool]] in the config and no runtime pool: brick does not know which pools hold heartbeats',
    );
  const timeoutMs = Math.max(1, Math.min(ctx.config.fencer.probe_timeout_s * 1000, ctx.remainingMs() - 100));
  const results = await Promise.all(
    pools.map((p) => checkPeerHeartbeat({ poolPath: p.path, hostId: guid, format: p.heartbeat, maxAgeS, timeoutMs, run: ctx.run })),
  );
  const verdict = combinePeerChecks(results);
  ctx.log.info({ guid, pools: pools.map((p, i) => ({ path: p.path, ...results[i] })), verdict }, 'check_dom0_storage_health');
  if (verdict === 'unknown')
    throw new BrickError('NOT_READY', `cannot tell whether ${guid} is alive: its heartbeat file could not be read on any pool (missing, unreadable or past ${timeoutMs} ms)`);
  return verdict;
}
