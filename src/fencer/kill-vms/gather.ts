// The edge of kill-vms that reads: who holds a pool, whether the processes killed are gone, and
// whether the kernel still holds a write for the pool. Only /proc, /sys and debugfs are read, never
// a path on the pool: an open file is matched by the mount id in /proc/<pid>/fdinfo looked up in
// that process's own /proc/<pid>/mountinfo (so a QEMU in libvirt's private mount namespace is
// matched too), a mapping by the device number /proc/<pid>/maps prints; both compared with the
// pool's device number recorded from /proc/self/mountinfo while the pool was healthy.
//
// Reads are asynchronous with one deadline for the round: /proc/<pid>/maps and cmdline take the
// target's mmap lock and may block behind a process stuck in the kernel. A round that does not
// finish in time is "incomplete", which proves nothing (the decision then waits, then resets).
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { KillFacts, Holder, KilledProc } from './decide.js';
import {
  fdinfoMountId, mapsDevices, mountOf, nfsServerAddr, normAddr, parseBdiStats, parseMountinfo, parseProcNetTcp, parseRpcTasks, parseStat,
  parseVmstat, parseXprtInfo, vmFromCmdline, type DevNo, type MountEntry,
} from './proc-parse.js';
import { monoMs } from '../clock.js';

export interface KillTarget {
  path: string;
  /** The pool's mount, from /proc/self/mountinfo while the pool was healthy. */
  mount: MountEntry;
}

export interface GatherPaths {
  proc: string;
  sys: string;
  debugfs: string;
}
export const HOST_PATHS: GatherPaths = { proc: '/proc', sys: '/sys', debugfs: '/sys/kernel/debug' };

export interface GatherOptions {
  paths?: GatherPaths;
  deadlineMs: number;
  /** Never count these as holders (the fencer itself). */
  exclude?: Set<number>;
  now?: () => number;
}

/** node:fs/promises, loaded by the first gather (a fence), not at the fencer's start: about 1 MB of its idle RSS. */
const fsp = () => process.getBuiltinModule('node:fs/promises');
const text = (p: string) => fsp().readFile(p, 'utf8');
const quiet = async <T>(p: Promise<T>): Promise<T | undefined> => {
  try {
    return await p;
  } catch {
    return undefined;
  }
};

/** The pool's mount as this process sees it now (read while the pool is healthy). */
export async function poolMount(path: string, paths: GatherPaths = HOST_PATHS): Promise<MountEntry | undefined> {
  return mountOf(path, parseMountinfo(await text(join(paths.proc, 'self/mountinfo'))));
}

/** Processes holding a file on a device (open fd or mapping). */
const underPath = (p: string, root: string) => {
  const r = root.replace(/\/+$/, '');
  return p === r || p.startsWith(r + '/');
};

const PF_KTHREAD = 0x00200000;

const syncQuiet = <T>(f: () => T): T | undefined => {
  try {
    return f();
  } catch {
    return undefined;
  }
};

/**
 * Processes holding a file on a device (open fd or mapping). /proc/<pid>/stat, fd, fdinfo, ns/mnt
 * and mountinfo are read synchronously: the kernel answers them from its own tables without taking
 * the target's locks, and one round trip through the libuv threadpool per file made a scan take
 * over 10 s in a TCG guest. maps and cmdline take the target's mmap lock (a process stuck in a page
 * fault may hold it): those are read asynchronously, a few at a time. Kernel threads are skipped.
 */
