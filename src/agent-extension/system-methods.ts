// The standard introspection and batching calls, answered from the dispatcher's catalogue.
import { BrickError } from '../shared/errors.js';
import { defineMethods, type MethodDef, type ParamType } from './catalogue.js';
import type { XmlRpcValue, XmlRpcStruct } from './values.js';
import { faultFor, usage, requestOf, type Dispatcher } from './dispatch.js';

const MAX_SIGNATURES = 16;

/** Every [return, param...] combination a method accepts, optional arguments expanded. */
export function signatures(def: MethodDef): string[][] {
  const out: string[][] = [];
  const min = def.params.filter((p) => !p.optional).length;
  for (let n = min; n <= def.params.length; n++) {
    let combos: string[][] = [[def.returns]];
    for (const p of def.params.slice(0, n)) {
      const types = (typeof p.type === 'string' ? [p.type] : [...p.type]) as ParamType[];
      combos = combos.flatMap((c) => types.map((t) => [...c, t]));
      if (combos.length > MAX_SIGNATURES) combos = combos.slice(0, MAX_SIGNATURES);
    }
    out.push(...combos);
    if (out.length >= MAX_SIGNATURES) break;
  }
  return out.slice(0, MAX_SIGNATURES);
}

export function helpText(def: MethodDef): string {
  const params = def.params.map((p) => `  ${p.name}${p.optional ? ' (optional)' : ''}: ${typeof p.type === 'string' ? p.type : p.type.join(' or ')}${p.help ? ' — ' + p.help : ''}`);
  return `${usage(def)}\n\n${def.help}${params.length ? '\n\nArguments:\n' + params.join('\n') : ''}`;
}

export function systemMethods(d: Dispatcher): MethodDef[] {
  const find = (name: string): MethodDef => {
    const def = d.methods.get(name);
    if (!def) throw new BrickError('NOT_FOUND', `no method "${name}"; system.listMethods lists them`);
    return def;
  };
  return defineMethods([
    {
      name: 'system.listMethods',
      params: [],
      returns: 'array',
      help: 'Lists the names of every method brick serves, sorted. Methods passed through to the vendor agent are not listed.',
      handler: async () => [...d.methods.keys()].sort(),
    },
    {
      name: 'system.methodHelp',
      params: [{ name: 'method', type: 'string', help: 'a method name from system.listMethods' }],
      returns: 'string',
      help: 'Returns the help text of a method: what it does, its arguments, its reply and its faults. Fault NOT_FOUND (1001) for an unknown method.',
      handler: async ([name]) => helpText(find(name as string)),
    },
    {
      name: 'system.methodSignature',
      params: [{ name: 'method', type: 'string', help: 'a method name from system.listMethods' }],
      returns: 'array',
      help: 'Returns the method\'s signatures: an array of arrays, each [reply type, argument types...], one per accepted argument count and type combination. Fault NOT_FOUND (1001) for an unknown method.',
      handler: async ([name]) => signatures(find(name as string)),
    },
    {
      name: 'system.multicall',
      params: [{ name: 'calls', type: 'array', help: 'array of structs {methodName: string, params: array}' }],
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
        const req = requestOf(ctx);
        req.summary = { calls: (calls as XmlRpcValue[]).length, ok, faults };
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
            out.push([await d.call(method, params, { ...req, summary: undefined, signal: ctx.signal })]);
            req.summary.ok = ++ok;
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
    },
  ]);
}
