// Logs are JSON lines on stdout for journald. Each line starts with the sd-daemon priority prefix
// (<6> info, <4> warning, <3> error, ...) so `journalctl -p warning` filters work; journald stamps
// the time, so we do not. `pretty` is for a person at a terminal and needs no extra package (the
// single binary cannot load pino transports).
import { fstatSync } from 'node:fs';
import { Socket } from 'node:net';
import pino, { type Logger } from 'pino';

export type { Logger };
export type LogFormat = 'json' | 'pretty';

const PRIORITY: Record<number, number> = { 10: 7, 20: 7, 30: 6, 40: 4, 50: 3, 60: 2 };
const LABEL: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

function levelOf(line: string): number {
  // pino writes `{"level":NN,` first: read the two digits there (a regex per line costs more).
  if (line.startsWith('{"level":')) {
    const a = line.charCodeAt(9) - 48;
    const b = line.charCodeAt(10) - 48;
    if (a >= 0 && a <= 9 && b >= 0 && b <= 9 && line.charCodeAt(11) === 44) return a * 10 + b;
  }
  const m = /"level":(\d+)/.exec(line);
  return m ? Number(m[1]) : 30;
}

export function journaldLine(line: string): string {
  return `<${PRIORITY[levelOf(line)] ?? 6}>${line}`;
}

export function prettyLine(line: string): string {
  try {
    const o = JSON.parse(line) as Record<string, unknown>;
    const { level, msg, time, pid, hostname, svc, ...rest } = o;
    void pid; void hostname; void svc;
    const t = new Date(typeof time === 'number' ? time : Date.now()).toISOString().slice(11, 23);
    const extras = Object.entries(rest)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    return `${t} ${(LABEL[level as number] ?? 'INFO').padEnd(5)} ${msg ?? ''}${extras ? '  ' + extras : ''}\n`;
  } catch {
    return line;
  }
}

export interface LogOptions {
  format?: LogFormat;
  level?: string;
  /** The service name in every line: "agent" or "fencer". */
  svc: string;
  /** Where lines go; stdout by default. Tests pass a collector. */
  destination?: pino.DestinationStream;
}

/**
 * Loggers whose plain `info` line can be written without pino: JSON format, no timestamp. The value
 * is the destination and the start every such line has (`<6>{"level":30,"svc":"agent"`).
 */
const DIRECT = new WeakMap<Logger, { dest: pino.DestinationStream; head: string }>();

/** How a call that answered is logged: `{ method, ms, outcome: "ok" }` with the message "call". */
export type CallLine = (method: string, ms: number) => void;

/**
 * The line of a call that answered, written as one string: the same bytes pino writes for
 * `log.info({ method, ms, outcome: 'ok' }, 'call')` (test/unit/log-call-line.test.ts compares them),
 * without pino's per-line object walk and redaction pass (≈1.5 µs of a trivial call's ≈6). None of
 * the three keys is a redacted path. Undefined for a logger that is not createLogger's own in JSON
 * format (a child, a pretty one, a test's): the caller logs through pino then. Honours the level
 * the logger has when the line is written.
 */
export function callLine(log: Logger): CallLine | undefined {
  const d = DIRECT.get(log);
  if (!d) return undefined;
  const { dest, head } = d;
  return (method, ms) => {
    if (log.levelVal > 30) return;
    dest.write(`${head},"method":${JSON.stringify(method)},"ms":${ms},"outcome":"ok","msg":"call"}\n`);
  };
}

export function createLogger(opts: LogOptions): Logger {
  const pretty = opts.format === 'pretty';
  const dest = opts.destination ?? pino.destination({ fd: 1, sync: true });
  const log = pino(
    {
      level: opts.level ?? 'info', // --log-level only: no environment variable changes how brick runs
      base: { svc: opts.svc },
      timestamp: pretty ? pino.stdTimeFunctions.epochTime : false,
      // Named paths, not wildcards: a wildcard makes every line walk every key of every object in it.
      // Nothing logs params or request objects; these catch a password, file contents or the
      // Authorization header put in a line by mistake, at the top or in headers.
      redact: { paths: ['password', 'content', 'authorization', 'headers.authorization', 'req.headers.authorization'], censor: '[redacted]' },
      hooks: { streamWrite: pretty ? prettyLine : journaldLine },
    },
    dest,
  );
  if (!pretty) DIRECT.set(log, { dest, head: journaldLine(`{"level":30,"svc":${JSON.stringify(opts.svc)}`) });
  return log;
}

/**
 * stdout for the agent: lines are queued and written together, one write for many calls' lines
 * instead of one each. Measured at one connection (dist/brick, stdout a pipe being read, wrk): a
 * write per call cost 216 us of CPU per call against 157 with stdout on /dev/null, more than
 * everything brick itself does per call. So:
 *   - an info or debug line waits at most BATCH_MS (20 ms), or until BATCH_BYTES are queued;
 *   - a warning or worse is written at the end of the turn that logged it, with everything queued
 *     before it (order is kept);
 *   - the queue is written when the process exits (an uncaught error included), so only a SIGKILL
 *     can lose lines, at most the last BATCH_MS of them (or a reader that has stopped reading: on a
 *     pipe or socket nothing waits for it; beyond maxQueuedBytes lines are dropped and counted);
 *   - logger.flush() writes the queue at once (serve does it after the line saying where it listens:
 *     whoever waits for that line, a person or a script, gets it without the batch delay).
 * journald stamps a line when it receives it: an info line's time can be up to BATCH_MS late.
 */