export async function findHolders(dev: DevNo, o: { paths: GatherPaths; mountPoint: string; exclude: Set<number>; errors: string[]; cancelled: () => boolean }): Promise<Holder[]> {
  const pids = readdirSync(o.paths.proc).filter((n) => /^\d+$/.test(n)).map(Number).filter((p) => !o.exclude.has(p));
  // mount namespace → (mount id → device); one mountinfo read per namespace
  const nsMounts = new Map<string, Map<number, DevNo> | undefined>();
  const mountsOf = (base: string) => syncQuiet(() => new Map(parseMountinfo(readFileSync(join(base, 'mountinfo'), 'utf8')).map((e) => [e.mountId, e.dev])));
  const candidates: Array<{ pid: number; st: NonNullable<ReturnType<typeof parseStat>>; how: string[] }> = [];
  let n = 0;
  for (const pid of pids) {
    if (o.cancelled()) return [];
    if (++n % 8 === 0) await new Promise((r) => setImmediate(r)); // let the loop tick (pet) between slices
    const base = join(o.paths.proc, String(pid));
    const st = parseStat(syncQuiet(() => readFileSync(join(base, 'stat'), 'utf8')) ?? '');
    if (!st || st.flags & PF_KTHREAD) continue; // gone, or a kernel thread (no files of its own)
    const how: string[] = [];
    const fds = syncQuiet(() => readdirSync(join(base, 'fd')));
    if (fds && fds.length) {
      const ns = syncQuiet(() => readlinkSync(join(base, 'ns/mnt'))) ?? `pid-${pid}`;
      for (const fd of fds) {
        const target = syncQuiet(() => readlinkSync(join(base, 'fd', fd)));
        if (!target || !target.startsWith('/')) continue; // sockets, pipes, anon inodes
        const mnt = fdinfoMountId(syncQuiet(() => readFileSync(join(base, 'fdinfo', fd), 'utf8')) ?? '');
        if (mnt === undefined) continue;
        if (!nsMounts.has(ns)) nsMounts.set(ns, mountsOf(base));
        let fdDev = nsMounts.get(ns)?.get(mnt);
        // a mount made after this namespace's table was read: read this process's table afresh
        if (fdDev === undefined) fdDev = mountsOf(base)?.get(mnt);
        // A file on a mount no table shows (detached by umount -l, or outside this process's
        // root): its device cannot be read without touching it, so go by its path.
        if (fdDev === undefined && underPath(target, o.mountPoint)) how.push(`fd ${fd} ${target} (detached mount)`);
        if (fdDev === dev) how.push(`fd ${fd} ${target}`);
      }
    }
    candidates.push({ pid, st, how });
  }
  const holders: Holder[] = [];
  const one = async (c: (typeof candidates)[number]) => {
    const base = join(o.paths.proc, String(c.pid));
    const maps = await quiet(text(join(base, 'maps')));
    if (maps && mapsDevices(maps).has(dev)) c.how.push('mmap');
    if (!c.how.length) return;
    const cmd = await quiet(text(join(base, 'cmdline')));
    holders.push({ pid: c.pid, start: c.st.start, comm: c.st.comm, how: c.how, vm: cmd ? vmFromCmdline(cmd) : undefined });
  };
  // a few at a time: the libuv threadpool has four threads, and one may block on a stuck process
  const queue = [...candidates];
  const workers = Array.from({ length: 4 }, async () => {
    while (queue.length && !o.cancelled()) await one(queue.shift()!);
  });
  await Promise.all(workers);
  return holders.sort((a, b) => a.pid - b.pid);
}

/** "pid:start" of each killed process that still has a live (not zombie) thread. */
export async function stillAlive(killed: KilledProc[], paths: GatherPaths): Promise<string[]> {
  const out: string[] = [];
  for (const k of killed) {
    const base = join(paths.proc, String(k.pid));
    const st = parseStat((await quiet(text(join(base, 'stat')))) ?? '');
    if (!st || st.start !== k.start) continue; // gone (or the pid is someone else's now)
    const tids = (await quiet(fsp().readdir(join(base, 'task')))) ?? [];
    let live = false;
    for (const t of tids) {
      const ts = parseStat((await quiet(text(join(base, 'task', t, 'stat')))) ?? '');
      if (ts && ts.state !== 'Z' && ts.state !== 'X' && ts.state !== 'x') live = true;
    }
    if (live) out.push(`${k.pid}:${k.start}`);
  }
  return out;
}

/** Loop devices whose backing file is on the pool: the kernel holds the file, no process does. */
export async function loopHolders(mountPoint: string, paths: GatherPaths): Promise<string[]> {
  const mp = mountPoint.replace(/\/+$/, '');
  const out: string[] = [];
  for (const dev of (await quiet(fsp().readdir(join(paths.sys, 'block')))) ?? []) {
    if (!dev.startsWith('loop')) continue;
    const f = (await quiet(text(join(paths.sys, 'block', dev, 'loop/backing_file'))))?.trim();
    if (f && (f === mp || f.startsWith(mp + '/'))) out.push(`/dev/${dev} (backing file ${f})`);
  }
  return out;
}

/**
 * What the kernel still holds to write to the pool. NFS: RPC tasks of the clients talking to the
 * pool's server (debugfs sunrpc), dirty or under-writeback pages of the pool's superblock (its bdi),
 * and bytes in TCP sockets to the server that the kernel would retransmit. FUSE: requests waiting
 * on the connection (fusectl) and the bdi. Anything else: cannot be shown.
 */
