// A method as the catalogue knows it: its name, each parameter with its schema (TypeBox, params.ts),
// help text and handler. The dispatcher checks and decodes the arguments against the schemas before
// the handler runs, so a handler receives typed, valid values; faults for bad input name the
// parameter. Each feature folder declares its methods with method() (params.ts) beside the code
// they call; agent-extension/methods.ts collects them.
import type { Config } from '../config/schema.js';
import type { Logger } from '../shared/log.js';
import type { Runner } from '../shared/run.js';
import type { KeyedLock } from '../shared/keyed-lock.js';
import type { TSchema } from '@sinclair/typebox';
import type { XmlRpcValue } from './values.js';

export type ParamType = 'int' | 'i8' | 'boolean' | 'string' | 'double' | 'dateTime.iso8601' | 'base64' | 'struct' | 'array' | 'nil' | 'any';

/** One positional parameter: its XML-RPC type(s) and format come from the schema (formats.ts). */
export interface Param<S extends TSchema = TSchema, O extends boolean = boolean> {
  name: string;
  schema: S;
  /** Absent, or nil, means "not given". Optional parameters come last. */
  optional: O;
  /** For help: defaults to the schema's description. */
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
  params: readonly Param[];
  /** The reply's XML-RPC type, for system.methodSignature. */
  returns: ParamType;
  /** One paragraph for system.methodHelp: what it does, each argument, the reply, the faults. */
  help: string;
  /** The call carries file contents: its body may be as large as server.body_limit_bytes
   * (every other call: server.call_body_limit_bytes). */
  carriesFile?: boolean;
  /** Deadline for the whole call; defaults to server.call_timeout_s. */
  timeoutMs?: number;
  /** Receives the arguments as decodeArgs (params.ts) made them: checked, typed, normalised. */
  handler: (args: readonly unknown[], ctx: CallContext) => Promise<XmlRpcValue>;
}
