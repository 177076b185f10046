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

export interface MarkerWriter {
  /** Write the marker durably; returns within `deadlineMs` whatever the disk does. */
  write(markerDir: string, m: FenceMarker, deadlineMs?: number): MarkerOutcome;
  close(): void;
}

// The worker's code: the same steps as writeFileAtomic (temp, fsync, rename, fsync the directory),
// self-contained because a worker of the single binary cannot load brick's modules by path.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const flag = new Int32Array(workerData.flag);
const msg = new Uint8Array(workerData.msg);
parentPort.on('message', ({ file, text }) => {
  let code = 1;
  try {
    const tmp = path.join(path.dirname(file), '.' + path.basename(file) + '.' + process.pid + '.marker.tmp');
    const fd = fs.openSync(tmp, 'w', 0o644);
    try { fs.writeSync(fd, text); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
    fs.renameSync(tmp, file);
    const d = fs.openSync(path.dirname(file), 'r');
    try { fs.fsyncSync(d); } finally { fs.closeSync(d); }
  } catch (e) {
    code = 2;
    msg.set(Buffer.from(String(e && e.message).slice(0, msg.length - 1)));
  }
  Atomics.store(flag, 0, code);
  Atomics.notify(flag, 0);
});
`;

/** Start the marker's writer thread (once, at start-up, so the fence path starts nothing). */
export function startMarkerWriter(): MarkerWriter {
  const flagBuf = new SharedArrayBuffer(4);
  const msgBuf = new SharedArrayBuffer(512);
  const flag = new Int32Array(flagBuf);
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { flag: flagBuf, msg: msgBuf } });
  worker.unref();
  return {
    write(markerDir, m, deadlineMs = MARKER_DEADLINE_MS) {
      Atomics.store(flag, 0, 0);
      worker.postMessage({ file: markerPath(markerDir), text: JSON.stringify(m) + '\n' });
      // Block the main thread (it is fencing; nothing else is due) until written or the deadline.
      Atomics.wait(flag, 0, 0, deadlineMs);
      const code = Atomics.load(flag, 0);
      if (code === 1) return 'written';
      if (code === 0) return 'timeout';
      return { error: Buffer.from(new Uint8Array(msgBuf)).toString('utf8').replace(/\0+$/, '') };
    },
    close() {
      void worker.terminate();
    },
  };
}