export async function pendingWrites(m: MountEntry, paths: GatherPaths): Promise<NonNullable<KillFacts['pending']>> {
  const items: string[] = [];
  const [maj, min] = m.dev.split(':').map(Number);
  const bdi = async (name: string): Promise<string | undefined> => {
    const t = await quiet(text(join(paths.debugfs, 'bdi', name, 'stats')));
    if (t === undefined) return `${join(paths.debugfs, 'bdi', name, 'stats')} unreadable (is debugfs mounted on ${paths.debugfs}?)`;
    const s = parseBdiStats(t);
    if (!s) return `${join(paths.debugfs, 'bdi', name, 'stats')}: unknown format`;
    if (s.writebackKb || s.reclaimableKb) {
      items.push(`page cache: ${s.reclaimableKb} kB dirty, ${s.writebackKb} kB under writeback, ${s.dirtyInodes} dirty inodes`);
      return undefined;
    }
    if (!s.dirtyInodes) return undefined;
    // Inodes on the dirty lists with 0 kB shown. Every write of a page leaves its inode listed until
    // the flusher passes (dirty_expire_centisecs, 30 s): brick's own probe (dd oflag=dsync
    // conv=fsync) does it every probe. Such an inode sends nothing unless it still has a page
    // (dirty, under writeback, or written UNSTABLE and awaiting COMMIT: NFS counts those as
    // writeback). The bdi's kB counters are per-CPU batched and may hide a few pages, so "0 kB"
    // proves nothing alone; the host's exact counts (per-CPU parts folded by stat_refresh) of
    // dirty and writeback pages do, when they are 0: then no page anywhere is waiting.
    const exact = await exactPageCounts(paths);
    if (typeof exact === 'string') {
      items.push(`page cache: ${s.dirtyInodes} dirty inodes with 0 kB shown, and ${exact}`);
      return undefined;
    }
    const n = exact.dirty + exact.writeback + exact.writebackTemp;
    if (n) items.push(`page cache: ${s.dirtyInodes} dirty inodes with 0 kB shown (per-CPU batched), and ${exact.dirty} dirty + ${exact.writeback + exact.writebackTemp} writeback pages on this host (exact): cannot show none is the pool's`);
    return undefined;
  };
  if (m.fstype === 'nfs' || m.fstype === 'nfs4') {
    const addr = nfsServerAddr(m.superOptions);
    if (!addr) return { known: false, why: `no addr= in the mount's options (${m.superOptions})` };
    const server = normAddr(addr);
    const clntDir = join(paths.debugfs, 'sunrpc/rpc_clnt');
    const clnts = await quiet(fsp().readdir(clntDir));
    if (!clnts) return { known: false, why: `${clntDir} missing: mount debugfs on ${paths.debugfs} (the kernel needs CONFIG_SUNRPC_DEBUG)` };
    for (const c of clnts) {
      const info = await quiet(text(join(clntDir, c, 'xprt/info')));
      const x = info === undefined ? {} : parseXprtInfo(info);
      // Calls that cannot change the storage do not count (a killed reader's, a held probe's stat).
      const tasks = parseRpcTasks((await quiet(text(join(clntDir, c, 'tasks')))) ?? '').filter((t) => !t.proc || !READ_ONLY_PROCS.has(t.proc));
      if (!tasks.length) continue;
      // A client whose transport cannot be read might be the pool's: count it.
      if (x.addr !== undefined && normAddr(x.addr) !== server) continue;
      const procs = [...new Set(tasks.map((t) => t.proc ?? '?'))].join(', ');
      items.push(`${tasks.length} RPC task(s) on rpc client ${c} to ${x.addr ?? 'an unknown server'}: ${procs}`);
    }
    const bad = await bdi(`${maj}:${min}`);
    if (bad) return { known: false, why: bad };
    const sockets: Array<{ addr: string; port: number; bytes: number }> = [];
    for (const f of ['net/tcp', 'net/tcp6']) {
      const t = await quiet(text(join(paths.proc, f)));
      if (t === undefined) {
        if (f === 'net/tcp') return { known: false, why: `${join(paths.proc, f)} unreadable` };
        continue;
      }
      for (const s of parseProcNetTcp(t)) if (normAddr(s.remote) === server && s.txQueue > 0 && DATA_STATES.has(s.state)) sockets.push({ addr: server, port: s.port, bytes: s.txQueue });
    }
    const bytes = sockets.reduce((a, x) => a + x.bytes, 0);
    if (sockets.length) items.push(`${bytes} bytes not yet acknowledged by ${server} in ${sockets.length} TCP socket(s): the kernel would retransmit them`);
    return sockets.length ? { known: true, items, sockets } : { known: true, items };
  }
  if (m.fstype === 'fuse' || m.fstype.startsWith('fuse.') || m.fstype === 'fuseblk' || m.fstype.startsWith('fuseblk.')) {
    // FUSE's own count of waiting requests (fusectl) is no evidence either way: it counts the
    // RELEASE a killed holder's close sends, which a frozen daemon never answers. A FUSE write is
    // either synchronous (the writer cannot finish dying while the daemon holds its request; a
    // request the daemon has not read is dropped with the killed writer) or writeback, which the bdi shows.
    const bad = await bdi(m.fstype.startsWith('fuseblk') ? `${maj}:${min}-fuseblk` : `${maj}:${min}`);
    if (bad) return { known: false, why: bad };
    return { known: true, items };
  }
  return { known: false, why: `brick cannot see pending writes on a ${m.fstype} filesystem` };
}

