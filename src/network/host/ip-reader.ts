// A standing `ip -json -details -force -batch -` that answers read-only `show` lines: what a
// network call reads costs one write and one reply (about a millisecond) instead of one new `ip`
// process (10-13 ms from Node on a small VM; Node forks itself to spawn). Only reads go here:
// every change still goes through one `ip -batch` process of its own (plan.ts).
//
// How a reply is framed: with -json every `show` line that succeeds prints exactly one line (one
// JSON array), and with -force every line that fails prints "Command failed -:N" on stderr (N = its
// line number in this process's stdin, counted from 1). Each request ends with END_MARK, a line
// that always fails: its "Command failed" says ip has written all the request's output, and the
// k lines must then account for exactly k answers. Anything else on stderr, a line number out of
// the request's range, a wrong count, output while no request is waiting, or the child ending
// makes the reply unusable: the reader is killed and the caller reads with one `ip` process of its
// own, exactly as without a reader.
//
// Two iproute2 (6.1) habits decide how it is used (link-state.ts): `link show` leaves the batch's
// address family at AF_PACKET, so an `addr show` after it prints no addresses: links and
// addresses get a reader each; and `link show master X` for a missing X ends the whole batch, so
// ports are asked only of masters a reply has just shown (a master removed in between ends the
// reader, and the caller reads again with its own process).
//
// Which namespace it reads is checked after every reply, not assumed: /proc/PID/ns/net of the
// child must be the namespace /run/netns/NAME is now (or brick's own for the host's namespace);
// a namespace deleted and made again under the same name gets a new reader. Requests are answered
// one at a time, each within the calling command's deadline and signal; a reader that is not asked
// for IDLE_MS ends.
import { statSync } from 'node:fs';
import { BrickError } from '../../shared/errors.js';
import { stopped, type Runner, type Session } from '../../shared/run.js';

/** A reader not asked for this long ends (the next read starts one). */
export const IDLE_MS = 10_000;

/** What each kind of reader may be sent: `show` lines, all or of one interface name (no quoting, no comments). */
const SHOW_LINE = { link: /^link show(?: (?:dev|master) [A-Za-z0-9_.-]{1,15})?$/, addr: /^addr show(?: dev [A-Za-z0-9_.-]{1,15})?$/ };
/**
 * Messages of a `show` line for a device that does not exist (followed by "Command failed"). A
 * missing name of the form if<N> is not 'Device "ifN" does not exist.': iproute2 reads it as
 * interface index N and the kernel answers "RTNETLINK answers: No such device" / "Cannot send link
 * get request: No such device" (whether or not a link has index N). ENODEV to a `show` is "no such
 * device" as well.
 */
export const IP_MISSING_DEVICE = /does not exist|Cannot find device|No such device\s*$/;
const MISSING = IP_MISSING_DEVICE;
const FAILED = /^Command failed -:(\d+)$/;
/**
 * Ends every request: a name longer than any interface's (15) exists nowhere, so it fails. Of the
 * reader's own kind: even a `link show` that fails leaves the family at AF_PACKET.
 */
const END_MARK = { link: 'link show dev brick-end-of-reply', addr: 'addr show dev brick-end-of-reply' };

export interface ReadBounds {
  timeoutMs: number;
  signal?: AbortSignal;
}

interface Pending {
  first: number;
  count: number;
  out: string[];
  failed: number;
  done: (r: string[] | undefined) => void;
}

export class IpReader {
  private session?: Session;
  /** Lines this session has been sent (ip numbers them from 1). */
  private sent = 0;
  private pending?: Pending;
  private queue: Promise<unknown> = Promise.resolve();
  private idle?: NodeJS.Timeout;
  /** Set when the child's namespace cannot be checked here: every read is the caller's own process. */
  private off = false;

  constructor(
    private readonly run: Runner,
    /** "" = the host's namespace. */
    readonly namespace: string,
    /** Links or addresses: never both in one child (see the top of this file). */
    readonly kind: 'link' | 'addr',
    private readonly idleMs = IDLE_MS,
  ) {}

