// The fencer's XML-RPC calls, served by `brick serve` (the agent reads the fencer's state file; it
// never talks to the fencer process and never touches a pool path itself).
import { method, optional, param, refine, Invalid } from '../rpc/params.js';
import { oneOf, seconds, show } from '../rpc/formats.js';
import { T } from '../rpc/schema.js';
import { XmlRpcDouble, type XmlRpcStruct, type XmlRpcValue } from '../rpc/values.js';
import { BrickError } from '../shared/errors.js';
import { checkPeerHeartbeat } from './peer-check.js';
import { HOST_ID_RE, type HeartbeatFormat } from './heartbeat-format.js';
import { currentPoolAges, fencerRunning, loadFencerStateBounded, statePath, type LoadedState, type PoolState } from './state.js';
import { readFenceMarkerBounded, type FenceMarker } from './marker.js';
import type { BoundedReader } from '../shared/bounded-read.js';
import type { Config } from '../config/schema.js';
import { addRuntimePool, removeRuntimePool } from './pool-admin.js';
import { normalizePoolPath, readRuntimePoolsBounded, type RuntimeRead } from './runtime-pools.js';

const dbl = (n: number | null): XmlRpcValue => (n === null ? null : new XmlRpcDouble(n));

function markerStruct(m: FenceMarker | null | undefined): XmlRpcValue {
  if (!m) return null;
  return { at: m.at, pool: m.pool, reason: m.reason, action: m.action, host_id: m.host_id, last_ok_age_s: dbl(m.last_ok_age_s) };
}

/** action = "kill-vms": the pool's phase and what was killed (nil members stay nil). */
function killVmsStruct(k: NonNullable<PoolState['kill_vms']>): XmlRpcStruct {
  return {
    phase: k.phase,
    fenced_since: k.fenced_since,
    waiting_for: k.waiting_for,
    last_kill_at: k.last_kill_at,
    killed: k.killed.map((x) => ({ pid: x.pid, comm: x.comm, vm: x.vm, uuid: x.uuid, killed_at: x.killed_at, gone_after_s: dbl(x.gone_after_s) })),
    processes_killed_total: k.processes_killed_total,
    vms_killed_total: k.vms_killed_total,
    spared_total: k.spared_total,
  };
}

/** What heartbeat_status answers from, gathered at the edge (gatherHeartbeatFacts). */
export interface HeartbeatFacts {
  stateFile: string;
  loaded: LoadedState;
  marker: Awaited<ReturnType<typeof readFenceMarkerBounded>>;
}

/**
 * The state file and the fence marker, read off the event loop with a deadline each, in parallel
 * (shared/bounded-read.ts): a state_dir or marker_dir that hangs delays the reply by the deadline at
 * most, never the agent's other calls.
 */
export async function gatherHeartbeatFacts(config: Config, reader?: BoundedReader): Promise<HeartbeatFacts> {
  const [loaded, marker] = await Promise.all([loadFencerStateBounded(config.fencer.state_dir, reader), readFenceMarkerBounded(config.fencer.marker_dir, reader)]);
  return { stateFile: statePath(config.fencer.state_dir), loaded, marker };
}

