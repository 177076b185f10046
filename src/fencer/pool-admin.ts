// The agent's edge for runtime pools (heartbeat_add_pool, heartbeat_remove_pool, and the Ovm3
// check_dom0_storage_health_check): the arguments checked by the methods' schemas (fencer/methods.ts), look at the host (the path resolved by `realpath -e`
// in a child with a deadline, never an fs call of the agent on a pool path; mount points from
// /proc/self/mountinfo), decide (runtime-pools.ts, pure), and write the runtime pools file
// (atomic, fsynced, by children with a deadline: runtime-pools-writer.ts) holding the lock table's
// key, so concurrent calls never lose an update. The fencer picks the file up on its next tick.
import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import type { LockTable } from '../shared/keyed-lock.js';
import type { Runner } from '../shared/run.js';
import type { Logger } from '../shared/log.js';
import { BrickError } from '../shared/errors.js';
import { parseMountinfo } from './kill-vms/proc-parse.js';
import { resolvePoolPath } from './probe.js';
import { fencerRunning, readFencerStateBounded, statePath, type FencerState, type PoolState } from './state.js';
import {
  poolMountRefusal, normalizePoolPath, planAdd, planRemove, readRuntimePoolsBounded, RUNTIME_POOLS_LOCK,
  type FenceWhen, type FencerPoolView, type GuardedPool, type HeartbeatKind, type PoolSource, type RuntimePoolEntry,
} from './runtime-pools.js';
import { runtimePoolsWriter, writeFault, RUNTIME_POOLS_WRITE_DEADLINE_MS } from './runtime-pools-writer.js';

export interface AdminContext {
  config: Config;
  run: Runner;
  locks: LockTable;
  /** Milliseconds left for the call. */
  remainingMs(): number;
  /** Where the end of a write that outlived its call is logged. */
  log?: Logger;
}

function deadline(ctx: AdminContext): number {
  return Math.max(1, Math.min(ctx.config.fencer.probe_timeout_s * 1000, ctx.remainingMs() - 200));
}

/** The path's directory resolved ("/." makes realpath refuse anything but a directory), or a fault. */
async function resolveDir(path: string, ctx: AdminContext): Promise<string> {
  const r = await resolvePoolPath(path === '/' ? '/.' : `${path}/.`, { realpath: 'realpath' }, ctx.run, deadline(ctx));
  if (!r.error) return r.path;
  if (/no answer|timed out|deadline/i.test(r.error))
    throw new BrickError('TIMEOUT', `${path}: not resolved within ${deadline(ctx)} ms (storage not answering?); nothing changed`);
  if (/Not a directory/i.test(r.error)) throw new BrickError('INVALID_PARAMS', `${path}: not a directory; nothing changed`);
  if (/No such file/i.test(r.error)) throw new BrickError('NOT_FOUND', `${path}: no such directory (is the pool mounted?); nothing changed`);
  throw new BrickError('INVALID_PARAMS', `${path}: cannot be resolved (${r.error}); nothing changed`);
}

