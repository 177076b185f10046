// One fencer per config: an exclusive flock(2) on `<state_dir>/fencer.lock`, held for the fencer's
// life. Node cannot flock, so the fencer opens the file itself and util-linux flock(1) takes the lock
// on that open file (`flock --exclusive --wait N 3`, the file as the child's fd 3, as `exec 9>f;
// flock 9` does in a shell) and exits: the lock belongs to the open file description, which the
// fencer alone keeps open (O_CLOEXEC: its other children never inherit it). No process holds it for
// the fencer, so no signal to the fencer's cgroup (systemctl kill -s HUP) can release it; the kernel
// drops it when the fencer exits or dies (SIGKILL included). A second fencer on the same state_dir
// refuses to start with the holder's pid (two fencers would share the heartbeat temp file and
// false-fence on healthy storage).
import { spawn } from 'node:child_process';
import { closeSync, constants, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BrickError } from '../shared/errors.js';
import { requireTools } from '../shared/host-tools.js';

export const LOCK_FILE = 'fencer.lock';
/** How long a start waits for the lock (a fencer just killed releases it within milliseconds). */
export const LOCK_WAIT_S = 2;

export interface InstanceLock {
  release(): void;
}

export async function takeInstanceLock(stateDir: string): Promise<InstanceLock> {
  const file = join(stateDir, LOCK_FILE);
  // flock from the host-tool registry (the host's when present, else brick's own copy).
  const { flock } = await requireTools(['flock'], "the fencer's instance lock needs");
  let fd: number;
  try {
    // Local disk (state_dir): a synchronous open. No O_TRUNC: the holder's pid stays readable until the lock is ours.
    fd = openSync(file, constants.O_RDWR | constants.O_CREAT, 0o644);
  } catch (e) {
    try {
      // An existing lock file in a read-only state_dir still takes a lock (flock needs no write access).
      fd = openSync(file, constants.O_RDONLY);
    } catch {
      const err = e as NodeJS.ErrnoException;
      throw new BrickError('COMMAND_FAILED', `cannot take the fencer's lock ${file}: cannot open it (${err.code ?? err.message})`);
    }
  }
  const child = spawn(flock, ['--exclusive', '--wait', String(LOCK_WAIT_S), '3'], {
    stdio: ['ignore', 'ignore', 'pipe', fd],
    cwd: '/',
    env: { PATH: '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' },
  });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b));
  const got = await new Promise<{ code: number | null; error?: string }>((resolve) => {
    const timer = setTimeout(() => resolve({ code: null, error: 'no answer' }), (LOCK_WAIT_S + 10) * 1000);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, error: e.message });
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code });
    });
  });
  if (got.code !== 0) {
    child.kill('SIGKILL');
    closeSync(fd);
    if (got.code === 1) {
      let holder = '';
      try {
        holder = readFileSync(file, 'utf8').trim();
      } catch {
        /* unreadable: said without the pid */
      }
      throw new BrickError(
        'CONFLICT',
        `another brick fencer${/^\d+$/.test(holder) ? ` (pid ${holder})` : ''} holds ${file}: one fencer per host and config; stop it first (systemctl stop brick-fencer)`,
      );
    }
    throw new BrickError('COMMAND_FAILED', `cannot take the fencer's lock ${file}: ${got.error ?? `flock exit ${got.code}`} ${err.trim()}`.trim());
  }
  // Same inode (no rename): the lock stays. Only to name the holder in the second fencer's message.
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
  } catch {
    /* the lock holds without it */
  }
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      closeSync(fd);
    },
  };
}
