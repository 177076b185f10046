// A method's description for people and for introspection, generated from its catalogue entry:
// the usage line (in INVALID_PARAMS faults and methodHelp), system.methodSignature's combinations
// and system.methodHelp's text.
import type { MethodDef, ParamSpec, ParamType } from './catalogue.js';

const MAX_SIGNATURES = 16;

export const typesOf = (p: ParamSpec): readonly ParamType[] => (typeof p.type === 'string' ? [p.type] : p.type);

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