/**
 * The host's exact numbers of dirty and writeback pages: /proc/sys/vm/stat_refresh folds every
 * CPU's pending counter deltas into the global counters that /proc/vmstat then shows (root only).
 * A string says why they cannot be had.
 */
export async function exactPageCounts(paths: GatherPaths): Promise<{ dirty: number; writeback: number; writebackTemp: number } | string> {
  try {
    await fsp().writeFile(join(paths.proc, 'sys/vm/stat_refresh'), '1\n');
  } catch (e) {
    return `the exact page counts cannot be refreshed (${join(paths.proc, 'sys/vm/stat_refresh')}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  const t = await quiet(text(join(paths.proc, 'vmstat')));
  const v = t === undefined ? undefined : parseVmstat(t);
  if (!v) return `${join(paths.proc, 'vmstat')} unreadable or without nr_dirty/nr_writeback`;
  return v;
}

/** NFS v3/v4 procedures that only read (or drop this client's own open state): never a late write. */
export const READ_ONLY_PROCS = new Set([
  'NULL', 'GETATTR', 'LOOKUP', 'LOOKUPP', 'ACCESS', 'READLINK', 'READ', 'READDIR', 'READDIRPLUS', 'FSSTAT', 'FSINFO', 'PATHCONF',
  'STATFS', 'SERVER_CAPS', 'GETACL', 'FS_LOCATIONS', 'SECINFO', 'SECINFO_NO_NAME', 'GETDEVICEINFO', 'RENEW', 'SEQUENCE',
  'CLOSE', 'DELEGRETURN', 'TEST_STATEID', 'FREE_STATEID',
]);

/** TCP states whose send queue holds data the kernel would still (re)transmit; SYN_SENT's "1" is the SYN. */
const DATA_STATES = new Set(['01', '04', '05', '08', '09', '0B']); // ESTABLISHED FIN_WAIT1 FIN_WAIT2 CLOSE_WAIT LAST_ACK CLOSING

/** One round: holders, killed processes still alive, kernel holders, and (when nothing holds the pool) pending writes. */
export async function gatherKillFacts(t: KillTarget, killed: KilledProc[], o: GatherOptions): Promise<KillFacts> {
  const paths = o.paths ?? HOST_PATHS;
  const now = o.now ?? monoMs;
  const atMs = now();
  const errors: string[] = [];
  let cancelled = false;
  const facts: KillFacts = { atMs, complete: false, holders: [], kernelHolders: [], alive: [], errors };
  const work = (async () => {
    facts.holders = await findHolders(t.mount.dev, { paths, mountPoint: t.mount.mountPoint, exclude: o.exclude ?? new Set([process.pid]), errors, cancelled: () => cancelled });
    facts.alive = await stillAlive(killed, paths);
    facts.kernelHolders = await loopHolders(t.mount.mountPoint, paths);
    if (!cancelled && !facts.holders.length && !facts.alive.length && !facts.kernelHolders.length) facts.pending = await pendingWrites(t.mount, paths);
    if (!cancelled) facts.complete = true;
  })().catch((e: unknown) => {
    errors.push((e as Error).message);
  });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((r) => {
    timer = setTimeout(r, Math.max(1, o.deadlineMs));
  });
  await Promise.race([work, deadline]);
  clearTimeout(timer);
  if (!facts.complete) {
    cancelled = true;
    errors.push(`not finished within ${o.deadlineMs} ms`);
    return { ...facts, complete: false, holders: [...facts.holders], pending: undefined };
  }
  return facts;
}