/** heartbeat_status's reply (pure but for fencerRunning's look at the writer's pid and boot id). */
export function heartbeatStatusReply(f: HeartbeatFacts, nowMs = Date.now()): XmlRpcStruct {
  const { state: s, problem, noAnswer } = f.loaded;
  if (problem && noAnswer)
    throw new BrickError('NOT_READY', `the fencer state ${f.stateFile} ${problem}: cannot tell what the fencer guards; is the disk under fencer.state_dir healthy?`);
  if (problem)
    throw new BrickError('NOT_READY', `the fencer state ${f.stateFile} is unusable (${problem}): is brick-fencer running (systemctl status brick-fencer)?`);
  if (!s)
    throw new BrickError('NOT_READY', `no fencer state in ${f.stateFile}: is brick-fencer running (systemctl status brick-fencer)?`);
  const running = fencerRunning(s, nowMs);
  // The marker file decides: an admin who removed it has acknowledged the fence (brick status
  // clears it too). The fencer's copy from its start stands in only when the file is there but
  // cannot be read (not in time either), or marker_dir cannot be looked at.
  const lastFence = f.marker.marker ?? (f.marker.gone ? null : s.last_fence);
  const out: XmlRpcStruct = {};
  for (const p of s.pools) {
    const ages = currentPoolAges(s, p, nowMs);
    out[p.path] = {
      source: p.source ?? 'config',
      removing: p.removing ?? null,
      state: running ? p.state : 'fencer-stopped',
      last_ok_age_s: dbl(ages.last_ok_age_s),
      // A stopped fencer counts nothing down (brick status says the same).
      fence_in_s: running ? dbl(ages.fence_in_s) : null,
      probe_latency_ms: { last: dbl(p.probe_latency_ms.last), min: dbl(p.probe_latency_ms.min), max: dbl(p.probe_latency_ms.max) },
      armed: p.armed,
      in_use: p.in_use,
      stuck_probes: p.stuck_probes,
      last_error: p.last_error,
      heartbeat: p.heartbeat,
      heartbeat_file: p.heartbeat_file,
      fence_when: p.fence_when,
      fencer_running: running,
      fenced: s.fenced ? markerStruct(s.fenced) : null,
      last_fence: lastFence && lastFence.pool === p.path ? markerStruct(lastFence) : null,
      ...(p.kill_vms ? { kill_vms: killVmsStruct(p.kill_vms) } : {}),
    };
  }
  return out;
}

export async function heartbeatStatus(config: Config, nowMs?: number, reader?: BoundedReader): Promise<XmlRpcStruct> {
  const facts = await gatherHeartbeatFacts(config, reader);
  return heartbeatStatusReply(facts, nowMs ?? Date.now());
}

function under(path: string, root: string): boolean {
  const r = root.replace(/\/+$/, '');
  return path === r || path.startsWith(r + '/');
}

/** A pool's path: absolute, no "..", normalised (a trailing slash, "//" and "." dropped). */
export const PoolPath = refine(T.String({ description: 'an absolute path' }), (v): string => {
  const p = normalizePoolPath(v);
  if (!p) throw new Invalid(`must be an absolute path without "..", got ${show(v)}`);
  return p;
});

/** A host id as it names a heartbeat file on a pool. */
export const HostId = refine(T.String({ description: '1-128 letters, digits, _ . : -' }), (v): string => {
  if (typeof v !== 'string' || !HOST_ID_RE.test(v)) throw new Invalid(`must be 1-128 letters, digits, _ . : - (it names a file on the pool), got ${show(v)}`);
  return v;
});

export const HeartbeatFormatName = oneOf(['ovm', 'kvm'] as const);
const FenceWhenName = oneOf(['in-use', 'always'] as const);

/** heartbeat_check's pool: a fencer pool (its format the default) or a path under server.file_roots (pure: rt is the runtime pools file as read). */
export function checkPool(config: Config, poolPath: string, format: HeartbeatFormat | undefined, rt: RuntimeRead): { poolPath: string; format: HeartbeatFormat } {
  const pool = config.fencer.pool.find((p) => p.path.replace(/\/+$/, '') === poolPath) ?? (rt.kind === 'ok' ? rt.pools.find((e) => e.path === poolPath) : undefined);
  if (!pool && !config.server.file_roots.some((r) => under(poolPath, r)))
    throw new BrickError(
      'PATH_REFUSED',
      `pool_path ${poolPath}: not a fencer pool (configured or added at run time) and not under server.file_roots` + (rt.kind === 'error' && rt.noAnswer ? ` (the runtime pools file ${config.fencer.runtime_pools_file} ${rt.error})` : ''),
    );
  return { poolPath, format: format ?? pool?.heartbeat ?? 'ovm' };
}

