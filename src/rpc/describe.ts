// A method's description for people and for introspection, generated from its catalogue entry:
// the XML-RPC types of each parameter (read from its schema), the usage line (in INVALID_PARAMS
// faults and methodHelp), system.methodSignature's combinations and system.methodHelp's text.
import { Kind, type TSchema } from './schema.js';
import type { MethodDef, Param, ParamType } from './catalogue.js';

const MAX_SIGNATURES = 16;

const BY_KIND: Record<string, ParamType> = {
  Integer: 'int',
  Number: 'double',
  Boolean: 'boolean',
  String: 'string',
  Date: 'dateTime.iso8601',
  Uint8Array: 'base64',
  Object: 'struct',
  Record: 'struct',
  Array: 'array',
  Null: 'nil',
};

const known = new WeakMap<TSchema, readonly ParamType[]>();

/** The XML-RPC types a schema accepts: its `xmlrpc` annotation, its kind, or each member of a union; nil too when nullable. */
export function wireTypes(s: TSchema): readonly ParamType[] {
  let types = known.get(s); // asked on every call: worked out once per schema
  if (!types) {
    const own: ParamType[] = s.xmlrpc
      ? [s.xmlrpc as ParamType]
      : Array.isArray(s.anyOf)
        ? [...new Set((s.anyOf as TSchema[]).flatMap((m) => wireTypes(m)))]
        : [BY_KIND[s[Kind]] ?? 'any'];
    types = s.nullable ? [...own, 'nil'] : own;
    known.set(s, types);
  }
  return types;
}

export const typesOf = (p: Param): readonly ParamType[] => wireTypes(p.schema);

const helpOf = (p: Param): string | undefined => p.help ?? (p.schema.description as string | undefined);

export function usage(def: MethodDef): string {
  let s = `${def.name}(`;
  let open = 0;
  def.params.forEach((p, i) => {
    const sep = i ? ', ' : '';
    if (p.optional) {
      s += `[${sep}`;
      open++;
    } else s += sep;
    s += `${p.name}: ${typesOf(p).join('|')}`;
  });
  return s + ']'.repeat(open) + `) → ${def.returns}`;
}

/** Every [return, param...] combination a method accepts, optional arguments expanded. */
export function signatures(def: MethodDef): string[][] {
  const out: string[][] = [];
  const min = def.params.filter((p) => !p.optional).length;
  for (let n = min; n <= def.params.length; n++) {
    let combos: string[][] = [[def.returns]];
    for (const p of def.params.slice(0, n)) {
      combos = combos.flatMap((c) => typesOf(p).map((t) => [...c, t]));
      if (combos.length > MAX_SIGNATURES) combos = combos.slice(0, MAX_SIGNATURES);
    }
    out.push(...combos);
    if (out.length >= MAX_SIGNATURES) break;
  }
  return out.slice(0, MAX_SIGNATURES);
}

export function helpText(def: MethodDef): string {
  const params = def.params.map((p) => `  ${p.name}${p.optional ? ' (optional)' : ''}: ${typesOf(p).join(' or ')}${helpOf(p) ? ' — ' + helpOf(p) : ''}`);
  return `${usage(def)}\n\n${def.help}${params.length ? '\n\nArguments:\n' + params.join('\n') : ''}`;
}
