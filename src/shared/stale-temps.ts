// Temp files a killed writer left behind. A durable write (durable-write.ts: `.NAME.PID.tmp`) or an
// atomic one (atomic-write.ts: `.NAME.PID.SEQ.tmp`) writes a temp file beside NAME and renames it
// over NAME; a writer killed between the two (SIGKILL, OOM, a reset of the process by systemd, a
// child killed at its deadline by a process that then died) leaves the temp file, and no later
// process, which has another pid, ever writes or removes that name again: one more file per crash,
// for ever, in marker_dir, state_dir, the runtime pools file's directory. The next start (or write)
// of the file's writer removes those whose writer is gone. A temp file whose pid still runs is never
// removed (it may be a live writer's, between its write and its rename); one whose pid another
// process drew since is kept too (the name has no start time to tell them apart): it goes once that
// pid is free.
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { processFacts } from './process-identity.js';

/**
 * The file and the writer's pid a temp file's name tells (`.NAME.PID.tmp`, `.NAME.PID.SEQ.tmp`), for
 * the files brick writes this way (NAME ends in .json); undefined for any other name (pure).
 */
export function tempFileOf(name: string): { base: string; pid: number } | undefined {
  const m = /^\.(.+?\.json)\.([1-9]\d{0,9})(?:\.\d+)?\.tmp$/.exec(name);
  return m ? { base: m[1], pid: Number(m[2]) } : undefined;
}

/**
 * Of a directory's entries, the temp files of the files `ours` names whose writer is gone (pure):
 * never this process's own (`self`: its next write takes the name again), never one whose pid
 * `alive` says runs.
 */
export function staleTempFiles(names: readonly string[], ours: (base: string) => boolean, alive: (pid: number) => boolean, self = process.pid): string[] {
  return names.filter((n) => {
    const t = tempFileOf(n);
    return t !== undefined && ours(t.base) && t.pid !== self && !alive(t.pid);
  });
}

/** Gathered: a process has this pid (signal 0; EPERM included). */
export function pidRuns(pid: number): boolean {
  return processFacts(pid).pidExists;
}

/**
 * Remove the stale temp files of the files `ours` names in `dir`, synchronously: for a local directory at a
 * process's start (the fencer's state_dir, and marker_dir once a child saw it answer). Never throws:
 * what was removed, and what could not be (a directory that cannot be read, a file that cannot be
 * removed), for the caller to log.
 */
export function sweepStaleTemps(dir: string, ours: (base: string) => boolean, alive: (pid: number) => boolean = pidRuns): { removed: string[]; errors: string[] } {
  const removed: string[] = [];
  const errors: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') errors.push(`${dir}: ${code ?? (e as Error).message}`);
    return { removed, errors };
  }
  for (const n of staleTempFiles(names, ours, alive)) {
    const p = join(dir, n);
    try {
      rmSync(p, { force: true });
      removed.push(p);
    } catch (e) {
      errors.push(`${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  return { removed, errors };
}
