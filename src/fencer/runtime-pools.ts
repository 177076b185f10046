// Runtime pools: heartbeat pools the orchestrator adds and removes through the agent
// (heartbeat_add_pool, heartbeat_remove_pool, the Ovm3 check_dom0_storage_health_check), on top of
// the [[fencer.pool]] entries of brick.toml. `brick serve` is the one writer of the file
// (fencer.runtime_pools_file, default /var/lib/brick/runtime-pools.json: local persistent disk),
// written atomically and fsynced, by children with a deadline (runtime-pools-writer.ts), under its
// lock table's key; the fencer only reads it, through a child every RUNTIME_POOLS_POLL_MS
// (readRuntimePoolsChild), and applies it on a later tick. A file that does not parse, or cannot be
// read, is never applied: the fencer keeps the last good set and says so in its log and its state.
//
// The decisions here are pure (tested in test/unit/fencer-runtime-pools.test.ts): what an add or a
// remove does to the file, and which guarded pools the fencer adds, removes, or keeps guarding
// because removing them now would dodge a fence (a late or expired pool stays guarded until it
// verifies again: removal never disarms a pool whose expiry is running, as sanlock/wdmd never let a
// client that holds an expiry go; reference/fencing.md §2.3).
import { posix } from 'node:path';
import { boundedReader, noAnswer, readFailure, type BoundedReader } from '../shared/bounded-read.js';
import { BrickError } from '../shared/errors.js';
import type { Runner, RunResult } from '../shared/run.js';
import { SingleFlight } from './single-flight.js';
import type { PoolSource } from './state.js';
import type { PoolHealthState } from './pool-health.js';
import type { PoolConfig } from '../config/schema.js';

export type HeartbeatKind = 'ovm' | 'kvm';
export type FenceWhen = 'in-use' | 'always';
export type { PoolSource };

export interface RuntimePoolEntry {
  /** As the orchestrator gave it, normalized (no trailing slash). */
  path: string;
  heartbeat: HeartbeatKind;
  fence_when: FenceWhen;
  /** Wall clock, ISO 8601. */
  added_at: string;
  /** The call that added it (heartbeat_add_pool, check_dom0_storage_health_check). */
  added_by: string;
}

export interface RuntimePoolsFile {
  version: 1;
  pools: RuntimePoolEntry[];
}

/** More runtime pools than this is a runaway orchestrator, not a host. */
export const MAX_RUNTIME_POOLS = 64;

/** A path as brick compares pool paths: absolute, no "..", no NUL, no trailing slash. Undefined when it is not one. */
export function normalizePoolPath(raw: unknown): string | undefined {
  if (typeof raw !== 'string' || raw.length > 4096 || !posix.isAbsolute(raw) || raw.includes('\0') || raw.split('/').includes('..')) return undefined;
  if (/[\n\r]/.test(raw)) return undefined;
  return posix.normalize(raw).replace(/\/+$/, '') || '/';
}

/** Parse the file's text (pure). Every entry must be valid: a file with one bad entry is not applied at all. */
export function parseRuntimePools(text: string): { ok: true; pools: RuntimePoolEntry[] } | { ok: false; error: string } {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    return { ok: false, error: `not JSON (${(e as Error).message}); truncated or hand-edited?` };
  }
  const o = j as Partial<RuntimePoolsFile>;
  if (!o || typeof o !== 'object' || o.version !== 1 || !Array.isArray(o.pools)) return { ok: false, error: 'not a version 1 runtime pools file ({version: 1, pools: [...]})' };
  const seen = new Set<string>();
  const pools: RuntimePoolEntry[] = [];
  for (const [i, e] of o.pools.entries()) {
    const path = normalizePoolPath(e?.path);
    if (!path || path !== e.path) return { ok: false, error: `pools[${i}].path: not a normalized absolute path: ${JSON.stringify(e?.path)}` };
    if (e.heartbeat !== 'ovm' && e.heartbeat !== 'kvm') return { ok: false, error: `pools[${i}].heartbeat: must be "ovm" or "kvm", got ${JSON.stringify(e.heartbeat)}` };
    if (e.fence_when !== 'in-use' && e.fence_when !== 'always') return { ok: false, error: `pools[${i}].fence_when: must be "in-use" or "always", got ${JSON.stringify(e.fence_when)}` };
    if (seen.has(path)) return { ok: false, error: `pools[${i}].path: ${path} is listed twice` };
    seen.add(path);
    pools.push({ path, heartbeat: e.heartbeat, fence_when: e.fence_when, added_at: String(e.added_at ?? ''), added_by: String(e.added_by ?? '') });
  }
  if (pools.length > MAX_RUNTIME_POOLS) return { ok: false, error: `${pools.length} pools: at most ${MAX_RUNTIME_POOLS}` };
  return { ok: true, pools };
}

