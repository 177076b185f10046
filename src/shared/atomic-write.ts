// The one way brick replaces a file so that a crash or a reset at any moment leaves either the old
// content or the new, never a mix, and the new content is on disk when this returns: write a temp
// file beside the target, fsync it, rename it over the target, fsync the directory (the rename is
// only durable once the directory entry is). Synchronous on purpose: the callers (fence marker,
// fencer state, pending network rollback, sysconfig edits) are small files written at moments
// where the next step must not start before the write is durable.
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** File mode of the new file (default 0o644), exactly: not less the umask of whoever started brick. */
  mode?: number;
  /** fsync the file and its directory (default true). Off only for files whose loss is harmless. */
  durable?: boolean;
}

let seq = 0;

export function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): void {
  const durable = opts.durable ?? true;
  const dir = dirname(path);
  // Unique per process and call: two writers of the same path never share a temp file.
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${++seq}.tmp`);
  const mode = opts.mode ?? 0o644;
  const fd = openTemp(tmp, mode);
  try {
    try {
      // open(2) applies the umask (0644 would be 0600 under umask 077): the mode is set, not left to it.
      fchmodSync(fd, mode);
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      if (durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  if (durable) fsyncDir(dir);
}

/**
 * Create the temp file, exclusively. One that is there already cannot be this process's (the name
 * is unique per process and call): a previous process with the same pid left it, killed between
 * its write and its rename (a fencer that comes back after a reboot may well draw the same pid).
 * The sweep at start keeps files with this process's own pid, so without this such a leftover
 * failed the write that reached its number (EEXIST) instead of being replaced.
 */
function openTemp(tmp: string, mode: number): number {
  try {
    return openSync(tmp, 'wx', mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    rmSync(tmp, { force: true });
    return openSync(tmp, 'wx', mode);
  }
}

/** fsync a directory, so entries created, renamed or removed in it survive a crash. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
