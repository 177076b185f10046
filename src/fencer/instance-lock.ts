// One fencer per config: an exclusive flock(2) on `<state_dir>/fencer.lock`, held for the fencer's
// life. Node cannot flock, so util-linux flock(1) takes it and runs `cat` holding it, reading the
// fencer's pipe: when the fencer exits or dies (SIGKILL included) the pipe closes, cat exits and the
// kernel drops the lock. A second fencer on the same state_dir refuses to start with the holder's
// pid (two fencers would share the heartbeat temp file and false-fence on healthy storage).
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
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
  // flock and cat from the host-tool registry (the host's when present, else brick's own copy).
  const { flock, cat } = await requireTools(['flock', 'cat'], "the fencer's instance lock needs");
  const child = spawn(flock, ['--exclusive', '--wait', String(LOCK_WAIT_S), file, cat], {
    stdio: ['pipe', 'pipe', 'pipe'],
    cwd: '/',
    env: { PATH: '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' },
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b));
  child.stderr!.on('data', (b: Buffer) => (err += b));
  child.stdin!.on('error', () => {});
  // cat echoes this once flock holds the lock and has started it.
  child.stdin!.write('locked\n');
  const got = await new Promise<'locked' | { code: number | null; error?: string }>((resolve) => {
    const timer = setTimeout(() => resolve({ code: null, error: 'no answer' }), (LOCK_WAIT_S + 10) * 1000);
    child.stdout!.on('data', () => {
      if (out.includes('locked\n')) {
        clearTimeout(timer);
        resolve('locked');
      }
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, error: e.message });
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code });
    });
  });
  if (got !== 'locked') {
    child.kill('SIGKILL');
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
    writeFileSync(file, `${process.pid}\n`);
  } catch {
    /* the lock holds without it */
  }
  child.stdout!.removeAllListeners('data');
  child.stdout!.resume();
  child.unref();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  (child.stdout as unknown as { unref?: () => void }).unref?.();
  (child.stderr as unknown as { unref?: () => void }).unref?.();
  return {
    release() {
      child.stdin!.end();
      child.kill('SIGTERM');
    },
  };
}