export function runtimePoolsText(pools: RuntimePoolEntry[]): string {
  const f: RuntimePoolsFile = { version: 1, pools };
  return JSON.stringify(f, null, 1) + '\n';
}

export type RuntimeRead =
  | { kind: 'missing'; sig: string }
  | { kind: 'ok'; sig: string; pools: RuntimePoolEntry[] }
  /** noAnswer: the disk did not answer in time (readRuntimePoolsBounded), as opposed to an errno or bad content. */
  | { kind: 'error'; sig: string; error: string; noAnswer?: true };

// ---- the fencer's read of the file: a child, never a call of the fencer's own thread ----

/** How long the fencer waits for its child's read of the file (local disk: any answer comes far sooner). */
export const RUNTIME_POOLS_READ_MS = 10_000;
/**
 * How often the fencer reads the file: one short child (dd) every 2 s. The file is on disk that can
 * hang, so the fencer never stats or reads it itself, and each read is a child. Measured idle (one
 * pool, default timings, 2-core test machine): the fencer's own CPU was 420-480 ms a minute with a
 * stat per tick, +170 with a read a second, +90 with one every 2 s; a child per tick (4 a second)
 * would cost more than the whole idle loop, for a change that comes a few times a day. A pool
 * heartbeat_add_pool adds is in the fencer's state within about 2.5 s (this, a tick, its realpath;
 * 0.3-0.45 s with the stat per tick), then arms on its first probe.
 */
export const RUNTIME_POOLS_POLL_MS = 2000;
/** More than this is no runtime pools file (64 pools of 4 KiB paths fit well within it). */
const RUNTIME_POOLS_MAX_BYTES = 1024 * 1024;

/** What one read of the file gave: its text, no file, or why it could not be read (noAnswer: not within the deadline). */
export type RuntimeRaw = { kind: 'text'; text: string } | { kind: 'missing' } | { kind: 'error'; error: string; noAnswer?: true };

const reading = new SingleFlight<RunResult>();

/**
 * The file's text, read by a child (`dd`, absolute path resolved at start) with a deadline: a disk
 * that hangs holds the child, never the fencer's thread (reference/fencing.md §7 rules 1, 5, 11), and
 * no libuv threadpool either. One child at a time: one stuck in the kernel past its SIGKILL is joined
 * by the next read, which answers by its own deadline. Never rejects.
 */
export async function readRuntimePoolsChild(file: string, dd: string, run: Runner, timeoutMs = RUNTIME_POOLS_READ_MS): Promise<RuntimeRaw> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs + 100)));
  try {
    const child = reading.join(run, `${dd}\0${file}`, () => run(dd, [`if=${file}`, 'bs=65536', 'status=none'], { timeoutMs, allowFailure: true, maxBuffer: RUNTIME_POOLS_MAX_BYTES }));
    const r = await Promise.race([child, late]);
    if (r === 'late') return { kind: 'error', error: `no answer within ${timeoutMs / 1000} s (a hung disk?)`, noAnswer: true };
    if (r.code === 0) return { kind: 'text', text: r.stdout };
    const why = r.stderr.trim().split('\n')[0] ?? '';
    // The child runs with LC_ALL=C: strerror(ENOENT) as the C library says it.
    if (/No such file or directory$/.test(why)) return { kind: 'missing' };
    return { kind: 'error', error: `cannot read it: ${why.replace(/^dd: /, '') || `dd exited ${r.code}`}` };
  } catch (e) {
    if (e instanceof BrickError && e.fault === 'TIMEOUT') return { kind: 'error', error: `no answer within ${timeoutMs / 1000} s (a hung disk?)`, noAnswer: true };
    return { kind: 'error', error: `cannot read it: ${(e as Error).message}` };
  } finally {
    clearTimeout(timer);
  }
}

