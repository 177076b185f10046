// The one place brick runs host commands: argument arrays, never a shell, always a deadline.
// Everything that changes the host goes through a Runner, so tests can hand a recording runner to
// the code that decides and keep the real one for the edge.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { BrickError } from './errors.js';
import { CHILD_PATH, missingFlagUse, toolPath } from './host-tools.js';

export interface RunOptions {
  /**
   * Hard deadline in milliseconds; the child and its process group (it runs in its own) are killed
   * (SIGKILL) when it passes. A child that exited in time while something it started still holds its
   * output open: that is killed at the deadline, and the answer is the child's own. Required.
   */
  timeoutMs: number;
  /** Written to the child's stdin, then stdin is closed. */
  input?: string | Buffer;
  /** Run inside this network namespace (`ip netns exec NS ...`). Empty: the host's namespace. */
  netns?: string;
  /** Do not throw on a non-zero exit; the caller reads `code`. Timeouts and spawn errors still throw. */
  allowFailure?: boolean;
  maxBuffer?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** The call's signal: when it aborts, the child is killed (SIGKILL) and run throws TIMEOUT; an aborted signal runs nothing. */
  signal?: AbortSignal;
  /**
   * The child makes itself a process group leader (timeout(1) does): when it exits, SIGKILL what is
   * left in its group, so a background child it left cannot outlive it or hold its output open.
   */
  killGroupOnExit?: boolean;
  /**
   * At the deadline (or an abort), answer KILL_GRACE_MS after the SIGKILL even when the child has not
   * ended: one in an uninterruptible wait (a FUSE request its daemon holds, a disk that does not
   * answer) ends only when the kernel lets it, perhaps never. Off by default: without it run()
   * settles once the child has ended, which callers rely on that keep one child per key or one write
   * per file (the fencer's single-flight.ts joins a stuck child instead of starting a second;
   * durable-write.ts never starts the next write of a file while a dd of the last may still write its
   * temp file), and which answer by a deadline of their own. For callers that hold nothing of the
   * kind and must answer whatever the kernel does (brick doctor's looks).
   */
  giveUpOnStuck?: boolean;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Runner {
  (cmd: string, args: readonly string[], opts: RunOptions): Promise<RunResult>;
  /**
   * A long-lived child for a line protocol (the real runner only: a runner without it makes its
   * callers run one command per request instead).
   */
  session?: (cmd: string, args: readonly string[]) => Promise<Session>;
}

/**
 * A child that stays: spawned like run() spawns (absolute path, no shell, the default child
 * environment, cwd /), stdin/stdout/stderr pipes, lines delivered as they come. It never keeps
 * brick's event loop alive, and it sees EOF on stdin (and ends) when brick ends, however brick ends.
 */
export interface Session {
  readonly pid: number;
  readonly command: string;
  /** Write to its stdin (false: it has gone). */
  write(text: string): boolean;
  /** Every complete line of stdout (out) and stderr (err), without the newline; exit once, after both. */
  on(handlers: { out: (line: string) => void; err: (line: string) => void; exit: (why: string) => void }): void;
  /** SIGKILL; exit follows. */
  kill(): void;
}

const STDERR_TAIL = 2000;

function tail(s: string): string {
  const t = s.trim();
  return t.length > STDERR_TAIL ? '…' + t.slice(-STDERR_TAIL) : t;
}

/** Describe a command for messages: the argv, quoted only where needed. Never includes stdin. */
export function describeCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

/** Variables no child inherits from brick's own start: brick's private runtime stays brick's. */
const LOADER_VARS = /^(LD_[A-Z_]+|NODE_OPTIONS|NODE_PATH|UV_THREADPOOL_SIZE|UV_USE_IO_URING)$/;

/** The environment a child gets: the given one (or PATH/LANG/LC_ALL) minus the loader's variables. */
export function childEnv(env: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  if (!env) return { PATH: CHILD_PATH, LANG: 'C', LC_ALL: 'C' };
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && !LOADER_VARS.test(k)) out[k] = v;
  return out;
}

