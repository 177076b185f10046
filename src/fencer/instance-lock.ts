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
import { closeSync, constants, fchmodSync, fstatSync, ftruncateSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BrickError } from '../shared/errors.js';
import { requireTools } from '../shared/host-tools.js';

export const LOCK_FILE = 'fencer.lock';
/** How long a start waits for the lock (a fencer just killed releases it within milliseconds). */
export const LOCK_WAIT_S = 2;

export interface InstanceLock {
  release(): void;
  /**
   * Once per tick (a stat and an fstat of local files): is `<state_dir>/fencer.lock` still the file
   * this fencer locked? A state_dir removed while the fencer runs (rm -rf /run/brick; the state file
   * is made again) leaves the lock on a file no path reaches, and a second fencer would lock a new
   * one and run beside this one. Then the new file is locked (no wait: retried on the next tick);
   * `onError` says why it could not be (another fencer took it meanwhile).
   */
  check(onError: (msg: string) => void): void;
}

/** Open `file` and flock it through flock(1) on that open file; the fd holds the lock. */
async function lockFile(file: string, flock: string, wait: boolean): Promise<number> {
  let fd: number;
  try {
    // Local disk (state_dir): a synchronous open. No O_TRUNC: the holder's pid stays readable until the lock is ours.
    fd = openSync(file, constants.O_RDWR | constants.O_CREAT, 0o644);
    try {
      // open(2) applies the umask of whoever started the fencer: the mode is set (readable by `brick
      // status`, which names the holder, writable by root alone), not left to it.
      fchmodSync(fd, 0o644);
    } catch {
      /* a lock file that is not ours to change (another owner): it locks all the same */
    }
  } catch (e) {
    try {
      // An existing lock file in a read-only state_dir still takes a lock (flock needs no write access).
      fd = openSync(file, constants.O_RDONLY);
    } catch {
      const err = e as NodeJS.ErrnoException;
      throw new BrickError('COMMAND_FAILED', `cannot take the fencer's lock ${file}: cannot open it (${err.code ?? err.message})`);
    }
  }
  const child = spawn(flock, ['--exclusive', ...(wait ? ['--wait', String(LOCK_WAIT_S)] : ['--nonblock']), '3'], {
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
  return fd;
}

export async function takeInstanceLock(stateDir: string): Promise<InstanceLock> {
  const file = join(stateDir, LOCK_FILE);
  // flock from the host-tool registry (the host's when present, else brick's own copy).
  const { flock } = await requireTools(['flock'], "the fencer's instance lock needs");
  let fd = await lockFile(file, flock, true);
  let held = true;
  let retaking = false;
  return {
    release() {
      if (!held) return;
      held = false;
      closeSync(fd);
    },
    check(onError) {
      if (!held || retaking) return;
      try {
        const a = statSync(file);
        const b = fstatSync(fd);
        if (a.ino === b.ino && a.dev === b.dev) return;
      } catch {
        /* gone: lock the file made anew */
      }
      retaking = true;
      lockFile(file, flock, false).then(
        (nfd) => {
          retaking = false;
          if (!held) return closeSync(nfd);
          closeSync(fd);
          fd = nfd;
        },
        (e: Error) => {
          retaking = false;
          onError(e.message);
        },
      );
    },
  };
}
