// The Ovm3 module's file calls: ovs_mkdirs, ovs_check_file, ovs_upload_file, ovs_upload_ssh_key.
// Every path must lie inside server.file_roots both as written and once symlinks are resolved (the
// realpath of its deepest existing ancestor, plus the rest). ".." is refused outright. Writes are
// atomic: a temp file in the same directory, fsync, rename, fsync of the directory. Every check runs
// before the first change, so a refused call changes nothing; the directories a call made for its
// file are removed again when the call then fails (withDirs).
import { constants as C } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, realpath, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BrickError } from '../../shared/errors.js';
import type { LockTable } from '../../shared/keyed-lock.js';
import type { CallContext } from '../../rpc/catalogue.js';
import { T } from '../../rpc/schema.js';
import { check, Invalid, refine } from '../../rpc/params.js';
import { I8, Plain, plainText } from '../../rpc/formats.js';
import { isTextView } from '../../rpc/values.js';

export const MAX_PATH_BYTES = 4096;
export const MAX_NAME_BYTES = 255;
export const MAX_FILE_BYTES = 16 * 1024 * 1024;
export const MAX_KEY_BYTES = 64 * 1024;

/** A path as a caller sends it (where it may lead is checked against server.file_roots: pathInRoots). */
export const PathText = Plain(MAX_PATH_BYTES);

/** Lexical checks only (pure): expand a leading ~, refuse relative paths and "..", normalise. */
export function normalisePath(name: string, v: unknown, home = homedir()): string {
  let p = check(PathText, v, name);
  if (p === '~' || p.startsWith('~/')) p = home + p.slice(1);
  if (!isAbsolute(p)) throw new BrickError('PATH_REFUSED', `${name}: must be an absolute path, got "${p}"`);
  const parts = p.split('/');
  if (parts.includes('..')) throw new BrickError('PATH_REFUSED', `${name}: ".." is not allowed in "${p}"`);
  if (parts.some((c) => Buffer.byteLength(c) > MAX_NAME_BYTES))
    throw new BrickError('TOO_LARGE', `${name}: a path component is longer than ${MAX_NAME_BYTES} bytes`);
  return resolve(p);
}

/** One file name (no directory part). */
export const FileName = refine(T.String({ description: 'a file name' }), (v): string => {
  const s = plainText(v, MAX_NAME_BYTES);
  if (s === '' || s === '.' || s === '..' || s.includes('/')) throw new Invalid(`must be a single file name without "/", got "${s}"`, 'PATH_REFUSED');
  return s;
});