export const methods = [
  method({
    name: 'heartbeat_status',
    params: [],
    returns: 'struct',
    help:
      'The fencer\'s view of each pool, from its state file (brick serve never touches a pool itself). Reply: struct keyed by ' +
      'pool path; each member a struct with source ("config": a [[fencer.pool]] of brick.toml; "runtime": added with ' +
      'heartbeat_add_pool or check_dom0_storage_health_check), removing (nil, or why a runtime pool removed from the runtime ' +
      'pools file is still guarded: it was late or expired), state (unverified, healthy, late, expired, dead, or fencer-stopped when the fencer ' +
      'is not running: it has not updated its state for 5 s, it stopped cleanly, its process is gone, or the state is from another boot), ' +
      'last_ok_age_s (seconds since the last verified heartbeat, nil before the first, and nil with armed true when the pool was ' +
      'armed by the previous fencer but its age was lost: it is then expired until its first probe since this start verifies), ' +
      'fence_in_s (seconds before this pool fences the host, nil when it cannot: unverified, idle, dead or fencer-stopped), probe_latency_ms ' +
      '(struct last/min/max), armed, in_use (true, false or "unknown"), stuck_probes, last_error, heartbeat, heartbeat_file, ' +
      'fence_when, fencer_running, fenced (set once the fencer fenced), last_fence (the marker of a fence before the last boot ' +
      'that concerned this pool, until an admin removes it); with fencer.action = "kill-vms" also kill_vms (struct: phase idle, ' +
      'killing or fenced, fenced_since, waiting_for, last_kill_at, killed (array of pid, comm, vm, uuid, killed_at, gone_after_s), ' +
      'processes_killed_total, vms_killed_total, spared_total). Faults: NOT_READY (1011) when the fencer has never written its state, or its state file is unusable (not JSON, or not a state this brick reads), or could not be read within 2 s (a hung disk under fencer.state_dir; a fence marker that cannot be read in time gives the fencer\'s own copy of it).',
    handler: (_args, ctx) => heartbeatStatus(ctx.config),
  }),
  method({
    name: 'heartbeat_add_pool',
    params: [
      param('pool_path', PoolPath, 'the pool\'s mount point, absolute (a symlink to it is resolved)'),
      param('format', HeartbeatFormatName, '"ovm" (<path>/.hb-<host_id>, float epoch) or "kvm" (<path>/KVMHA/hb-<host_id>, integer epoch)'),
      optional('fence_when', FenceWhenName, '"in-use" (default: fence only while a running VM uses the pool) or "always"'),
    ],
    returns: 'struct',
    help:
      'Guard one more pool: written to fencer.runtime_pools_file (atomic, fsynced), which the fencer reads on its next tick; ' +
      'the pool arms on its first verified heartbeat, and survives restarts of brick serve and brick-fencer until removed. ' +
      'Adding a pool that is guarded already (the same path, or a path that resolves to the same mount, from brick.toml or ' +
      'added before) changes nothing. Reply: struct added (true when this call added it), path, resolved, source ("config" ' +
      'or "runtime"), heartbeat, fence_when, state (the fencer\'s: unverified, healthy, late, expired, dead; "pending" until ' +
      'the fencer has picked it up; "fencer-stopped"; "unknown" when the fencer\'s state file could not be read in time), armed, fencer_running. Faults, each changing nothing: INVALID_PARAMS ' +
      '(-32602) for a relative path, an unknown format or fence_when, a path that is not a directory; NOT_FOUND (1001) for a ' +
      'missing path; PATH_REFUSED (1003) for a directory that is not a mount point or is a mount of the kernel\'s own filesystems (/proc, /sys, cgroup); CONFLICT (1002) when the pool is guarded ' +
      'with another format or fence_when; TIMEOUT (1004) when the path does not resolve within fencer.probe_timeout_s; ' +
      'NOT_READY (1011) when the runtime pools file is there but unusable or could not be read within 2 s (a hung disk), or an ' +
      'earlier write of it has not finished; TOO_LARGE (1012) past 64 runtime pools. The file\'s write (by children, off the ' +
      'agent\'s main thread): TIMEOUT (1004) when it does not finish within 5 s (a hung disk): the pool may or may not be ' +
      'added, the write goes on, and heartbeat_status or a later call (which waits for it) tells; COMMAND_FAILED (1005) when ' +
      'it fails: before its rename nothing changed, after it (the fsync of the directory) the pool is added but may not ' +
      'survive a reset; the message says which.',
    handler: async ([path, heartbeat, fenceWhen = 'in-use'], ctx) => {
      const r = await addRuntimePool({ config: ctx.config, run: ctx.run, locks: ctx.locks.bound(ctx.signal), remainingMs: ctx.remainingMs, log: ctx.log }, { path, heartbeat, fenceWhen, addedBy: 'heartbeat_add_pool' });
      ctx.log.info({ pool: r.path, added: r.added, source: r.source, heartbeat: r.heartbeat, fence_when: r.fence_when }, r.added ? `runtime pool ${r.path} added` : `pool ${r.path} is guarded already`);
      return { ...r };
    },
  }),
  method({
    name: 'heartbeat_remove_pool',
    params: [param('pool_path', PoolPath, 'a pool added with heartbeat_add_pool (or check_dom0_storage_health_check)')],
    returns: 'struct',
    help:
      'Stop guarding a runtime pool: removed from fencer.runtime_pools_file; the fencer stops probing it on its next tick, ' +
      'and the watchdog goes on being petted for the other pools (a removal never fences). A pool whose expiry is running ' +
      'is not removed: one the fencer reports late, expired or fenced is refused, and should it turn late between this call ' +
      'and the fencer\'s tick, the fencer keeps guarding it (heartbeat_status: removing) until it verifies again or the host ' +
      'is fenced. Reply: struct removed (false when no runtime pool has this path), path, state (the pool\'s state when ' +
      'removed). Faults, each changing nothing: INVALID_PARAMS (-32602) for a relative path; CONFLICT (1002) for a pool of ' +
      'brick.toml (config pools cannot be removed at run time) and for a pool that is late, expired or fenced; NOT_READY ' +
      '(1011) when the runtime pools file is there but unusable or could not be read within 2 s, or an earlier write of it ' +
      'has not finished, or the fencer\'s state file cannot be read (within 2 s). The file\'s write: TIMEOUT (1004) or ' +
      'COMMAND_FAILED (1005) as for heartbeat_add_pool (the pool may or may not be removed on a TIMEOUT).',
    handler: async ([path], ctx) => {
      const r = await removeRuntimePool({ config: ctx.config, run: ctx.run, locks: ctx.locks.bound(ctx.signal), remainingMs: ctx.remainingMs, log: ctx.log }, path);
      ctx.log.info({ pool: path, removed: r.removed, state: r.state }, r.removed ? `runtime pool ${path} removed` : `no runtime pool ${path} to remove`);
      return { ...r };
    },
  }),
  method({
    name: 'heartbeat_check',
    params: [
      param('pool_path', PoolPath, 'the pool directory, as the host mounts it'),
      param('host_id', HostId, 'the other host\'s id as it names its heartbeat file (guid for ovm, IP for kvm)'),
      param('max_age_s', seconds(86400), 'declare the host dead beyond this heartbeat age'),
      optional('format', HeartbeatFormatName, '"ovm" (.hb-<id>) or "kvm" (KVMHA/hb-<id>); default: the configured pool\'s, else ovm'),
    ],
    returns: 'struct',
    help:
      'Is another host\'s heartbeat on this pool alive? Reads its heartbeat file in a child process with a deadline ' +
      '(fencer.probe_timeout_s), never in the agent. Reply: struct alive (true; false when the file is readable and older than ' +
      'max_age_s (exactly max_age_s is alive; a kvm epoch counts from the end of the second it names), judged on this host\'s monotonic clock wherever its earlier reads tell: unchanged ' +
      'for more than max_age_s → false, seen changing since a read at most max_age_s ago → true, whatever either clock says; ' +
      'the string "unknown" when it cannot be read in time or does not ' +
      'parse: never false for that) and age_s (seconds since the epoch written in the file by this host\'s clock, nil when unknown). ' +
      'Faults: INVALID_PARAMS (-32602) for a relative path, a bad host id or age; PATH_REFUSED (1003) for a path that is ' +
      'neither a fencer pool (configured or added at run time) nor under server.file_roots.',
    handler: async ([path, hostId, maxAgeS, format], ctx) => {
      const r = await checkPeerHeartbeat({
        ...checkPool(ctx.config, path, format, await readRuntimePoolsBounded(ctx.config.fencer.runtime_pools_file)),
        hostId,
        maxAgeS,
        timeoutMs: Math.max(1, Math.min(ctx.remainingMs() - 100, ctx.config.fencer.probe_timeout_s * 1000)),
        run: ctx.run,
      });
      return { alive: r.alive, age_s: dbl(r.age_s) };
    },
  }),
];
