// The agent's write of the runtime pools file (heartbeat_add_pool, heartbeat_remove_pool, the add of
// check_dom0_storage_health_check). The file is on local persistent disk (by default
// /var/lib/brick, marker_dir's disk); a synchronous write there (writeFileAtomic: write, fsync,
// rename, fsync of the directory) held the agent's main thread in the kernel when that disk hung,
// and with it every call, /healthz and SIGTERM. Here the write is the fencer's durable replacement
// done by children with a deadline (shared/durable-write.ts: dd conv=fsync, mv -f -T, sync DIR),
// and the caller answers by its deadline whatever the disk does:
//   written  the file holds the new set, durably; the fencer applies it on its next tick.
//   error    before the rename (mkdir, dd) or a rename that exited non-zero: nothing changed;
//            a rename killed at its deadline: may or may not have landed; after the rename (the
//            directory's fsync): the change is in the file but may not survive a reset.
//   timeout  the write goes on in the background (its end is logged): the change may or may not
//            land. Until it ends, no other read-modify-write of the file starts (`settled`), so a
//            later call reads the file as that write left it, whichever way its rename went.
// At most one write per file is under way in the process (brick serve is the file's one writer;
// the callers also hold RUNTIME_POOLS_LOCK), so the temp file's fixed name is never shared.
import { chmod, mkdir, readdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { BrickError } from '../shared/errors.js';
import type { Runner } from '../shared/run.js';
import { DURABLE_STEP_TIMEOUT_MS, resolveDurableWriteTools, writeDurablyAt, type DurableStep, type DurableWriteTools } from '../shared/durable-write.js';
import { pidRuns, staleTempFiles } from '../shared/stale-temps.js';
import { dirsMade } from '../shared/dir-mode.js';
import { runtimePoolsText, type RuntimePoolEntry } from './runtime-pools.js';
import { MARKER_DIR_MODE } from './marker.js';

/** How long heartbeat_add_pool / heartbeat_remove_pool wait for the runtime pools file to be written. */
export const RUNTIME_POOLS_WRITE_DEADLINE_MS = 5000;
/** How long a call waits for an earlier write still under way before it answers NOT_READY. */
export const RUNTIME_POOLS_SETTLE_WAIT_MS = 2000;

export type WriteOutcome = 'written' | 'timeout' | { step: DurableStep; error: string; exited: boolean };

/**
 * The fault a write that did not plainly succeed answers with (pure); undefined when written.
 * `change` names what the write was for ("pool /p added"), `mayOrMayNot` the same as a maybe
 * ("/p may or may not be added").
 */
export function writeFault(file: string, outcome: WriteOutcome, deadlineMs: number, change: string, mayOrMayNot: string): BrickError | undefined {
  if (outcome === 'written') return undefined;
  const tell = 'heartbeat_status or a later call tells';
  if (outcome === 'timeout')
    return new BrickError(
      'TIMEOUT',
      `the runtime pools file ${file} could not be written within ${deadlineMs / 1000} s (no answer: a hung disk?); ${mayOrMayNot}: the write goes on in the background; ${tell}`,
    );
  if (outcome.step === 'fsync of the directory')
    return new BrickError('COMMAND_FAILED', `the runtime pools file ${file} was replaced (${change}; the fencer applies it on its next tick), but its ${outcome.error}: the change may not survive a reset of the host`);
  if (outcome.step === 'rename' && !outcome.exited)
    return new BrickError('COMMAND_FAILED', `the runtime pools file ${file} could not be written (${outcome.error}); ${mayOrMayNot}: ${tell}`);
  return new BrickError('COMMAND_FAILED', `the runtime pools file ${file} could not be written (${outcome.error}); nothing changed`);
}

export interface RuntimePoolsWriterDeps {
  tools: () => Promise<DurableWriteTools>;
  mkdir: (dir: string) => Promise<unknown>;
  /** Remove the temp files of `file` a writer that is gone left (shared/stale-temps.ts); the paths removed. */
  sweep: (file: string) => Promise<string[]>;
  now: () => number;
  stepTimeoutMs: number;
}

export class RuntimePoolsWriter {
  /** File -> its write under way: when it started, and when it ends (never rejects). */
  private readonly underway = new Map<string, { since: number; done: Promise<unknown> }>();
  private readonly deps: RuntimePoolsWriterDeps;
  /** Files whose stale temp files this process has removed (once, before its first write of each). */
  private readonly swept = new Set<string>();

  constructor(deps: Partial<RuntimePoolsWriterDeps> = {}) {
    this.deps = {
      tools: () => resolveDurableWriteTools('the write of the runtime pools file needs'),
      mkdir: makeDir,
      sweep: sweepStaleTempsOf,
      now: () => Number(process.hrtime.bigint()) / 1e6,
      stepTimeoutMs: DURABLE_STEP_TIMEOUT_MS,
      ...deps,
    };
  }

  /**
   * Resolves once no earlier write of `file` is under way (at once, nearly always); NOT_READY when
   * one still is after `waitMs` (it timed out for its caller and the disk still does not answer):
   * what the file holds is not known until it ends, so nothing may be read and written back.
   */
  async settled(file: string, waitMs = RUNTIME_POOLS_SETTLE_WAIT_MS): Promise<void> {
    const w = this.underway.get(file);
    if (!w) return;
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([w.done.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), waitMs)))]);
    clearTimeout(timer);
    if (!ended)
      throw new BrickError(
        'NOT_READY',
        `an earlier write of the runtime pools file ${file} has not finished after ${Math.round((this.deps.now() - w.since) / 100) / 10} s (a hung disk?): what the file holds is not known until it ends; nothing changed`,
      );
  }

  /** Is a write of `file` under way (for tests and logs). */
  busy(file: string): boolean {
    return this.underway.has(file);
  }

  /**
   * Write `pools` durably, answering by `deadlineMs` whatever the disk does; never rejects. On
   * 'timeout' the write goes on, and `late` gets its outcome when it ends. The caller holds
   * RUNTIME_POOLS_LOCK and has awaited `settled(file)`.
   */
  write(run: Runner, file: string, pools: RuntimePoolEntry[], deadlineMs: number, late?: (outcome: Exclude<WriteOutcome, 'timeout'>) => void): Promise<WriteOutcome> {
    const text = runtimePoolsText(pools);
    const chain = (async (): Promise<Exclude<WriteOutcome, 'timeout'>> => {
      try {
        await this.deps.mkdir(dirname(file));
        if (!this.swept.has(file)) {
          // A brick serve killed between a write's dd and its mv left `.FILE.PID.tmp`, which no later
          // process (another pid) ever writes again: the first write of this process removes those.
          // Nothing here is the write: an error is no reason not to write (it is tried again next time).
          if (await this.deps.sweep(file).then(() => true, () => false)) this.swept.add(file);
        }
        const tools = await this.deps.tools();
        const r = await writeDurablyAt(run, tools, file, text, this.deps.stepTimeoutMs);
        return r === null ? 'written' : { step: r.step, error: r.error, exited: r.code !== undefined };
      } catch (e) {
        // mkdir failed, or a tool is missing: before the write, nothing changed.
        return { step: 'write', error: (e as Error).message, exited: true };
      }
    })();
    const entry = { since: this.deps.now(), done: chain };
    this.underway.set(file, entry);
    void chain.then(() => {
      if (this.underway.get(file) === entry) this.underway.delete(file);
    });
    return new Promise<WriteOutcome>((resolve) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        resolve('timeout');
      }, deadlineMs);
      void chain.then((o) => {
        if (timedOut) return late?.(o);
        clearTimeout(timer);
        resolve(o);
      });
    });
  }
}

/**
 * The runtime pools file's directory and its missing parents, made with exactly MARKER_DIR_MODE (its
 * default is marker_dir, /var/lib/brick, 0700 as the packages make it; mkdir(2) applies the umask).
 * One that is there already is left as it is.
 */
export async function makeDir(dir: string): Promise<void> {
  for (const d of dirsMade(dir, await mkdir(dir, { recursive: true, mode: MARKER_DIR_MODE }))) await chmod(d, MARKER_DIR_MODE);
}

/** The temp files of `file` a writer that is gone left, removed; the paths removed. Rejects when the directory cannot be read. */
export async function sweepStaleTempsOf(file: string): Promise<string[]> {
  const dir = dirname(file);
  const base = basename(file);
  const stale = staleTempFiles(await readdir(dir), (b) => b === base, pidRuns);
  const removed: string[] = [];
  for (const n of stale) {
    await rm(join(dir, n), { force: true }).then(() => removed.push(join(dir, n)), () => undefined);
  }
  return removed;
}

/** The process's one writer: its "one write per file under way" holds across every call. */
export const runtimePoolsWriter = new RuntimePoolsWriter();
