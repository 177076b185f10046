// Reads of small local files from a long-running process's event loop (brick serve) that a hung disk
// cannot stop. A synchronous read of a file on a disk that hangs (a failing disk, a directory an
// admin put on a hard NFS mount) holds the main thread in the kernel: no call, no /healthz, no
// SIGTERM is handled until the disk answers, perhaps never. Here the read runs on the libuv
// threadpool (fs.readFile with a callback: node:fs/promises stays unloaded in the fencer, whose
// bundle holds this module: test/host/bundle-lazy.test.ts), the caller gets an answer by its
// deadline whatever the disk does, and at most one read per directory is outstanding: while one is stuck, later reads of that directory
// are not started (each would pin one more of the pool's four threads, and with them every other
// asynchronous fs call and DNS lookup of the process); they answer at once that the directory has not
// answered. A read that is merely outstanding (a healthy disk, two calls at once) is waited for, not
// taken for a hung disk. Once the stuck read ends, the next one reads again.
//
// Async fs rather than a child per read (src/shared/run.ts): heartbeat_status and /metrics read the
// fencer's files on every call and scrape; a child costs a fork and exec each (milliseconds of CPU),
// a threadpool read microseconds, and the single flight bounds what a hung disk can take to one
// thread per directory.
import { readFile } from 'node:fs';
import { dirname } from 'node:path';

/** How long the agent waits for one of the fencer's local files (state, fence marker) to be read. */
export const FENCER_FILE_READ_DEADLINE_MS = 2000;

export type BoundedRead =
  | { kind: 'ok'; text: string }
  /** The read failed: the errno code (ENOENT: there is no such file). */
  | { kind: 'error'; code: string }
  /** No answer within the deadline (the read goes on in the background, holding its directory's flight). */
  | { kind: 'timeout'; deadlineMs: number }
  /** Not started: an earlier read in the same directory has had no answer for `sinceMs`. */
  | { kind: 'busy'; sinceMs: number };

/** Why a read that did not give the text failed, for a reply (pure): "could not be read within 2 s (no answer: a hung disk?)". */
export function readFailure(r: Exclude<BoundedRead, { kind: 'ok' }>): string {
  switch (r.kind) {
    case 'error':
      return `cannot read it: ${r.code}`;
    case 'timeout':
      return `could not be read within ${r.deadlineMs / 1000} s (no answer: a hung disk?)`;
    case 'busy':
      return `could not be read: an earlier read in its directory has had no answer for ${Math.round(r.sinceMs / 100) / 10} s (a hung disk?)`;
  }
}

/** The disk did not answer (timeout, or an earlier read still outstanding), as opposed to an errno. */
export const noAnswer = (r: BoundedRead): boolean => r.kind === 'timeout' || r.kind === 'busy';

export interface BoundedReaderDeps {
  readFile: (path: string) => Promise<string>;
  now: () => number;
}

export class BoundedReader {
  /** Directory -> its outstanding read: when it started, its caller's deadline, and when it ends. */
  private readonly inFlight = new Map<string, { since: number; deadlineMs: number; done: Promise<unknown> }>();
  private readonly deps: BoundedReaderDeps;

  constructor(deps: Partial<BoundedReaderDeps> = {}) {
    this.deps = { readFile: (p) => new Promise((resolve, reject) => readFile(p, 'utf8', (e, text) => (e ? reject(e) : resolve(text)))), now: () => Number(process.hrtime.bigint()) / 1e6, ...deps };
  }

  /**
   * The file's text, or why not, by `deadlineMs`; never rejects, never blocks the event loop. While
   * another read of the directory is outstanding and within its own deadline (a healthy disk, two
   * calls at once), this one waits for it and then reads; once that read has outlived its deadline
   * (the disk does not answer), this one is not started and answers "busy" at once.
   */
  read(path: string, deadlineMs = FENCER_FILE_READ_DEADLINE_MS): Promise<BoundedRead> {
    const dir = dirname(path);
    return new Promise<BoundedRead>((resolve) => {
      let settled = false;
      const finish = (r: BoundedRead) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      const timer = setTimeout(() => finish({ kind: 'timeout', deadlineMs }), deadlineMs);
      // The timer never keeps a process alive that has nothing else to do.
      timer.unref();
      const attempt = (): void => {
        if (settled) return; // timed out while waiting: start nothing
        const other = this.inFlight.get(dir);
        if (other) {
          const age = this.deps.now() - other.since;
          if (age >= other.deadlineMs) return finish({ kind: 'busy', sinceMs: age });
          void other.done.then(attempt);
          return;
        }
        void this.start(dir, path, deadlineMs).then(finish);
      };
      attempt();
    });
  }

  private start(dir: string, path: string, deadlineMs: number): Promise<BoundedRead> {
    let reading: Promise<BoundedRead>;
    try {
      reading = this.deps.readFile(path).then(
        (text): BoundedRead => ({ kind: 'ok', text }),
        (e: unknown): BoundedRead => ({ kind: 'error', code: (e as NodeJS.ErrnoException).code ?? (e as Error).message ?? String(e) }),
      );
    } catch (e) {
      reading = Promise.resolve({ kind: 'error', code: (e as NodeJS.ErrnoException).code ?? String(e) });
    }
    const done = reading.finally(() => this.inFlight.delete(dir));
    this.inFlight.set(dir, { since: this.deps.now(), deadlineMs, done });
    return reading;
  }
}

/** The process's one reader: the single flight holds across every caller. */
export const boundedReader = new BoundedReader();
