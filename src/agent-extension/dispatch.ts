// From a request body to a reply body: parse, find the method, check and decode the arguments
// against its parameter schemas (rpc/params.ts), run it under a deadline, write the reply. This is the one place errors become faults:
// a BrickError keeps its code and message; anything else is INTERNAL with a generic message and
// the details go to the log only. Every call is logged once: method, duration, outcome.
import { performance } from 'node:perf_hooks';
import type { Config } from '../config/schema.js';
import { callLine, type CallLine, type Logger } from '../shared/log.js';
import { run as realRun, type Runner } from '../shared/run.js';
import { KeyedLock } from '../shared/keyed-lock.js';
import { BrickError } from '../shared/errors.js';
import type { CallContext, MethodDef } from '../rpc/catalogue.js';
import { decodeArgs } from '../rpc/params.js';
import { faultFor, VendorFault, type Fault } from './faults.js';
import type { XmlRpcValue } from '../rpc/values.js';
import { type CodecError, InPlaceBody, parseMethodCall, serializeFault, serializeMethodCall, serializeResponse, parseMethodResponse, XmlRpcFault } from './codec.js';
import type { VendorAgent } from './passthrough.js';
import type { CallMetrics } from './metrics.js';
import { systemMethods } from './system-methods.js';
import { requestDeadlines, type Deadline } from './deadlines.js';

export interface DispatcherOptions {
  config: Config;
  log: Logger;
  /** The feature methods; system.* are added here. */
  methods: MethodDef[];
  run?: Runner;
  locks?: KeyedLock;
  vendor?: VendorAgent;
  metrics?: CallMetrics;
}

export interface RequestInfo {
  /** The caller's Authorization header, forwarded to the vendor agent when it has no credentials of its own. */
  authorization?: string;
  /** Aborted when the client goes away. */
  signal?: AbortSignal;
  /** Set by a call that summarises itself in its log line (system.multicall: counts and outcomes). */
  summary?: Record<string, unknown>;
  /**
   * The deadline (performance.now() time) of the call this one is made in (system.multicall): the
   * call's ctx.deadline is no later, so what it sizes by ctx.remainingMs() (an ssh or virsh
   * command's deadline) ends within the multicall's.
   */
  within?: number;
}

/** A request body as the server read it: the bytes and where its long text runs lie (body-scan.ts). */
export interface ReadBody {
  buf: Buffer;
  runs: readonly number[];
  /** A call that carries file contents: its long strings may stay views of buf (codec InPlaceBody). */
  textViews?: boolean;
}

const REQUEST = Symbol('request');
/** The method name a call is logged and counted under when its body could not be read as one. */
const UNPARSED = '(unparsed)';
/** After a call's deadline, how long it has to stop and say what it changed. */
const STOP_GRACE_MS = 5000;
const DEADLINE = Symbol('deadline');
/** The request a call came in (for system.multicall, which makes calls of its own). */
function requestOf(ctx: CallContext): RequestInfo {
  return (ctx as CallContext & { [REQUEST]?: RequestInfo })[REQUEST] ?? {};
}

/**
 * A call's context. A class, not an object literal with a getter and a symbol key: V8 builds an
 * instance with a fast shape, where the literal took a slow path on every call (about 10 µs).
 */
class Context implements CallContext {
  [REQUEST]: RequestInfo;
  private callLog: Logger | undefined;
  private ac: AbortController | undefined;
  /** Why the call was stopped, when that happened before anything asked for its signal. */
  private stopped: Error | undefined;
  /** The client's signal this call listens to (once its own signal exists, until the call ends). */
  private listening: AbortSignal | undefined;
  private ended = false;
  constructor(
    req: RequestInfo,
    readonly config: Config,
    private readonly serverLog: Logger,
    private readonly method: string,
    readonly run: Runner,
    readonly locks: KeyedLock,
    readonly deadline: number,
  ) {
    this[REQUEST] = req;
  }
  get log(): Logger {
    return (this.callLog ??= this.serverLog.child({ method: this.method })); // made when a handler first logs, not per call
  }
  /**
   * Aborted when the deadline passes or the client goes away. Made when a handler first asks for it
   * (most calls never do): then already aborted if the call was stopped, or the client had gone.
   */
  get signal(): AbortSignal {
    if (!this.ac) {
      this.ac = new AbortController();
      const client = this[REQUEST].signal;
      if (this.stopped) this.ac.abort(this.stopped);
      else if (client?.aborted) this.clientGone();
      else if (client && !this.ended) (this.listening = client).addEventListener('abort', this.clientGone, { once: true });
    }
    return this.ac.signal;
  }
  private readonly clientGone = (): void => this.stop(new BrickError('TIMEOUT', `${this.method}: the client went away`));
  /** Stop the call: its signal aborts with `reason` (now, or when it is made). */
  stop(reason: Error): void {
    if (this.ac) this.ac.abort(reason);
    else this.stopped ??= reason;
  }
  /** The call has answered (or reached its deadline): stop listening to the client. */
  release(): void {
    this.ended = true;
    this.listening?.removeEventListener('abort', this.clientGone);
    this.listening = undefined;
  }
  /** A bound function (callers pass it on detached, as `remainingMs: ctx.remainingMs`). */
  readonly remainingMs = (): number => Math.max(1, Math.floor(this.deadline - performance.now()));
}

