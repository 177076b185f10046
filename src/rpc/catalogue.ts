// A method as the catalogue knows it: its name, parameters with their XML-RPC types, help text and
// handler. The server checks arguments against `params` before the handler runs, so a handler may
// trust the types (not the values: it validates those and throws BrickError('INVALID_PARAMS', ...)
// naming the parameter). Each feature folder exports its methods as a MethodDef[]; methods.ts
// collects them.
import type { Config } from '../config/schema.js';
import type { Logger } from '../shared/log.js';
import type { Runner } from '../shared/run.js';
import type { KeyedLock } from '../shared/keyed-lock.js';
import type { XmlRpcValue } from './values.js';

export type ParamType = 'int' | 'i8' | 'boolean' | 'string' | 'double' | 'dateTime.iso8601' | 'base64' | 'struct' | 'array' | 'nil' | 'any';

export interface ParamSpec {
  name: string;
  /** One type, or the types accepted (the Java client sends some numbers as strings). */
  type: ParamType | readonly ParamType[];
  optional?: boolean;
  help?: string;
}

export interface CallContext {
  config: Config;
  log: Logger;
  /** Runs host commands; in network code, already bound to config.network.namespace where relevant. */
  run: Runner;
  /** Serialize changes on one thing. Network code holds `net:link:<name>` (linkKey) for every interface or bridge a call can change, through `locks.bound(ctx.signal)` so a stopped call stops waiting. */
  locks: KeyedLock;
  /** Absolute deadline for this call, in performance.now() milliseconds. */
  deadline: number;
  /** Aborted when the deadline passes or the client goes away. */
  signal: AbortSignal;
  /** Milliseconds left before the deadline, never below 1. */
  remainingMs(): number;
}

export interface MethodDef {
  name: string;
  params: readonly ParamSpec[];
  /** The reply's XML-RPC type, for system.methodSignature. */
  returns: ParamType;
  /** One paragraph for system.methodHelp: what it does, each argument, the reply, the faults. */
  help: string;
  /** The call carries file contents: its body may be as large as server.body_limit_bytes
   * (every other call: server.call_body_limit_bytes). */
  carriesFile?: boolean;
  /** Deadline for the whole call; defaults to server.call_timeout_s. */
  timeoutMs?: number;
  handler: (args: any[], ctx: CallContext) => Promise<XmlRpcValue>;
}

export function defineMethods(defs: MethodDef[]): MethodDef[] {
  return defs;
}
