// The one place brick runs host commands: argument arrays, never a shell, always a deadline.
// Everything that changes the host goes through a Runner, so tests can hand a recording runner to
// the code that decides and keep the real one for the edge.
import { execFile } from 'node:child_process';
import { BrickError } from './errors.js';
import { CHILD_PATH, missingFlagUse, toolPath } from './host-tools.js';

export interface RunOptions {
  /** Hard deadline in milliseconds; the child is killed (SIGKILL) when it passes. Required. */
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
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type Runner = (cmd: string, args: readonly string[], opts: RunOptions) => Promise<RunResult>;

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

export const run: Runner = async (cmd, args, opts) => {
  if (!(opts.timeoutMs > 0)) throw new Error(`run(${cmd}): a positive timeoutMs is required`);
  if (opts.signal?.aborted) throw stopped(describeCommand(cmd, args), opts.signal, false);
  let file = await resolveCommand(cmd, args);
  let argv = [...args];
  if (opts.netns) {
    argv = ['netns', 'exec', opts.netns, file, ...argv];
    file = await resolveCommand('ip', argv);
  }
  return new Promise<RunResult>((resolve, reject) => {
    const child = execFile(
      file,
      argv,
      {
        timeout: opts.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: opts.maxBuffer ?? 16 * 1024 * 1024,
        env: childEnv(opts.env),
        cwd: opts.cwd ?? '/',
        encoding: 'utf8',
        windowsHide: true,
        ...(opts.signal ? { signal: opts.signal } : {}),
      },
      (err, stdout, stderr) => {
        const shown = describeCommand(file, argv);
        if (!err) return resolve({ code: 0, stdout, stderr });
        const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean; signal?: string };
        if (e.code === 'ENOENT') {
          // Resolved a moment ago and gone now (a package removed under us).
          return reject(new BrickError('UNSUPPORTED', `${file}: no such program (was it removed?)`, { command: shown, tool: cmd }));
        }
        if ((e as Error).name === 'AbortError' && opts.signal?.aborted) return reject(stopped(shown, opts.signal, true));
        if (e.killed || e.signal) {
          if (e.killed && e.signal === 'SIGKILL') {
            return reject(new BrickError('TIMEOUT', `${shown}: no answer within ${opts.timeoutMs} ms; killed`, { command: shown }));
          }
          return reject(new BrickError('COMMAND_FAILED', `${shown}: killed by ${e.signal}`, { command: shown, stderr: tail(stderr) }));
        }
        if (typeof e.code === 'number') {
          if (opts.allowFailure) return resolve({ code: e.code, stdout, stderr });
          return reject(
            new BrickError('COMMAND_FAILED', `${shown}: exit ${e.code}: ${tail(stderr) || tail(stdout) || 'no output'}`, {
              command: shown,
              exitCode: e.code,
              stderr: tail(stderr),
            }),
          );
        }
        reject(new BrickError('COMMAND_FAILED', `${shown}: ${e.message}`, { command: shown }));
      },
    );
    if (opts.input !== undefined) {
      child.stdin?.on('error', () => {}); // the child may exit before reading all of it
      child.stdin?.end(opts.input);
    } else {
      child.stdin?.end();
    }
  });
};

/** The error for a command the call's signal stopped (started: it ran and was killed; else it never ran). */
function stopped(shown: string, signal: AbortSignal, started: boolean): BrickError {
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