/** What the fencer last read of the file: its content (MISSING_CONTENT when there was none; undefined before a read), and the error it is unusable for. */
export interface RuntimeSeen {
  content: string | undefined;
  error: string | null;
}

/** The content of a file that is not there. */
export const MISSING_CONTENT = '\0missing';

export type RuntimeStep =
  /** Nothing new: the same content as before, and it was usable. */
  | { kind: 'same' }
  /** Usable: the pools it lists (none for a missing file). changed: other content than before (what was said of the old content goes). */
  | { kind: 'ok'; content: string; changed: boolean; pools: RuntimePoolEntry[] }
  /** Not usable: keep the last good set. content undefined: it could not be read (no answer, an errno). */
  | { kind: 'unusable'; content: string | undefined; changed: boolean; error: string; noAnswer?: true };

/** What a read of the file means against what was last read (pure). */
export function judgeRuntimeRead(prev: RuntimeSeen, r: RuntimeRaw): RuntimeStep {
  if (r.kind === 'error') return { kind: 'unusable', content: undefined, changed: false, error: r.error, ...(r.noAnswer ? { noAnswer: true as const } : {}) };
  const content = r.kind === 'missing' ? MISSING_CONTENT : r.text;
  const changed = content !== prev.content;
  if (!changed && prev.error === null) return { kind: 'same' };
  if (r.kind === 'missing') return { kind: 'ok', content, changed, pools: [] };
  const p = parseRuntimePools(r.text);
  if (p.ok) return { kind: 'ok', content, changed, pools: p.pools };
  if (!changed && p.error === prev.error) return { kind: 'same' };
  return { kind: 'unusable', content, changed, error: p.error };
}

/**
 * readRuntimePools for the agent's event loop (brick serve): read off the main thread with a
 * deadline, at most one read outstanding in the file's directory (shared/bounded-read.ts; by
 * default /var/lib/brick, marker_dir's disk), so a disk that hangs gives "could not be read within
 * N s" instead of stopping every call. sig is not known (the agent does not use it).
 */
export async function readRuntimePoolsBounded(file: string, reader: BoundedReader = boundedReader): Promise<RuntimeRead> {
  const r = await reader.read(file);
  if (r.kind === 'ok') {
    const p = parseRuntimePools(r.text);
    return p.ok ? { kind: 'ok', sig: '', pools: p.pools } : { kind: 'error', sig: '', error: p.error };
  }
  if (r.kind === 'error' && r.code === 'ENOENT') return { kind: 'missing', sig: 'missing' };
  return noAnswer(r) ? { kind: 'error', sig: '', error: readFailure(r), noAnswer: true } : { kind: 'error', sig: '', error: readFailure(r) };
}

/** The lock table key that serializes every read-modify-write of the file in the agent. */
export const RUNTIME_POOLS_LOCK = 'fencer:runtime-pools';

// ---- the agent's decisions (pure) ----

export interface AddRequest {
  path: string;
  /** The path resolved (realpath -e), as the fencer will probe it. */
  resolved: string;
  heartbeat: HeartbeatKind;
  fenceWhen: FenceWhen;
  addedBy: string;
  nowIso: string;
}

/** A pool already guarded, by the same path or by one that resolves to the same directory. */
export interface GuardedPool {
  path: string;
  /** undefined when it could not be resolved in time. */
  resolved: string | undefined;
  heartbeat: HeartbeatKind;
  fence_when: FenceWhen;
  source: PoolSource;
}