export const BATCH_MS = 20;
export const BATCH_BYTES = 64 * 1024;

/**
 * A log destination that a stop can wait for. At the exit, Node writes no more than the pipe takes at
 * once: lines a slow reader had not yet taken were lost (the agent's "stopped" among them).
 */
export interface LogDestination extends pino.DestinationStream {
  /** Writes what is queued, then waits at most `ms` for the reader to take it all. */
  writeOut(ms: number): Promise<void>;
}

export function batchedStdout(fd = 1, maxQueuedBytes = 4 << 20): LogDestination & { flush(cb?: (err?: Error) => void): void } {
  // A batch goes out as the fencer's lines do: on a pipe or socket (journald) through the event
  // loop, never waiting for the reader; a synchronous write there stopped every call, /healthz and
  // the handling of SIGTERM as soon as journald stopped reading (64 KiB: about 500 calls).
  const out = readerOrFile(fd, maxQueuedBytes);
  let queued: string[] = [];
  let bytes = 0;
  let timer: NodeJS.Timeout | null = null;
  let immediate = false;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    immediate = false;
    if (!queued.length) return;
    const text = queued.length === 1 ? queued[0] : queued.join('');
    queued = [];
    bytes = 0;
    out.write(text);
  };
  process.once('exit', flush);
  return {
    // pino's logger.flush() lands here: what is queued goes out now (serve flushes its "listening" line).
    flush(cb?: (err?: Error) => void) {
      flush();
      cb?.();
    },
    writeOut(ms: number) {
      flush();
      return out.writeOut(ms);
    },
    write(line: string) {
      queued.push(line);
      bytes += line.length;
      if (immediate) return;
      // The journald prefix is already on the line: <0>..<4> is a warning or worse.
      const urgent = line.charCodeAt(0) === 60 && line.charCodeAt(1) <= 52 && line.charCodeAt(2) === 62;
      if (urgent || bytes >= BATCH_BYTES) {
        immediate = true;
        setImmediate(flush);
      } else if (!timer) {
        timer = setTimeout(flush, BATCH_MS);
        timer.unref();
      }
    },
  };
}

/**
 * stdout for a process that must never wait on its log reader (the fencer: a stuck journald must not
 * stop it petting the watchdog). On a pipe or socket, lines are written through the event loop with
 * a non-blocking fd, never the libuv threadpool; if the reader stops, up to `maxQueuedBytes` wait in
 * memory and further lines are dropped and counted (one line says how many, once writing resumes).
 * A file or terminal does not wait on a reader: plain synchronous writes there.
 */
export function nonBlockingStdout(maxQueuedBytes = 1 << 20): LogDestination {
  return readerOrFile(1, maxQueuedBytes);
}

function lineCount(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return Math.max(1, n);
}

/** nonBlockingStdout on any fd. */
function readerOrFile(fd: number, maxQueuedBytes: number): LogDestination {
  let kind: 'stream' | 'other' = 'other';
  try {
    const st = fstatSync(fd);
    if (st.isFIFO() || st.isSocket()) kind = 'stream';
  } catch {
    /* no stdout: fall through */
  }
  if (kind === 'other') {
    // Synchronous: every line is written when it is logged; nothing waits at a stop.
    const file = pino.destination({ fd, sync: true });
    return { write: (line: string) => file.write(line), writeOut: async () => {} };
  }
  const out = new Socket({ fd, readable: false, writable: true });
  out.on('error', () => {}); // a reader that went away must not take the process with it
  let dropped = 0;
  const sayDropped = () => {
    out.write(journaldLine(JSON.stringify({ level: 40, msg: `${dropped} log lines dropped: stdout was not being read` })) + '\n');
    dropped = 0;
  };
  return {
    write(line: string) {
      if (out.writableLength > maxQueuedBytes) {
        dropped += lineCount(line); // one write may be a batch of lines (batchedStdout)
        return;
      }
      if (dropped) sayDropped();
      out.write(line);
    },
    writeOut(ms: number) {
      if (dropped && !out.destroyed && out.writableLength <= maxQueuedBytes) sayDropped();
      // 'drain' comes only after a write that filled the socket's buffer: look at what is left instead.
      // The clock is read only when there is something to wait for: `performance` loads perf_hooks,
      // which the fencer otherwise never loads (test/host/bundle-lazy.test.ts).
      const nothingLeft = () => out.writableLength === 0 || out.destroyed;
      if (nothingLeft()) return Promise.resolve();
      const deadline = performance.now() + ms;
      return new Promise<void>((resolve) => {
        const look = setInterval(() => {
          if (!nothingLeft() && performance.now() < deadline) return;
          clearInterval(look);
          resolve();
        }, 10);
      });
    },
  };
}