export class Dispatcher {
  readonly methods = new Map<string, MethodDef>();
  private readonly run: Runner;
  private readonly locks: KeyedLock;
  /** The server's logger (not a call's child): one line per call. */
  readonly log: Logger;
  /** The line of a call that answered with nothing extra to say, written without pino's walk. */
  private readonly okLine: CallLine;

  constructor(private readonly o: DispatcherOptions) {
    this.run = o.run ?? realRun;
    this.locks = o.locks ?? new KeyedLock();
    this.log = o.log;
    this.okLine = callLine(o.log) ?? ((method, ms) => o.log.info({ method, ms, outcome: 'ok' }, 'call'));
    for (const m of [...o.methods, ...systemMethods(this)]) {
      if (this.methods.has(m.name)) throw new Error(`method ${m.name} is defined twice`);
      const firstOptional = m.params.findIndex((p) => p.optional);
      if (firstOptional >= 0 && m.params.slice(firstOptional).some((p) => !p.optional))
        throw new Error(`method ${m.name}: optional parameters must come last`);
      this.methods.set(m.name, m);
    }
  }

  get vendorUrl(): string | undefined {
    return this.o.vendor?.url;
  }

  /**
   * A metrics label that cannot grow without bound. '(unparsed)' (a body that is no method call)
   * stays itself: it never went to the vendor agent (no method name has parentheses).
   */
  private label(method: string): string {
    return this.methods.has(method) || method === UNPARSED ? method : this.o.vendor ? '(vendor)' : '(unknown)';
  }

  private finish(method: string, start: number, fault: Fault | undefined, extra?: Record<string, unknown>): void {
    const ms = Math.round((performance.now() - start) * 100) / 100;
    const outcome = fault ? 'fault' : 'ok';
    this.o.metrics?.observe(this.label(method), outcome, fault?.fault ?? '', ms / 1000);
    if (!fault && !extra) return this.okLine(method, ms); // the common line: one string
    const line = fault
      ? { method, ms, outcome, fault: fault.fault, faultCode: fault.faultCode, faultString: fault.faultString, ...extra }
      : { method, ms, outcome, ...extra };
    if (fault?.fault === 'INTERNAL') this.log.error(line, 'call');
    else this.log.info(line, 'call');
  }

  summarise(ctx: CallContext, summary: Record<string, unknown>): void {
    requestOf(ctx).summary = summary;
  }

  /** Metrics for a call made inside system.multicall (logged in the multicall's one line). */
  observeInner(method: string, fault: Fault | undefined, ms: number): void {
    this.o.metrics?.observe(this.label(method), fault ? 'fault' : 'ok', fault?.fault ?? '', ms / 1000);
  }

  /** A body refused while it was read (a count or depth limit): the fault, logged like a call. */
  refuse(e: CodecError, bytes: number): string {
    const f = faultFor(e, '(unparsed)', this.log);
    this.finish('(unparsed)', performance.now(), f, { bytes, refused_while_reading: true });
    return serializeFault(f.faultCode, f.faultString);
  }

  /** Handle one request body; resolves to the reply body (never rejects). */
  async handle(input: Buffer | string | ReadBody, req: RequestInfo = {}): Promise<string | Buffer> {
    const start = performance.now();
    const body = typeof input === 'string' || Buffer.isBuffer(input) ? input : input.buf;
    let call;
    try {
      call = parseMethodCall(typeof input === 'string' || Buffer.isBuffer(input) || !input.runs.length ? body : new InPlaceBody(input.buf, input.runs, input.textViews));
    } catch (e) {
      const f = faultFor(e, '(unparsed)', this.log);
      this.finish('(unparsed)', start, f, { bytes: body.length });
      return serializeFault(f.faultCode, f.faultString);
    }
    const { method, params } = call;
    if (!this.methods.has(method) && this.o.vendor) {
      try {
        const reply = await this.o.vendor.forward(body, req.authorization, this.o.config.server.call_timeout_s * 1000, req.signal);
        this.finish(method, start, undefined, { vendor: true });
        return reply;
      } catch (e) {
        const f = faultFor(e, method, this.log);
        this.finish(method, start, f, { vendor: true });
        return serializeFault(f.faultCode, f.faultString);
      }
    }
    try {
      const value = await this.call(method, params, req);
      const xml = serializeResponse(value);
      this.finish(method, start, undefined, req.summary);
      return xml;
    } catch (e) {
      const f = faultFor(e, method, this.log);
      this.finish(method, start, f, req.summary);
      return serializeFault(f.faultCode, f.faultString);
    }
  }