/**
 * A bare command name → the host-tool registry's absolute path, or UNSUPPORTED naming the tool
 * (missing, or too old for a flag in `args`).
 */
async function resolveCommand(cmd: string, args: readonly string[] = []): Promise<string> {
  const r = await toolPath(cmd);
  if ('missing' in r) throw new BrickError('UNSUPPORTED', r.missing, { tool: cmd });
  const old = r.tool && missingFlagUse(r.tool, args);
  if (old) throw new BrickError('UNSUPPORTED', old, { tool: cmd });
  return r.path;
}

/** The environment of a child given no `env` (one object, made once). */
const DEFAULT_ENV: NodeJS.ProcessEnv = Object.freeze(childEnv(undefined)) as NodeJS.ProcessEnv;

export const run: Runner = async (cmd, args, opts) => {
  if (!(opts.timeoutMs > 0)) throw new Error(`run(${cmd}): a positive timeoutMs is required`);
  if (opts.signal?.aborted) throw stopped(describeCommand(cmd, args), opts.signal, false);
  let file = await resolveCommand(cmd, args);
  let argv: readonly string[] = args;
  if (opts.netns) {
    argv = ['netns', 'exec', opts.netns, file, ...argv];
    file = await resolveCommand('ip', argv);
  }
  if (opts.signal?.aborted) throw stopped(describeCommand(file, argv), opts.signal, false);
  return spawnOnce(cmd, file, argv, opts);
};

/**
 * With giveUpOnStuck: how long run() waits, after SIGKILL at the deadline (or on an abort), for the
 * child to end before it answers anyway (a child stuck in the kernel may never end).
 */
export const KILL_GRACE_MS = 1000;

/** ", in <wchan>" for a pid (what it waits on in the kernel), or "" when it cannot be read. */
function wchanOf(pid: number | undefined): string {
  try {
    const w = pid ? readFileSync(`/proc/${pid}/wchan`, 'utf8').trim() : '';
    return w && w !== '0' ? `, in ${w}` : '';
  } catch {
    return '';
  }
}

/** A session's line longer than this (no newline yet) ends it: a child gone wrong, not an answer. */
const SESSION_MAX_LINE = 64 * 1024 * 1024;

/** Start a Session: the command resolved as run() resolves it. */
async function startSession(cmd: string, args: readonly string[]): Promise<Session> {
  const file = await resolveCommand(cmd, args);
  const command = describeCommand(file, args);
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: DEFAULT_ENV, cwd: '/', windowsHide: true });
  child.unref();
  for (const s of [child.stdin, child.stdout, child.stderr] as unknown as { unref?: () => void }[]) s.unref?.();
  child.stdin!.on('error', () => {}); // it may go at any time; exit says so
  let handlers: Parameters<Session['on']>[0] | undefined;
  const lines = (stream: NodeJS.ReadableStream, deliver: (line: string) => void) => {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      if (!chunk.includes('\n')) {
        rest += chunk;
        if (rest.length > SESSION_MAX_LINE) kill();
        return;
      }
      const parts = (rest + chunk).split('\n');
      rest = parts.pop()!;
      for (const l of parts) deliver(l);
    });
  };
  const kill = () => {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  };
  lines(child.stdout!, (l) => handlers?.out(l));
  lines(child.stderr!, (l) => handlers?.err(l));
  // 'close' comes after both outputs have ended, so every line is delivered before exit.
  let exitWhy: string | undefined;
  const ended = (why: string) => {
    if (exitWhy !== undefined) return;
    exitWhy = why;
    handlers?.exit(why);
  };
  child.on('error', (e) => ended(`${command}: ${e.message}`));
  child.on('close', (code, signal) => ended(`${command}: ended (${signal ? `killed by ${signal}` : `exit ${code}`})`));
  return {
    pid: child.pid ?? -1,
    command,
    write: (text) => exitWhy === undefined && child.stdin!.writable && (child.stdin!.write(text), true),
    on(h) {
      handlers = h;
    },
    kill,
  };
}
run.session = startSession;