export function isInside(p: string, root: string): boolean {
  return p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * Where a path really leads: the realpath of its deepest existing ancestor, plus the components
 * that do not exist yet. A dangling symlink on the way is refused (mkdir or a write would follow it).
 */
export async function realTarget(p: string): Promise<string> {
  const rest: string[] = [];
  let cur = p;
  for (;;) {
    try {
      const real = await realpath(cur);
      return rest.length ? join(real, ...rest.reverse()) : real;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') throw new BrickError('PATH_REFUSED', `${cur}: a symlink loop (too many levels of symbolic links); fix or remove the symlink`);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw ioError(cur, e);
      const exists = await lstat(cur).then(() => true, () => false);
      if (exists) throw new BrickError('PATH_REFUSED', `${cur}: a symlink that leads nowhere; remove it or point it inside file_roots`);
      if (cur === '/') return p;
      rest.push(basename(cur));
      cur = dirname(cur);
    }
  }
}

/** Resolve a caller's path and require it inside server.file_roots, as written and as resolved. */
export async function pathInRoots(name: string, v: unknown, roots: readonly string[], home?: string): Promise<string> {
  const p = normalisePath(name, v, home);
  const lexRoots = roots.map((r) => resolve(r));
  if (!lexRoots.some((r) => isInside(p, r)))
    throw new BrickError('PATH_REFUSED', `${name}: ${p} is outside server.file_roots (${roots.join(', ')})`);
  const real = await realTarget(p);
  // The roots resolved one at a time, those that (as written) hold the target first, until one holds
  // it: a call under /root/.ssh never touches /OVS/Repositories, whose disk may not answer.
  const ordered = [...lexRoots.filter((r) => isInside(real, r) || isInside(p, r)), ...lexRoots.filter((r) => !isInside(real, r) && !isInside(p, r))];
  for (const r of ordered) if (isInside(real, await realTarget(r).catch(() => r))) return real;
  throw new BrickError('PATH_REFUSED', `${name}: ${p} leads to ${real} through a symlink, outside server.file_roots`);
}

/** A file call's operation under one root older than this has had no answer: its disk hangs. */
export const ROOT_STUCK_MS = 10_000;
/** Two operations under one root older than this each: a disk that hardly answers, for this purpose. */
export const ROOT_SLOW_MS = 3000;

/**
 * The Ovm3 file calls under each file root, under way. Their file system operations run on the
 * libuv threadpool (four threads for the whole agent: every asynchronous fs call, the fencer-file
 * reads of heartbeat_status, DNS lookups); one on a disk that does not answer (the primary storage's
 * NFS or OCFS2 gone: just what the fencer is there for) holds its thread until the disk answers,
 * perhaps never, and its call answers TIMEOUT at its deadline with the operation still under way.
 * So a root with an operation under way for ROOT_STUCK_MS, or two for ROOT_SLOW_MS, gets no new one
 * until they end: a call there fails at once (TIMEOUT, nothing done), and the rest of the agent
 * keeps its threads. Other roots are not affected.
 */
export class RootFlights {
  private readonly underWay = new Map<string, Set<{ since: number }>>();
  constructor(private readonly now: () => number = () => performance.now()) {}

  async run<T>(root: string, fn: () => Promise<T>): Promise<T> {
    const t = this.now();
    const open = this.underWay.get(root) ?? new Set();
    const ages = [...open].map((o) => t - o.since).sort((a, b) => b - a);
    if ((ages[0] ?? 0) >= ROOT_STUCK_MS || (ages[1] ?? 0) >= ROOT_SLOW_MS)
      throw new BrickError(
        'TIMEOUT',
        `${root}: ${ages.length === 1 ? 'an earlier file call there has' : `${ages.length} earlier file calls there have`} had no answer from its disk for ${Math.round(ages[0] / 100) / 10} s (a hung disk?): not starting another (each would hold one of the agent's four I/O threads); nothing was done`,
        { root },
      );
    const me = { since: t };
    open.add(me);
    this.underWay.set(root, open);
    try {
      return await fn();
    } finally {
      open.delete(me);
      if (!open.size && this.underWay.get(root) === open) this.underWay.delete(root);
    }
  }
}

/** The agent's one table (tests make their own). */
export const rootFlights = new RootFlights();

/** The file root (as written, resolved) that holds path p as written, the deepest if several; p itself when none does (then pathInRoots refuses it). */
export function rootOf(p: string, roots: readonly string[]): string {
  const holding = roots.map((r) => resolve(r)).filter((r) => isInside(p, r));
  return holding.sort((a, b) => b.length - a.length)[0] ?? p;
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

function ioError(what: string, e: unknown): BrickError {
  const code = errno(e);
  if (code === 'ENOSPC') return new BrickError('COMMAND_FAILED', `${what}: no space left on the device`);
  if (code === 'EACCES' || code === 'EPERM') return new BrickError('PATH_REFUSED', `${what}: permission denied`);
  if (code === 'ENOTDIR' || code === 'EISDIR' || code === 'EEXIST')
    return new BrickError('CONFLICT', `${what}: something of another type is in the way (${code})`);
  return new BrickError('COMMAND_FAILED', `${what}: ${(e as Error).message}`);
}

/** `dir` and its ancestors up to the first that exists: the ones missing, top first. */
async function missingDirs(dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (let cur = dir; ; cur = dirname(cur)) {
    const exists = await stat(cur).then(() => true, () => false);
    if (exists || cur === '/') break;
    missing.unshift(cur);
  }
  return missing;
}

/**
 * Create dir and its missing parents (`missing`, top first, as missingDirs found them) with exactly
 * `mode` (not masked by the umask), pushing each directory it creates onto `created` as it goes (so a
 * caller can undo them even when it throws). Returns true when it created the last component, false
 * when it already was a directory.
 */
async function makeDirs(dir: string, missing: readonly string[], mode: number, created: string[]): Promise<boolean> {
  const st = await stat(dir).catch((e) => (errno(e) === 'ENOENT' ? undefined : Promise.reject(ioError(dir, e))));
  if (st) {
    if (!st.isDirectory()) throw new BrickError('CONFLICT', `${dir}: exists and is not a directory`);
    return false;
  }
  let createdLeaf = false;
  for (const d of missing) {
    try {
      await mkdir(d, { mode });
      created.push(d);
      await chmod(d, mode);
      if (d === dir) createdLeaf = true;
    } catch (e) {
      if (errno(e) !== 'EEXIST') throw ioError(d, e);
      // Created concurrently by someone else: fine if it is a directory.
      const s = await stat(d).catch(() => undefined);
      if (!s?.isDirectory()) throw new BrickError('CONFLICT', `${d}: exists and is not a directory`);
    }
  }
  return createdLeaf;
}

/** The lock of a directory withDirs may make, remove, or rely on. */
const dirKey = (d: string) => `dir:${d}`;

/**
 * Run fn with `dir` made (its missing parents too, `mode`); fn gets whether `dir` itself was made.
 * When the making or fn fails, the directories this call made are removed again, deepest first, each
 * only while empty. It holds `keys` and the locks of every directory it may make and of the deepest
 * one that exists under them, so another call into the same new directory (or beside or below it)
 * waits until this one is done, and never sees a directory go while it writes into it; it checks
 * again inside the locks that the directories are as it found them, else takes the new ones' locks.
 */
export async function withDirs<T>(locks: LockTable, dir: string, mode: number, keys: readonly string[], fn: (made: boolean) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const missing = await missingDirs(dir);
    const base = missing.length ? dirname(missing[0]) : dir;
    const plan = [base, ...missing];
    const r = await locks.with([...keys, ...plan.map(dirKey)], async () => {
      const now = await missingDirs(dir);
      if (now.join('\0') !== missing.join('\0')) return undefined;
      const created: string[] = [];
      try {
        return { v: await fn(await makeDirs(dir, now, mode, created)) };
      } catch (e) {
        for (const d of created.reverse()) if (!(await rmdir(d).then(() => true, () => false))) break;
        throw e;
      }
    });
    if (r) return r.v;
    if (attempt >= 4) throw new BrickError('CONFLICT', `${dir}: its directories kept changing while brick made them; nothing was changed; try again`);
  }
}

/**
 * The temp files of this name a brick killed mid-write left (SIGKILL, OOM, a reset: up to 64 MiB
 * each, hidden, never renamed). The caller holds the file's lock, so no write of this name in this
 * brick is under way, and only one brick serve runs on a host: every such file is a leftover.
 */
async function removeStaleTemps(dir: string, prefix: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const n of names) {
    if (n.startsWith(prefix) && /^[0-9a-f]{12}\.tmp$/.test(n.slice(prefix.length))) await unlink(join(dir, n)).catch(() => {});
  }
}