  /**
   * The JSON lines printed for these `show` lines (one per line that found something), or
   * undefined when the reader cannot answer truthfully (the caller then reads with its own
   * process). Throws TIMEOUT when the deadline passes or the signal aborts first.
   */
  read(lines: readonly string[], bounds: ReadBounds): Promise<string[] | undefined> {
    if (this.off || !this.run.session || !lines.length || !lines.every((l) => SHOW_LINE[this.kind].test(l))) return Promise.resolve(undefined);
    // The deadline counts from now: time spent waiting behind another read is the caller's too.
    const until = performance.now() + bounds.timeoutMs;
    const state = { started: false };
    const turn = this.queue.then(() => this.ask(lines, bounds, until, state));
    this.queue = turn.catch(() => undefined);
    const signal = bounds.signal;
    if (!signal) return turn;
    // A read waiting behind another stops when its call stops, not when the one ahead ends (once
    // it runs, ask's own handler kills the child and says so).
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        if (!state.started) reject(this.stopped(bounds, false));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      void turn.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /** The child's pid while it runs. */
  get pid(): number | undefined {
    return this.session?.pid;
  }

  /** End the reader now (the next read starts a new one). */
  close(): void {
    clearTimeout(this.idle);
    this.session?.kill();
    this.drop();
  }

  private drop(): void {
    this.session = undefined;
    this.pending?.done(undefined);
    this.pending = undefined;
  }

  /** The running child, or a new one (asks are one at a time, so never two starting). */
  private async start(): Promise<Session | undefined> {
    if (this.session) return this.session;
    const args = [...(this.namespace ? ['-n', this.namespace] : []), '-json', '-details', '-force', '-batch', '-'];
    let s: Session;
    try {
      s = await this.run.session!('ip', args);
    } catch {
      return undefined; // no usable ip: the caller's own process reports why
    }
    this.sent = 0;
    s.on({
      out: (l) => this.onOut(s, l),
      err: (l) => this.onErr(s, l),
      exit: () => {
        if (this.session === s) this.drop();
      },
    });
    this.session = s;
    return s;
  }

  private async ask(lines: readonly string[], bounds: ReadBounds, until: number, state: { started: boolean }): Promise<string[] | undefined> {
    if (bounds.signal?.aborted) throw this.stopped(bounds, false);
    const timeoutMs = Math.ceil(until - performance.now());
    if (timeoutMs <= 0) {
      const shown = this.session?.command ?? 'ip -batch';
      throw new BrickError('TIMEOUT', `${shown}: not run: waited ${bounds.timeoutMs} ms behind other reads`, { command: shown, started: false });
    }
    state.started = true;
    clearTimeout(this.idle);
    const s = await this.start();
    if (!s) return undefined;
    if (bounds.signal?.aborted) throw this.stopped(bounds, false); // stopped while the child started
    const reply = new Promise<string[] | undefined>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => stop(this.stopped(bounds, true));
      const stop = (e: BrickError) => {
        clearTimeout(timer);
        bounds.signal?.removeEventListener('abort', onAbort);
        this.pending = undefined;
        this.close(); // what it was doing is unknown now: a new reader for the next read
        reject(e);
      };
      this.pending = {
        first: this.sent + 1,
        count: lines.length,
        out: [],
        failed: 0,
        done: (r) => {
          clearTimeout(timer);
          bounds.signal?.removeEventListener('abort', onAbort);
          resolve(r);
        },
      };
      timer = setTimeout(() => stop(new BrickError('TIMEOUT', `${s.command}: no answer within ${bounds.timeoutMs} ms; killed`, { command: s.command })), timeoutMs);
      bounds.signal?.addEventListener('abort', onAbort, { once: true });
    });
    const firstReply = this.sent === 0;
    this.sent += lines.length + 1;
    if (!s.write(lines.join('\n') + '\n' + END_MARK[this.kind] + '\n')) this.close();
    const r = await reply;
    if (r && !this.readsNamespace(s)) {
      // A child started just now for this name is in that namespace unless the check itself means
      // nothing here (kernels before 3.8 give each /proc/PID/ns/net an inode of its own): off.
      if (firstReply) this.off = true;
      this.close();
      return undefined;
    }
    if (this.session === s) this.idle = setTimeout(() => this.close(), this.idleMs).unref();
    return r;
  }

  private onOut(s: Session, line: string): void {
    if (s !== this.session) return; // a reader already let go
    const p = this.pending;
    if (!p) return this.close();
    p.out.push(line);
  }

  private onErr(s: Session, line: string): void {
    if (s !== this.session) return;
    const p = this.pending;
    if (!p) return this.close();
    if (MISSING.test(line)) return; // its "Command failed" follows
    const n = Number(FAILED.exec(line)?.[1]);
    if (n >= p.first && n < p.first + p.count) {
      p.failed++;
      return;
    }
    // Not a missing device, or not a line of this request: what else it printed is unknown.
    if (n !== p.first + p.count) return this.close();
    // The end mark: ip wrote everything before it, and what it wrote to stdout is read in the same
    // turn of the event loop at the latest (written before, so readable when this was).
    setImmediate(() => {
      if (this.pending !== p) return;
      this.pending = undefined;
      if (p.out.length + p.failed === p.count) return p.done(p.out);
      this.close(); // a line answered twice, or not at all
      p.done(undefined);
    });
  }

  /**
   * The child reads the namespace this reader is for, as that name stands now. A child whose
   * namespace brick may not look at turns the reader off for good (every read its own process
   * again, as without a reader), rather than a new child for every read that is then not used;
   * so does a mismatch on a child's first reply (ask).
   */
  private readsNamespace(s: Session): boolean {
    let child;
    try {
      child = statSync(`/proc/${s.pid}/ns/net`);
    } catch {
      this.off = true;
      return false;
    }
    try {
      const want = statSync(this.namespace ? `/run/netns/${this.namespace}` : '/proc/self/ns/net');
      return child.ino === want.ino && child.dev === want.dev;
    } catch {
      return false; // the name is gone: deleted since (a new one is a new reader)
    }
  }

  /** The fault for a read its call stopped, worded as run() words it for a command. */
  private stopped(bounds: ReadBounds, started: boolean): BrickError {
    return stopped(this.session?.command ?? 'ip -batch', bounds.signal!, started);
  }

}

/** One reader per runner, namespace and kind, for the life of the process. */
const readers = new WeakMap<Runner, Map<string, IpReader>>();

/** The reader for links or for addresses in a namespace (two: see the top of this file). */
export function ipReader(run: Runner, namespace: string, kind: 'link' | 'addr'): IpReader {
  let m = readers.get(run);
  if (!m) readers.set(run, (m = new Map()));
  const key = `${kind}\0${namespace}`;
  let r = m.get(key);
  if (!r) m.set(key, (r = new IpReader(run, namespace, kind)));
  return r;
}