/**
 * One child: spawn (no shell), stdin a pipe only when there is input (else /dev/null: one pipe and
 * its syscalls fewer), stdout and stderr collected up to maxBuffer each, killed (SIGKILL) at the
 * deadline or when the call's signal aborts.
 */
function spawnOnce(cmd: string, file: string, argv: readonly string[], opts: RunOptions): Promise<RunResult> {
  const shown = () => describeCommand(file, argv);
  const maxBuffer = opts.maxBuffer ?? 16 * 1024 * 1024;
  return new Promise<RunResult>((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(file, argv, {
        stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
        env: opts.env ? childEnv(opts.env) : DEFAULT_ENV,
        cwd: opts.cwd ?? '/',
        windowsHide: true,
        // Its own process group (and session): a deadline or an abort kills what it started too.
        detached: true,
      });
    } catch (e) {
      reject(new BrickError('COMMAND_FAILED', `${shown()}: ${(e as Error).message}`, { command: shown() }));
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    /** Why brick killed it, if it did (the first reason wins). */
    let killedFor: 'timeout' | 'abort' | 'maxBuffer' | undefined;
    let settled = false;
    let exited = false;
    let exitCode: number | null = null;
    let exitSignal: NodeJS.Signals | null = null;
    let timer: NodeJS.Timeout | undefined;
    let grace: NodeJS.Timeout | undefined;
    /**
     * SIGKILL the child's process group: the child and whatever it started that stayed in it. After
     * the child has been reaped, only while no process has its pid (while any member of the group
     * lives the kernel does not reuse it; a pid in use means the group is gone and the id is another's).
     */
    const killGroup = () => {
      const pid = child.pid;
      if (!pid) return;
      if (exited) {
        try {
          process.kill(pid, 0);
          return; // the pid is someone else's now
        } catch {
          /* ESRCH: no process has it; its group may still have members */
        }
      }
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        try {
          child.kill('SIGKILL');
        } catch {
          /* already gone */
        }
      }
    };
    const done = () => {
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    /**
     * Brick stopped it: the fault now, without waiting for a grandchild that may hold its output open.
     * `stuck`: the child itself has not ended KILL_GRACE_MS after its SIGKILL (see kill).
     */
    const stoppedNow = (stuck = false) => {
      if (settled) return;
      done();
      child.stdout!.destroy();
      child.stderr!.destroy();
      const still = stuck ? `; it has not ended ${KILL_GRACE_MS} ms later (pid ${child.pid}, stuck in the kernel${wchanOf(child.pid)}): it runs none of its own code any more, and ends when the kernel lets it` : '';
      if (killedFor === 'abort') {
        const e = stopped(shown(), opts.signal!, true);
        return reject(still ? new BrickError(e.fault, e.message + still, e.detail) : e);
      }
      if (killedFor === 'timeout') return reject(new BrickError('TIMEOUT', `${shown()}: no answer within ${opts.timeoutMs} ms; killed${still}`, { command: shown(), ...(stuck ? { stuck: true } : {}) }));
      reject(new BrickError('COMMAND_FAILED', `${shown()}: printed more than ${maxBuffer} bytes; killed${still}`, { command: shown() }));
    };
    const kill = (why: NonNullable<typeof killedFor>) => {
      if (killedFor || settled) return;
      killGroup();
      if (exited && why === 'timeout') {
        // It ended in time, but something it started still holds its output: that is killed above;
        // the answer is the child's own, with what it printed.
        child.stdout!.destroy();
        child.stderr!.destroy();
        return finish(exitCode, exitSignal);
      }
      killedFor = why;
      if (exited) return stoppedNow();
      // Its exit normally follows the SIGKILL at once, and the fault waits for it (what it did is
      // over before the caller goes on, an undo for instance). A child in an uninterruptible wait
      // ends only when the kernel lets it, maybe never: with giveUpOnStuck the fault comes after a
      // short grace all the same.
      if (opts.giveUpOnStuck) grace = setTimeout(() => stoppedNow(true), KILL_GRACE_MS);
    };
    function onAbort(): void {
      kill('abort');
    }
    // First: a spawn that fails (EMFILE/ENFILE leave the child without stdio) reports it here.
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (settled) return;
      // A spawn failure (the child never ran); a failed kill() of a child already gone is not one.
      if (e.code === 'ENOENT' || (e as { syscall?: string }).syscall?.startsWith('spawn')) {
        done();
        if (e.code === 'ENOENT')
          // Resolved a moment ago and gone now (a package removed under us).
          return reject(new BrickError('UNSUPPORTED', `${file}: no such program (was it removed?)`, { command: shown(), tool: cmd }));
        return reject(new BrickError('COMMAND_FAILED', `${shown()}: ${e.message}`, { command: shown() }));
      }
    });
    if (!child.stdout || !child.stderr) return; // the spawn failed; 'error' follows
    timer = setTimeout(() => kill('timeout'), opts.timeoutMs);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('exit', (code: number | null, signal: NodeJS.Signals | null) => {
      exited = true;
      exitCode = code;
      exitSignal = signal;
      // What the child left in its group (with killGroup's guard against a reused pid).
      if (opts.killGroupOnExit) killGroup();
      if (killedFor) stoppedNow();
    });
    child.stdout!.on('data', (b: Buffer) => {
      outLen += b.length;
      if (outLen > maxBuffer) return kill('maxBuffer');
      out.push(b);
    });
    child.stderr!.on('data', (b: Buffer) => {
      errLen += b.length;
      if (errLen > maxBuffer) return kill('maxBuffer');
      err.push(b);
    });
    child.on('close', (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      if (killedFor) return stoppedNow();
      finish(code, signal);
    });
    function finish(code: number | null, signal: NodeJS.Signals | null): void {
      done();
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (signal) return reject(new BrickError('COMMAND_FAILED', `${shown()}: killed by ${signal}`, { command: shown(), stderr: tail(stderr) }));
      if (code === 0) return resolve({ code: 0, stdout, stderr });
      if (opts.allowFailure) return resolve({ code: code ?? -1, stdout, stderr });
      reject(
        new BrickError('COMMAND_FAILED', `${shown()}: exit ${code}: ${tail(stderr) || tail(stdout) || 'no output'}`, {
          command: shown(),
          exitCode: code,
          stderr: tail(stderr),
        }),
      );
    }
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {}); // the child may exit before reading all of it
      child.stdin!.end(opts.input);
    }
  });
}

