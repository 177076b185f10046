// Private temporary directories that name the process that made them (brick-KIND-PID-START-XXXXXX
// in /tmp: its pid and its start time, /proc/<pid>/stat starttime), so that one a killed process
// left (SIGKILL, a crash: its finally never ran) can be told from one a live process still uses, and
// removed at the next start. The start time tells the maker from a later process that drew its pid:
// pid_max (32768 on OL5/OL6) wraps within hours on a busy host, and a name with the pid alone kept a
// left directory for as long as that other process ran.
import { lstatSync, readdir, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { procStart, processFacts, recordedProcess, type ProcessFacts } from './process-identity.js';

/**
 * Where they are made and swept: /tmp, whatever the environment says (os.tmpdir() follows TMPDIR,
 * and no environment variable may move where brick serve writes or what it removes at start).
 */
export const TEMP_ROOT = '/tmp';

/** The kinds brick makes; only these are ever swept. */
export type TempKind = 'hook' | 'define' | 'domr';

/** brick-KIND-PID[-START]-XXXXXX: names made before they carried the start time have none. */
const LEFT = /^brick-(hook|define|domr)-([1-9]\d{0,9})(?:-(\d{1,20}))?-[A-Za-z0-9]{6}$/;

/** This process's start time, read once (undefined: /proc could not tell; then the pid alone). */
let selfStart: string | undefined | null = null;
function ownStart(): string | undefined {
  if (selfStart === null) selfStart = procStart('self');
  return selfStart;
}

/** A new private (0700) directory for this process. */
export function makeTempDir(kind: TempKind): Promise<string> {
  const start = ownStart();
  return mkdtemp(join(TEMP_ROOT, `brick-${kind}-${process.pid}-${start === undefined ? '' : `${start}-`}`));
}

/**
 * Whether a directory name is one makeTempDir made in a process that no longer runs (pure): its pid
 * is no process's, or a process drew the pid since (another start time; this process's own pid with
 * another start time is a previous process's). A name without a start time (made before names had
 * one), or a process whose start time cannot be read, is judged by the pid alone (recordedProcess).
 */
export function leftByGoneProcess(name: string, facts: (pid: number) => ProcessFacts): boolean {
  const m = LEFT.exec(name);
  if (!m) return false;
  const pid = Number(m[2]);
  return recordedProcess({ pid, start: m[3] }, facts(pid)) !== 'runs';
}

/**
 * Remove the directories of makeTempDir whose process is gone (leftByGoneProcess): a real directory
 * (not a link) owned by this user. One whose maker still runs stays. Resolves to the paths removed;
 * never rejects. `dir`: TEMP_ROOT; a test passes its own. The directory is listed on libuv's threadpool (serve
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
    if (!leftByGoneProcess(name, processFacts)) continue;
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
