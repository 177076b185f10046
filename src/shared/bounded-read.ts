// Reads of small local files from a long-running process's event loop (brick serve) that a hung disk
// cannot stop. A synchronous read of a file on a disk that hangs (a failing disk, a directory an
// admin put on a hard NFS mount) holds the main thread in the kernel: no call, no /healthz, no
// SIGTERM is handled until the disk answers, perhaps never. Here the read runs on the libuv
// threadpool (fs.promises), the caller gets an answer by its deadline whatever the disk does, and
// at most one read per directory is outstanding: while one is stuck, later reads of that directory
// are not started (each would pin one more of the pool's four threads, and with them every other
// fs.promises call and DNS lookup of the process); they answer at once that the directory has not
// answered. Once the stuck read ends, the next one reads again.
//
// Async fs rather than a child per read (src/shared/run.ts): heartbeat_status and /metrics read the
// fencer's files on every call and scrape; a child costs a fork and exec each (milliseconds of CPU),
// a threadpool read microseconds, and the single flight bounds what a hung disk can take to one
// thread per directory.
import { readFile } from 'node:fs/promises';
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
  /** Directory → when its outstanding read started. */
  private readonly inFlight = new Map<string, number>();
  private readonly deps: BoundedReaderDeps;

  constructor(deps: Partial<BoundedReaderDeps> = {}) {
    this.deps = { readFile: (p) => readFile(p, 'utf8'), now: () => Number(process.hrtime.bigint()) / 1e6, ...deps };
  }

  /** The file's text, or why not, by `deadlineMs`; never rejects, never blocks the event loop. */
  read(path: string, deadlineMs = FENCER_FILE_READ_DEADLINE_MS): Promise<BoundedRead> {
    const dir = dirname(path);
    const since = this.inFlight.get(dir);
    if (since !== undefined) return Promise.resolve({ kind: 'busy', sinceMs: this.deps.now() - since });
    this.inFlight.set(dir, this.deps.now());
    let reading: Promise<BoundedRead>;
    try {
      reading = this.deps.readFile(path).then(
        (text): BoundedRead => ({ kind: 'ok', text }),
        (e: unknown): BoundedRead => ({ kind: 'error', code: (e as NodeJS.ErrnoException).code ?? (e as Error).message ?? String(e) }),
      );
    } catch (e) {
      reading = Promise.resolve({ kind: 'error', code: (e as NodeJS.ErrnoException).code ?? String(e) });
    }
    void reading.finally(() => this.inFlight.delete(dir));
    return new Promise<BoundedRead>((resolve) => {
      const timer = setTimeout(() => resolve({ kind: 'timeout', deadlineMs }), deadlineMs);
      // The timer never keeps a process alive that has nothing else to do.
      timer.unref();
      void reading.then((r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
  }
}

/** The process's one reader: the single flight holds across every caller. */
export const boundedReader = new BoundedReader();