/**
 * Write a file atomically: temp file beside it, fsync, rename over, fsync the directory. With
 * `owner`, the new file gets that uid/gid (the file it replaces keeps its owner, as an in-place write would).
 */
export async function atomicWrite(dir: string, name: string, content: string | Buffer, mode: number, owner?: { uid: number; gid: number }): Promise<void> {
  const target = join(dir, name);
  const existing = await lstat(target).catch(() => undefined);
  if (existing?.isDirectory()) throw new BrickError('CONFLICT', `${target}: is a directory`);
  const prefix = `.${name.slice(0, 200)}.brick-`;
  await removeStaleTemps(dir, prefix);
  const tmp = join(dir, `${prefix}${randomBytes(6).toString('hex')}.tmp`);
  let fh;
  try {
    fh = await open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, mode);
    await fh.writeFile(content);
    if (owner) await fh.chown(owner.uid, owner.gid);
    await fh.chmod(mode); // after chown, which clears set-id bits
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, target);
  } catch (e) {
    await fh?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e instanceof BrickError ? e : ioError(target, e);
  }
  const d = await open(dir, C.O_RDONLY | C.O_DIRECTORY).catch(() => undefined);
  if (d) {
    await d.sync().catch(() => {});
    await d.close();
  }
}

/** File contents as a string or base64, at most max bytes (TOO_LARGE beyond). */
export function Content(max: number) {
  return refine(T.Union([T.String(), T.Uint8Array()]), (v): string | Buffer => {
    if (typeof v !== 'string' && !Buffer.isBuffer(v)) throw new Invalid('must be a string');
    const n = Buffer.isBuffer(v) ? v.length : Buffer.byteLength(v);
    if (n > max) throw new Invalid(`${n} bytes is more than the ${max} accepted`, 'TOO_LARGE');
    return v;
  });
}

