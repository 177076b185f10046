// The standard introspection and batching calls, answered from the dispatcher's catalogue.
import { BrickError } from '../shared/errors.js';
import type { CallContext, MethodDef } from '../rpc/catalogue.js';
import { method, param } from '../rpc/params.js';
import { List, Str } from '../rpc/formats.js';
import { helpText, signatures } from '../rpc/describe.js';
import type { XmlRpcValue, XmlRpcStruct } from '../rpc/values.js';
import type { Logger } from '../shared/log.js';
import { faultFor, type Fault } from './faults.js';

/** What the system.* methods need from the dispatcher that serves them. */
export interface Catalogue {
  readonly methods: ReadonlyMap<string, MethodDef>;
  readonly log: Logger;
  /** Make a call from inside another call (same request, same client signal). */
  callWithin(ctx: CallContext, method: string, params: XmlRpcValue[]): Promise<XmlRpcValue>;
  /** Fields for this request's one log line (system.multicall: its counts and outcomes). */
  summarise(ctx: CallContext, summary: Record<string, unknown>): void;
  /** Metrics for a call made inside another (it has no log line of its own). */
  observeInner(method: string, fault: Fault | undefined, ms: number): void;
}

export function systemMethods(d: Catalogue): MethodDef[] {
  const find = (name: string): MethodDef => {
    const def = d.methods.get(name);
    if (!def) throw new BrickError('NOT_FOUND', `no method "${name}"; system.listMethods lists them`);
    return def;
  };
  const methodName = param('method', Str, 'a method name from system.listMethods');
  return [
    method({
      name: 'system.listMethods',
      params: [],
      returns: 'array',
      help: 'Lists the names of every method brick serves, sorted. Methods passed through to the vendor agent are not listed.',
      handler: async () => [...d.methods.keys()].sort(),
    }),
    method({
      name: 'system.methodHelp',
      params: [methodName],
      returns: 'string',
      help: 'Returns the help text of a method: what it does, its arguments, its reply and its faults. Fault NOT_FOUND (1001) for an unknown method.',
      handler: async ([name]) => helpText(find(name)),
    }),
    method({
      name: 'system.methodSignature',
      params: [methodName],
      returns: 'array',
      help: 'Returns the method\'s signatures: an array of arrays, each [reply type, argument types...], one per accepted argument count and type combination. Fault NOT_FOUND (1001) for an unknown method.',
      handler: async ([name]) => signatures(find(name)),
    }),
    method({
      name: 'system.multicall',
      params: [param('calls', List, 'array of structs {methodName: string, params: array}')],
      returns: 'array',
      help:
        'Runs several calls in one request, in order, each with its own deadline (and all of them within the multicall\'s). Replies with an array holding, for each call, ' +
        'a one-element array [result] or a struct {faultCode, faultString}. A call of system.multicall inside it is refused.',
      handler: async ([calls], ctx) => {
        // One log line for the whole multicall (the dispatcher's, with this summary in it): a
        // line per inner call would let one request write thousands. Each inner call still counts
        // in the metrics.
        const out: XmlRpcValue[] = [];
        let ok = 0;
        const faults: Record<string, number> = Object.create(null);
        const summary = { calls: calls.length, ok, faults };
        d.summarise(ctx, summary);
        for (const [i, c] of (calls as XmlRpcValue[]).entries()) {
          const start = performance.now();
          let method = `(multicall ${i + 1})`;
          try {
            if (!c || typeof c !== 'object' || Array.isArray(c) || c instanceof Date || Buffer.isBuffer(c))
              throw new BrickError('INVALID_PARAMS', `system.multicall: call ${i + 1} must be a struct {methodName, params}`);
            const s = c as XmlRpcStruct;
            if (typeof s.methodName !== 'string') throw new BrickError('INVALID_PARAMS', `system.multicall: call ${i + 1} needs methodName (string)`);
            method = s.methodName;
            const params = s.params ?? [];
            if (!Array.isArray(params)) throw new BrickError('INVALID_PARAMS', `system.multicall: call ${i + 1} (${method}): params must be an array`);
            if (method === 'system.multicall') throw new BrickError('INVALID_PARAMS', 'system.multicall: a multicall may not contain system.multicall');
            out.push([await d.callWithin(ctx, method, params)]);
            summary.ok = ++ok;
            d.observeInner(method, undefined, performance.now() - start);
          } catch (e) {
            const f = faultFor(e, method, d.log);
            faults[f.fault] = (faults[f.fault] ?? 0) + 1;
            d.observeInner(method, f, performance.now() - start);
            const fs: XmlRpcStruct = Object.create(null);
            fs.faultCode = f.faultCode;
            fs.faultString = f.faultString;
            out.push(fs);
          }
        }
        return out;
      },
    }),
  ];
}