export type AddPlan =
  | { kind: 'add'; pools: RuntimePoolEntry[] }
  | { kind: 'exists'; pool: GuardedPool }
  | { kind: 'conflict'; pool: GuardedPool; message: string };

/**
 * Adding a pool (pure). The same pool again (same path, or a path that resolves to the same
 * directory) changes nothing; with a different heartbeat format or fence_when it is a conflict
 * (the caller decides whether that is a fault), never a silent change.
 */
export function planAdd(current: RuntimePoolEntry[], guarded: GuardedPool[], req: AddRequest): AddPlan {
  const same = guarded.find((g) => g.path === req.path || g.resolved === req.resolved || g.path === req.resolved);
  if (same) {
    const diffs: string[] = [];
    if (same.heartbeat !== req.heartbeat) diffs.push(`heartbeat "${same.heartbeat}", not "${req.heartbeat}"`);
    if (same.fence_when !== req.fenceWhen) diffs.push(`fence_when "${same.fence_when}", not "${req.fenceWhen}"`);
    if (!diffs.length) return { kind: 'exists', pool: same };
    const how = same.source === 'config' ? 'in brick.toml ([[fencer.pool]]); change it there' : 'as a runtime pool; remove it first (heartbeat_remove_pool) to add it with other settings';
    return { kind: 'conflict', pool: same, message: `${req.path} is already guarded${same.path !== req.path ? ` (as ${same.path})` : ''} with ${diffs.join(' and ')}, ${how}` };
  }
  if (current.length >= MAX_RUNTIME_POOLS) throw new BrickError('TOO_LARGE', `already ${current.length} runtime pools: at most ${MAX_RUNTIME_POOLS}`);
  return {
    kind: 'add',
    pools: [...current, { path: req.path, heartbeat: req.heartbeat, fence_when: req.fenceWhen, added_at: req.nowIso, added_by: req.addedBy }],
  };
}

/** What the fencer's state says of a pool, as far as removal cares. */
export interface FencerPoolView {
  state: PoolHealthState;
  armed: boolean;
  /** The fencer has fenced (or, log-only, reported a fence) for this pool. */
  fenced: boolean;
}

export type RemovePlan =
  | { kind: 'remove'; pools: RuntimePoolEntry[]; entry: RuntimePoolEntry }
  | { kind: 'absent' }
  | { kind: 'config' }
  | { kind: 'refuse'; message: string };

/**
 * Whether a guarded pool may stop being guarded now (pure): never while its expiry runs. Healthy,
 * never verified, or dead (expired with no running VM using it: nothing to protect) may go; late
 * or expired (held at start-up included) or fenced stays until it verifies again.
 */
export function removableNow(v: FencerPoolView): { ok: true } | { ok: false; why: string } {
  if (v.fenced) return { ok: false, why: 'the fencer has fenced for it' };
  if (v.state === 'late') return { ok: false, why: 'it is late (its heartbeat has not verified for a while): it could expire' };
  if (v.state === 'expired') return { ok: false, why: 'it is expired: a fence is due' };
  return { ok: true };
}

/**
 * Removing a pool (pure). Config pools cannot be removed this way. A pool the running fencer
 * reports late, expired or fenced is refused: removing it would let an orchestrator dodge a fence
 * that is already due (the fencer also defers such a removal itself, should the state change
 * between this check and its next tick).
 */
export function planRemove(current: RuntimePoolEntry[], configPaths: string[], path: string, fencer: FencerPoolView | undefined): RemovePlan {
  const entry = current.find((e) => e.path === path);
  if (!entry) return configPaths.includes(path) ? { kind: 'config' } : { kind: 'absent' };
  if (fencer) {
    const r = removableNow(fencer);
    if (!r.ok) return { kind: 'refuse', message: `${path} cannot be removed now: ${r.why}; it can be removed once it verifies again (or the host is fenced)` };
  }
  return { kind: 'remove', pools: current.filter((e) => e !== entry), entry };
}

// ---- the fencer's decisions (pure) ----