/** A permission mode: an int (448 for 0700) or an octal string ("0700"). */
export const FileMode = refine(T.Union([T.Integer(), I8, T.String()]), (v): number => {
  if (typeof v === 'string' && /^0?[0-7]{3,4}$/.test(v)) return parseInt(v, 8);
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0o7777) return v;
  throw new Invalid('must be a permission mode 0-07777 (an int such as 448 for 0700, or an octal string "0700")');
});

const roots = (ctx: CallContext) => ctx.config.server.file_roots;

/** fn, counted under the file root that holds `path` as written (RootFlights); a path no root holds is refused by fn's pathInRoots. */
function underRoot<T>(name: string, path: unknown, ctx: CallContext, fn: () => Promise<T>): Promise<T> {
  const p = normalisePath(name, path);
  return rootFlights.run(rootOf(p, roots(ctx)), fn);
}

/** ovs_mkdirs(dir[, mode]) → nil when it created the directory, true when it existed (the module's contract). */
export async function ovsMkdirs([path, m = 0o700]: [string, number?], ctx: CallContext): Promise<null | true> {
  return underRoot('dir', path, ctx, async () => {
    const dir = await pathInRoots('dir', path, roots(ctx));
    return withDirs(ctx.locks, dir, m, [], async (made) => (made ? null : true));
  });
}

/** ovs_check_file(file) → true when it is a regular file (following symlinks that stay inside file_roots). */
export async function ovsCheckFile([path]: [string], ctx: CallContext): Promise<boolean> {
  return underRoot('file', path, ctx, async () => {
    const file = await pathInRoots('file', path, roots(ctx));
    const st = await stat(file).catch(() => undefined);
    return Boolean(st?.isFile());
  });
}

async function writeInto(dir: string, name: string, data: string | Buffer, dirMode: number, fileMode: (existing?: number) => number, ctx: CallContext) {
  const target = join(dir, name);
  await withDirs(ctx.locks, dir, dirMode, [`file:${target}`], async () => {
    const existing = await stat(target).catch(() => undefined);
    const old = existing?.isFile() ? existing : undefined;
    await atomicWrite(dir, name, data, fileMode(old ? old.mode & 0o7777 : undefined), old && { uid: old.uid, gid: old.gid });
  });
}

/** ovs_upload_file(path, filename, content) → true. Creates path (0700) when missing; a file replaced keeps its owner and group. */
export async function ovsUploadFile([path, name, data]: [string, string, string | Buffer], ctx: CallContext): Promise<true> {
  return underRoot('path', path, ctx, async () => {
    const dir = await pathInRoots('path', path, roots(ctx));
    const target = await pathInRoots('filename', join(dir, name), roots(ctx));
    const inSshDir = basename(dir) === '.ssh';
    await writeInto(dirname(target), basename(target), data, 0o700, (old) => (inSshDir ? 0o600 : (old ?? 0o644)), ctx);
    return true as const;
  });
}

/**
 * ovs_upload_ssh_key(keyfile, content) → true. The key goes beside ovm3.ssh_key (the key exec_domr
 * uses; /root/.ssh by default), 0600, in a directory brick keeps at 0700.
 */
export async function ovsUploadSshKey([name, key]: [string, string | Buffer], ctx: CallContext): Promise<true> {
  let data = key;
  // OpenSSH refuses a private key without its final newline. (A long key sent as a <string> comes
  // as the bytes of the request, isTextView: text all the same.)
  if (isTextView(data)) data = data.toString('utf8');
  if (typeof data === 'string' && data.length && !data.endsWith('\n')) data += '\n';
  return underRoot('ovm3.ssh_key directory', dirname(ctx.config.ovm3.ssh_key), ctx, async () => {
    const dir = await pathInRoots('ovm3.ssh_key directory', dirname(ctx.config.ovm3.ssh_key), roots(ctx));
    const target = await pathInRoots('keyfile', join(dir, name), roots(ctx));
    await withDirs(ctx.locks, dir, 0o700, [`file:${target}`], async () => {
      const st = await stat(dir);
      if ((st.mode & 0o077) !== 0) await chmod(dir, st.mode & 0o700);
      await atomicWrite(dir, name, data, 0o600);
    });
    return true as const;
  });
}