  /**
   * A call made by another call (system.multicall): same request, the outer call's signal. Once
   * that signal has aborted (the outer call's deadline stopped it, or the client went away) no
   * further call starts: a handler that never asks for its signal (a file call) would otherwise
   * change the host after brick stopped the call it belongs to.
   */
  callWithin(ctx: CallContext, method: string, params: XmlRpcValue[]): Promise<XmlRpcValue> {
    const signal = ctx.signal;
    if (signal.aborted) return Promise.reject(signal.reason);
    return this.call(method, params, { ...requestOf(ctx), summary: undefined, signal, within: ctx.deadline });
  }

  /** Call one method by name with decoded arguments: checks, deadline, context. Throws on failure. */
  async call(method: string, params: XmlRpcValue[], req: RequestInfo = {}): Promise<XmlRpcValue> {
    const def = this.methods.get(method);
    if (!def) {
      if (this.o.vendor) return this.callVendor(method, params, req);
      throw new BrickError('METHOD_NOT_FOUND', `no method "${method}"; system.listMethods lists the methods brick serves`);
    }
    const args = decodeArgs(def, params);
    const timeoutMs = def.timeoutMs ?? this.o.config.server.call_timeout_s * 1000;
    const own = performance.now() + timeoutMs;
    const ctx = new Context(req, this.o.config, this.log, method, this.run, this.locks, req.within !== undefined && req.within < own ? req.within : own);
    let deadline: Deadline | undefined;
    let work: Promise<XmlRpcValue>;
    try {
      work = Promise.resolve(def.handler(args, ctx));
    } catch (e) {
      work = Promise.reject(e); // a handler that throws before its first await
    }
    try {
      // work.then(resolve, reject) also handles a failure that comes after the deadline.
      const first = await new Promise<XmlRpcValue | typeof DEADLINE>((resolve, reject) => {
        deadline = requestDeadlines.after(timeoutMs, () => resolve(DEADLINE));
        work.then(resolve, reject);
      });
      if (first !== DEADLINE) return first;
    } finally {
      deadline?.cancel();
      ctx.release();
    }
    return this.afterDeadline(method, timeoutMs, ctx, work);
  }

  /**
   * The deadline passed: stop the call (its commands are killed, none starts after), then give it
   * STOP_GRACE_MS to say how it ended, so the fault says truthfully whether anything changed. A
   * call that still finishes in that time gets its own answer (it did finish).
   */
  private async afterDeadline(method: string, timeoutMs: number, ctx: Context, work: Promise<XmlRpcValue>): Promise<XmlRpcValue> {
    const within = `no result within ${timeoutMs / 1000} s (the call's deadline)`;
    const log = ctx.log;
    ctx.stop(new BrickError('TIMEOUT', `${method}: ${within}`));
    let grace: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (grace = setTimeout(() => resolve('late'), STOP_GRACE_MS)));
    try {
      const settled = await Promise.race([work.then((v) => ({ v }), (e: unknown) => ({ e })), late]);
      if (settled === 'late') {
        work.then(
          () => log.warn({ method }, 'a call stopped at its deadline finished later anyway: its change took effect'),
          (e: unknown) => log.warn({ method, err: e instanceof Error ? e.message : String(e) }, 'a call stopped at its deadline failed later'),
        );
        throw new BrickError('TIMEOUT', `${method}: ${within}; brick stopped it, but it had not ended ${STOP_GRACE_MS / 1000} s later, so it may still change something (the brick log says how it ended)`);
      }
      if ('v' in settled) return settled.v;
      const e = settled.e;
      if (e instanceof BrickError && e.fault === 'TIMEOUT') throw e;
      throw new BrickError('TIMEOUT', `${method}: ${within}; stopped: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      clearTimeout(grace);
    }
  }

  /** A call inside system.multicall to a method only the vendor agent serves. */
  private async callVendor(method: string, params: XmlRpcValue[], req: RequestInfo): Promise<XmlRpcValue> {
    const reply = await this.o.vendor!.forward(serializeMethodCall(method, params), req.authorization, this.o.config.server.call_timeout_s * 1000, req.signal);
    try {
      return parseMethodResponse(reply);
    } catch (e) {
      if (e instanceof XmlRpcFault) throw new VendorFault(e.faultCode, e.faultString);
      throw new BrickError('VENDOR_AGENT', `the vendor agent's reply to ${method} is not valid XML-RPC: ${(e as Error).message}`);
    }
  }
}