export interface GuardedRuntime {
  path: string;
  source: PoolSource;
  heartbeat: HeartbeatKind;
  fence_when: FenceWhen;
  view: FencerPoolView;
}

export interface Reconcile {
  /** Entries of the file the fencer does not guard yet. */
  add: RuntimePoolEntry[];
  /** Runtime pools gone from the file that may go now. */
  remove: string[];
  /** Runtime pools gone from the file that stay guarded for now, and why. */
  defer: Array<{ path: string; why: string }>;
  /** Runtime pools whose fence_when changed in the file: applied in place. */
  update: Array<{ path: string; fence_when: FenceWhen }>;
  /** Entries ignored, and why (a config pool's path, a changed heartbeat format). */
  ignore: Array<{ path: string; why: string }>;
}

/** The file's wanted set against what the fencer guards (pure). */
export function reconcile(guarded: GuardedRuntime[], wanted: RuntimePoolEntry[]): Reconcile {
  const out: Reconcile = { add: [], remove: [], defer: [], update: [], ignore: [] };
  const byPath = new Map(guarded.map((g) => [g.path, g]));
  for (const e of wanted) {
    const g = byPath.get(e.path);
    if (!g) out.add.push(e);
    else if (g.source === 'config') out.ignore.push({ path: e.path, why: 'a [[fencer.pool]] of brick.toml has this path' });
    else if (g.heartbeat !== e.heartbeat) out.ignore.push({ path: e.path, why: `guarded with heartbeat "${g.heartbeat}"; a new format needs a remove and an add` });
    else if (g.fence_when !== e.fence_when) out.update.push({ path: e.path, fence_when: e.fence_when });
  }
  const wantedPaths = new Set(wanted.map((e) => e.path));
  for (const g of guarded) {
    if (g.source !== 'runtime' || wantedPaths.has(g.path)) continue;
    const r = removableNow(g.view);
    if (r.ok) out.remove.push(g.path);
    else out.defer.push({ path: g.path, why: r.why });
  }
  return out;
}

/** A runtime entry as the fencer's pool config (runtime pools are mounts: require_mount). */
export function entryPoolConfig(e: Pick<RuntimePoolEntry, 'path' | 'heartbeat' | 'fence_when'>): PoolConfig {
  return { path: e.path, heartbeat: e.heartbeat, fence_when: e.fence_when, require_mount: true };
}

/**
 * The kernel's own filesystems: no storage behind them, and most refuse the heartbeat's files. A pool
 * there would never verify, so never arm nor fence, and be reported overdue for ever. autofs is not
 * one of them: an automounted export is an autofs mount until the NFS mount is stacked on it.
 */
export const KERNEL_FSTYPES: ReadonlySet<string> = new Set([
  'proc', 'sysfs', 'devtmpfs', 'devpts', 'cgroup', 'cgroup2', 'debugfs', 'tracefs', 'securityfs', 'pstore', 'bpf',
  'configfs', 'fusectl', 'mqueue', 'efivarfs', 'binfmt_misc', 'rpc_pipefs', 'nfsd', 'selinuxfs', 'hugetlbfs',
]);

/**
 * Why `resolved` cannot be a runtime pool, by /proc/self/mountinfo's mounts (pure), or undefined: it
 * must be a mount point, and the mount on top there (the last listed) must not be the kernel's own.
 */
export function poolMountRefusal(resolved: string, mounts: ReadonlyArray<{ mountPoint: string; fstype: string }>): string | undefined {
  const here = mounts.filter((m) => m.mountPoint === resolved);
  if (!here.length) return 'is not a mount point: a heartbeat pool is the primary storage\'s mount (an NFS export, a shared filesystem), not a directory on this host\'s own disk';
  const top = here[here.length - 1].fstype;
  if (KERNEL_FSTYPES.has(top)) return `is a ${top} mount, one of the kernel's own filesystems, with no storage behind it: a heartbeat pool is the primary storage's mount (an NFS export, a shared filesystem)`;
  return undefined;
}
