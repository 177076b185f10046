// Private temporary directories that name the process that made them (brick-KIND-PID-XXXXXX in
// /tmp), so that one a killed process left (SIGKILL, a crash: its finally never ran) can be told
// from one a live process still uses, and removed at the next start.
import { lstatSync, readdir, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Where they are made and swept: /tmp, whatever the environment says (os.tmpdir() follows TMPDIR,
 * and no environment variable may move where brick serve writes or what it removes at start).
 */
export const TEMP_ROOT = '/tmp';

/** The kinds brick makes; only these are ever swept. */
export type TempKind = 'hook' | 'define' | 'domr';

const LEFT = /^brick-(hook|define|domr)-([1-9]\d{0,9})-[A-Za-z0-9]{6}$/;

/** A new private (0700) directory for this process. */
export function makeTempDir(kind: TempKind): Promise<string> {
  return mkdtemp(join(TEMP_ROOT, `brick-${kind}-${process.pid}-`));
}

/** Whether a process has this pid (EPERM: one does, another user's). */
function pidLives(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Remove the directories of makeTempDir whose process is gone: a real directory (not a link)
 * owned by this user, named for a pid no process has. One whose pid is alive (the maker, or a process
 * that has its pid now) stays, for a later start. Resolves to the paths removed; never rejects.
 * `dir`: TEMP_ROOT; a test passes its own. The directory is listed on libuv's threadpool (serve
 * runs this once at start, beside the server's set-up on the main thread, and waits for it before
 * it listens: a /tmp of thousands of entries took 2-8 ms of the start as a readdirSync); the few
 * names that match are checked and removed synchronously, on the local temporary directory. The
 * callback API: node:fs/promises stays unloaded until a call needs it (test/host/bundle-lazy.test.ts).
 */
export function sweepLeftTempDirs(dir = TEMP_ROOT): Promise<string[]> {
  return new Promise((resolve) => readdir(dir, (err, names) => resolve(err ? [] : removeLeft(dir, names))));
}

function removeLeft(dir: string, names: string[]): string[] {
  const removed: string[] = [];
  const uid = process.getuid?.();
  for (const name of names) {
    const m = LEFT.exec(name);
    if (!m || Number(m[2]) === process.pid || pidLives(Number(m[2]))) continue;
    const path = join(dir, name);
    try {
      const st = lstatSync(path);
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    } catch {
      /* gone meanwhile, or not ours to remove */
    }
  }
  return removed;
}