/** The error for a command the call's signal stopped (started: it ran and was killed; else it never ran). */
export function stopped(shown: string, signal: AbortSignal, started: boolean): BrickError {
  const why = signal.reason instanceof Error ? signal.reason.message : 'the call was cancelled';
  return new BrickError('TIMEOUT', `${shown}: ${started ? 'killed' : 'not run'}: ${why}`, { command: shown, started });
}

/** A runner that records every call and answers from a script; for tests of code that decides. */
export interface RecordedCall {
  cmd: string;
  args: string[];
  opts: RunOptions;
}
export function recordingRunner(
  answer: (call: RecordedCall) => Partial<RunResult> | Promise<Partial<RunResult>> = () => ({}),
): Runner & { calls: RecordedCall[] } {
  const calls: RecordedCall[] = [];
  const r = (async (cmd: string, args: readonly string[], opts: RunOptions) => {
    const call = { cmd, args: [...args], opts };
    if (opts.signal?.aborted) throw stopped(describeCommand(cmd, args), opts.signal, false);
    calls.push(call);
    const a = await answer(call);
    const res = { code: 0, stdout: '', stderr: '', ...a };
    if (res.code !== 0 && !opts.allowFailure) {
      throw new BrickError('COMMAND_FAILED', `${describeCommand(cmd, args)}: exit ${res.code}: ${res.stderr}`, { exitCode: res.code });
    }
    return res;
  }) as Runner & { calls: RecordedCall[] };
  r.calls = calls;
  return r;
}
