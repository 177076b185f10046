// The fence marker: `<marker_dir>/fence-marker.json` on local persistent disk, written durably just
// before the fence action so it survives the reset. After boot the fencer reports it (state
// `last_fence`), and so do `brick status` and heartbeat_status, until an administrator who has looked
// at why the host fenced removes the file (`rm /var/lib/brick/fence-marker.json`). brick never clears
// it by itself: a host that fenced must stay visibly "fenced before" until a person acknowledges it.
//
// The fence action never waits on the marker for more than MARKER_DEADLINE_MS: the write runs in a
// worker thread started with the fencer (its own thread, not the libuv threadpool), and the fence
// goes ahead when the deadline passes even if the marker directory hangs (a FUSE or NFS mount).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { writeFileAtomic } from '../shared/atomic-write.js';

export const MARKER_FILE = 'fence-marker.json';
export const MARKER_DEADLINE_MS = 500;

export interface FenceMarker {
  /** Wall clock, ISO 8601. */
  at: string;
  pool: string;
  reason: string;
  action: string;
  host_id: string;
  /** Seconds since the pool's last verified heartbeat when the fencer fenced. */
  last_ok_age_s: number | null;
}

export function markerPath(markerDir: string): string {
  return join(markerDir, MARKER_FILE);
}

export function writeFenceMarker(markerDir: string, m: FenceMarker): void {
  writeFileAtomic(markerPath(markerDir), JSON.stringify(m) + '\n');
}

export function readFenceMarker(markerDir: string): FenceMarker | undefined {
  try {
    const m = JSON.parse(readFileSync(markerPath(markerDir), 'utf8')) as FenceMarker;
    return m && typeof m.at === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

export type MarkerOutcome = 'written' | 'timeout' | { error: string };

/**
 * Writes to marker_dir (the fence marker, the lease) from a worker thread, so the main loop never
 * blocks on that directory: `post` returns at once; `write` waits at most its deadline.
 */
export interface MarkerWriter {
  /** Write the marker durably; returns within `deadlineMs` whatever the disk does. */
  write(markerDir: string, m: FenceMarker, deadlineMs?: number): MarkerOutcome;
  /** Write a file durably (temp, fsync, rename, fsync dir) without waiting; `done` reports the outcome later. */
  post(file: string, text: string, done?: (error: string | null) => void): void;
  /** Wait (at most `deadlineMs`) until everything posted so far is done. */
  flush(deadlineMs: number): boolean;
  close(): void;
}

// The worker's code: the same steps as writeFileAtomic (temp, fsync, rename, fsync the directory),
// self-contained because a worker of the single binary cannot load brick's modules by path.
// flag[0] = id of the last job done, flag[1] = its outcome (1 written, 2 failed, message in msg).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const flag = new Int32Array(workerData.flag);
const msg = new Uint8Array(workerData.msg);
parentPort.on('message', ({ id, file, text }) => {
  let code = 1;
  let error = null;
  try {
    const tmp = path.join(path.dirname(file), '.' + path.basename(file) + '.' + process.pid + '.' + id + '.tmp');
    const fd = fs.openSync(tmp, 'w', 0o644);
    try { fs.writeSync(fd, text); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
    fs.renameSync(tmp, file);
    const d = fs.openSync(path.dirname(file), 'r');
    try { fs.fsyncSync(d); } finally { fs.closeSync(d); }
  } catch (e) {
    code = 2;
    error = String(e && e.message);
    msg.fill(0);
    msg.set(Buffer.from(error.slice(0, msg.length - 1)));
  }
  Atomics.store(flag, 1, code);
  Atomics.store(flag, 0, id);
  Atomics.notify(flag, 0);
  parentPort.postMessage({ id, error });
});
`;

/** Start the writer thread (once, at start-up, so the fence path starts nothing). */
export function startMarkerWriter(): MarkerWriter {
  const flagBuf = new SharedArrayBuffer(8);
  const msgBuf = new SharedArrayBuffer(512);
  const flag = new Int32Array(flagBuf);
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { flag: flagBuf, msg: msgBuf } });
  worker.unref();
  let nextId = 0;
  // Jobs are done in order: job `id` is done once flag[0] reaches it.
  const waitFor = (id: number, deadlineMs: number): boolean => {
    const end = performance.now() + deadlineMs;
    for (;;) {
      const done = Atomics.load(flag, 0);
      if (done >= id) return true;
      const left = end - performance.now();
      if (left <= 0) return false;
      Atomics.wait(flag, 0, done, left);
    }
  };
  const callbacks = new Map<number, (error: string | null) => void>();
  worker.on('message', ({ id, error }: { id: number; error: string | null }) => {
    callbacks.get(id)?.(error);
    callbacks.delete(id);
  });
  return {
    write(markerDir, m, deadlineMs = MARKER_DEADLINE_MS) {
      const id = ++nextId;
      worker.postMessage({ id, file: markerPath(markerDir), text: JSON.stringify(m) + '\n' });
      // Block the main thread (it is fencing; nothing else is due) until written or the deadline.
      if (!waitFor(id, deadlineMs)) return 'timeout';
      if (Atomics.load(flag, 1) === 1) return 'written';
      return { error: Buffer.from(new Uint8Array(msgBuf)).toString('utf8').replace(/\0+$/, '') };
    },
    flush(deadlineMs) {
      return waitFor(nextId, deadlineMs);
    },
    post(file, text, done) {
      const id = ++nextId;
      if (done) callbacks.set(id, done);
      worker.postMessage({ id, file, text });
    },
    close() {
      void worker.terminate();
    },
  };
}