function mounts(): Array<{ mountPoint: string; fstype: string }> {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

/**
 * Write the file (off the main thread, by its deadline), or the fault that says truthfully what is
 * known: nothing changed, may or may not have changed (a write still under way), or changed but not
 * known to be durable (runtime-pools-writer.ts). Never a success that is not on disk.
 */
async function writeEntries(ctx: AdminContext, file: string, pools: RuntimePoolEntry[], change: string, mayOrMayNot: string): Promise<void> {
  const deadlineMs = Math.max(1, Math.min(RUNTIME_POOLS_WRITE_DEADLINE_MS, ctx.remainingMs() - 200));
  const outcome = await runtimePoolsWriter.write(ctx.run, file, pools, deadlineMs, (late) =>
    late === 'written'
      ? ctx.log?.warn({ file }, `the runtime pools file ${file} was written after its call's deadline (${change})`)
      : ctx.log?.error({ file, step: late.step }, `the runtime pools file ${file}: the write that outlived its call's deadline failed (${late.error})`),
  );
  const fault = writeFault(file, outcome, deadlineMs, change, mayOrMayNot);
  if (fault) throw fault;
}

/**
 * The runtime pools file, or a fault when it is there but unusable (never overwritten then: an admin
 * may be mid-edit) or could not be read in time (a hung disk: never written then either).
 */
async function currentEntries(file: string): Promise<RuntimePoolEntry[]> {
  // An earlier write still under way (it outlived its call): read only once it has ended.
  await runtimePoolsWriter.settled(file);
  const r = await readRuntimePoolsBounded(file);
  if (r.kind === 'error' && r.noAnswer) throw new BrickError('NOT_READY', `the runtime pools file ${file} ${r.error}; nothing changed`);
  if (r.kind === 'error') throw new BrickError('NOT_READY', `the runtime pools file ${file} is unusable (${r.error}); fix or remove it; nothing changed`);
  return r.kind === 'ok' ? r.pools : [];
}

/** Every pool the host guards or will guard, with its path resolved where that answers in time. */
async function guardedPools(ctx: AdminContext, entries: RuntimePoolEntry[]): Promise<GuardedPool[]> {
  const all: Array<Omit<GuardedPool, 'resolved'>> = [
    ...ctx.config.fencer.pool.map((p) => ({ path: normalizePoolPath(p.path) ?? p.path, heartbeat: p.heartbeat, fence_when: p.fence_when, source: 'config' as PoolSource })),
    ...entries.map((e) => ({ path: e.path, heartbeat: e.heartbeat, fence_when: e.fence_when, source: 'runtime' as PoolSource })),
  ];
  const t = deadline(ctx);
  const resolved = await Promise.all(all.map((p) => resolvePoolPath(p.path, { realpath: 'realpath' }, ctx.run, t)));
  return all.map((p, i) => ({ ...p, resolved: resolved[i].error ? undefined : resolved[i].path }));
}

/**
 * A fencer state worth asking about a pool: written by a fencer that runs, or that did not stop
 * cleanly. Read off the event loop with a deadline (shared/bounded-read.ts); a state file that is
 * there but could not be read (a hung state_dir) is a fault: whether the pool's expiry runs is unknown.
 */
async function liveState(config: Config): Promise<FencerState | undefined> {
  const { state: s, unread } = await readFencerStateBounded(config.fencer.state_dir);
  if (unread) throw new BrickError('NOT_READY', `the fencer state ${statePath(config.fencer.state_dir)} ${unread}: cannot tell whether the pool is late or fenced; nothing changed`);
  return s && !s.clean_stop ? s : undefined;
}

export function poolView(s: FencerState, p: PoolState): FencerPoolView {
  return { state: p.state, armed: p.armed, fenced: s.fenced?.pool === p.path || (p.kill_vms?.phase ?? 'idle') !== 'idle' };
}

/** The pool's state as the fencer reports it, for a reply ("unknown" when its state file could not be read in time). */
async function stateOf(config: Config, path: string): Promise<{ state: string; armed: boolean; fencer_running: boolean }> {
  const { state: s, unread } = await readFencerStateBounded(config.fencer.state_dir);
  if (unread) return { state: 'unknown', armed: false, fencer_running: false };
  // fencerRunning includes the writer-exists check (fencerNotRunning).
  const running = Boolean(s && fencerRunning(s));
  const p = s?.pools.find((x) => x.path === path);
  if (!s || !p) return { state: 'pending', armed: false, fencer_running: running };
  return { state: running ? p.state : 'fencer-stopped', armed: p.armed, fencer_running: running };
}

export interface AddResult {
  added: boolean;
  path: string;
  resolved: string;
  source: PoolSource;
  heartbeat: HeartbeatKind;
  fence_when: FenceWhen;
  state: string;
  armed: boolean;
  fencer_running: boolean;
}

/**
 * Add a runtime pool. Faults (nothing changed): not a directory, not a mount point, a mount of the
 * kernel's own filesystems (/proc, /sys), not resolved in time, a conflicting pool of that path, an
 * unusable runtime pools file.
 */
export async function addRuntimePool(ctx: AdminContext, req: { path: string; heartbeat: HeartbeatKind; fenceWhen: FenceWhen; addedBy: string }): Promise<AddResult> {
  const resolved = await resolveDir(req.path, ctx);
  const file = ctx.config.fencer.runtime_pools_file;
  return ctx.locks.with(RUNTIME_POOLS_LOCK, async () => {
    const entries = await currentEntries(file);
    const plan = planAdd(entries, await guardedPools(ctx, entries), { ...req, resolved, nowIso: new Date().toISOString() });
    if (plan.kind === 'conflict') throw new BrickError('CONFLICT', `${plan.message}; nothing changed`);
    const refusal = plan.kind === 'add' ? poolMountRefusal(resolved, mounts()) : undefined;
    if (refusal) throw new BrickError('PATH_REFUSED', `${req.path}${resolved !== req.path ? ` (${resolved})` : ''} ${refusal}; nothing changed`);
    const pool = plan.kind === 'exists' ? plan.pool : { path: req.path, heartbeat: req.heartbeat, fence_when: req.fenceWhen, source: 'runtime' as PoolSource };
    if (plan.kind === 'add') await writeEntries(ctx, file, plan.pools, `pool ${req.path} added`, `${req.path} may or may not be added`);
    return {
      added: plan.kind === 'add',
      path: pool.path,
      resolved,
      source: pool.source,
      heartbeat: pool.heartbeat,
      fence_when: pool.fence_when,
      ...(await stateOf(ctx.config, pool.path)),
    };
  });
}

/**
 * Remove a runtime pool. Faults (nothing changed): a config pool; a pool the fencer reports late,
 * expired or fenced (a fence due is never dodged this way); an unusable runtime pools file.
 */
export async function removeRuntimePool(ctx: AdminContext, path: string): Promise<{ removed: boolean; path: string; state: string }> {
  const file = ctx.config.fencer.runtime_pools_file;
  return ctx.locks.with(RUNTIME_POOLS_LOCK, async () => {
    const entries = await currentEntries(file);
    const s = await liveState(ctx.config);
    const p = s?.pools.find((x) => x.path === path);
    const configPaths = ctx.config.fencer.pool.map((c) => normalizePoolPath(c.path) ?? c.path);
    const plan = planRemove(entries, configPaths, path, s && p ? poolView(s, p) : undefined);
    if (plan.kind === 'config') throw new BrickError('CONFLICT', `${path} is a [[fencer.pool]] of brick.toml: config pools cannot be removed at run time (remove it from the config and restart brick-fencer)`);
    if (plan.kind === 'refuse') throw new BrickError('CONFLICT', `${plan.message}; nothing changed`);
    if (plan.kind === 'absent') return { removed: false, path, state: 'absent' };
    await writeEntries(ctx, file, plan.pools, `pool ${path} removed`, `${path} may or may not be removed`);
    return { removed: true, path, state: p?.state ?? 'pending' };
  });
}
