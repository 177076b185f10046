// Method parameters as schemas (TypeBox's, built by schema.ts), declared beside each method with method(): the XML-RPC
// type(s) a parameter takes and the format its value must have (formats.ts). The dispatcher runs
// decodeArgs before the handler: the argument count and types (checkArgs), then each value's format,
// so a handler receives typed, normalised values and a bad argument is INVALID_PARAMS naming it.
// system.methodSignature and methodHelp read the same schemas (describe.ts). The checker is this
// small walker over the few schema kinds brick uses, not Ajv or TypeBox's compiler: the agent's
// memory is budgeted (issue 19).
import { T, TransformKind, type StaticDecode, type TSchema } from './schema.js';
import type { TObject, TOptional, TTransform } from '@sinclair/typebox';
import { BrickError, type FaultName } from '../shared/errors.js';
import type { CallContext, MethodDef, Param, ParamType } from './catalogue.js';
import { typesOf, usage, wireTypes } from './describe.js';
import { isTextView, typeOfValue, type XmlRpcValue } from './values.js';

/** A value without its parameter's format: what is wrong, in words that follow "<param>: ". */
export class Invalid extends Error {
  constructor(
    message: string,
    readonly fault: FaultName = 'INVALID_PARAMS',
  ) {
    super(message);
  }
}

/** A format: the wire schema (its XML-RPC types, its description) and the check that decodes it. */
export function refine<S extends TSchema, V>(wire: S, decode: (v: unknown) => V): TTransform<S, V> {
  return T.Transform(wire, decode);
}

/** An options struct: every member optional; a key not declared is refused (a typo must not pass silently). */
export function options<P extends Record<string, TSchema>>(members: P, description?: string): TObject<{ [K in keyof P]: TOptional<P[K]> }> {
  const props = Object.fromEntries(Object.entries(members).map(([k, s]) => [k, T.Optional(s)])) as { [K in keyof P]: TOptional<P[K]> };
  return T.Object(props, { additionalProperties: false, ...(description ? { description } : {}) });
}

/** nil is accepted too (and means "not given"), as the Java client sends for an unset struct. */
export function orNil<S extends TSchema>(s: S): S {
  return { ...s, nullable: true };
}

/** "" counts as not given (the Java client sends "" for an unset string). */
export function emptyIsAbsent<S extends TSchema>(s: S): S {
  return { ...s, emptyIsAbsent: true };
}

export const param = <S extends TSchema>(name: string, schema: S, help?: string): Param<S, false> => ({ name, schema, optional: false, ...(help ? { help } : {}) });
export const optional = <S extends TSchema>(name: string, schema: S, help?: string): Param<S, true> => ({ name, schema, optional: true, ...(help ? { help } : {}) });

type ArgOf<P> = P extends Param<infer S, infer O> ? (O extends true ? StaticDecode<S> | undefined : StaticDecode<S>) : never;
/** The handler's view of its parameters: each decoded, optional ones possibly undefined. */
export type Args<P extends readonly Param[]> = { -readonly [K in keyof P]: ArgOf<P[K]> };

export interface MethodSpec<P extends readonly Param[]> extends Omit<MethodDef, 'params' | 'handler'> {
  params: P;
  handler: (args: Args<P>, ctx: CallContext) => Promise<XmlRpcValue>;
}

/** Declare a method: its parameters' schemas type its handler's arguments. */
export function method<const P extends readonly Param[]>(spec: MethodSpec<P>): MethodDef {
  return spec as unknown as MethodDef;
}

function matchesType(v: unknown, t: ParamType): boolean {
  switch (t) {
    case 'any':
      return true;
    case 'int':
      return typeof v === 'number' && Number.isInteger(v) && v >= -2147483648 && v <= 2147483647;
    case 'i8':
      return typeof v === 'bigint' || (typeof v === 'number' && Number.isSafeInteger(v));
    case 'double':
      return typeof v === 'number';
    case 'nil':
      return v === null;
    default:
      return typeOfValue(v as XmlRpcValue) === t;
  }
}

const isAbsent = (s: TSchema, v: unknown) => v === undefined || v === null || (v === '' && s.emptyIsAbsent === true);

const isFormat = (s: TSchema) => TransformKind in s;

/**
 * Check the argument count and each argument's XML-RPC type; throws INVALID_PARAMS naming the
 * parameter. A parameter with a format is left to it (decode): the format checks the type too and
 * says what the value must be, e.g. "key: must be an integer GRE key 0-4294967295, got 1.5".
 */
function checkArgs(def: MethodDef, args: readonly unknown[]): void {
  const max = def.params.length;
  const min = def.params.filter((p) => !p.optional).length;
  if (args.length > max || args.length < min) {
    const missing = args.length < min ? def.params[args.length] : undefined;
    throw new BrickError(
      'INVALID_PARAMS',
      missing
        ? `${def.name}: argument ${args.length + 1} "${missing.name}" (${typesOf(missing).join(' or ')}) is missing; usage: ${usage(def)}`
        : `${def.name}: takes ${min === max ? max : `${min} to ${max}`} argument${max === 1 ? '' : 's'}, got ${args.length}; usage: ${usage(def)}`,
    );
  }
  args.forEach((v, i) => {
    const p = def.params[i];
    if ((v === null || v === undefined) && p.optional) return; // nil for an optional argument means "not given"
    if (isFormat(p.schema)) return;
    const types = typesOf(p);
    if (!types.some((t) => matchesType(v, t)))
      throw new BrickError('INVALID_PARAMS', `${def.name}: argument ${i + 1} "${p.name}" must be ${types.join(' or ')}, got ${typeOfValue(v as XmlRpcValue)}; usage: ${usage(def)}`);
  });
}

/** One value against its schema: the format's check, or the type and (structs) each member. */
function decode<S extends TSchema>(s: S, v: unknown, path: string): StaticDecode<S> {
  const transform = (s as { [TransformKind]?: { Decode(v: unknown): unknown } })[TransformKind];
  if (transform) {
    try {
      return transform.Decode(v) as StaticDecode<S>;
    } catch (e) {
      if (e instanceof Invalid) throw new BrickError(e.fault, `${path}: ${e.message}`);
      throw e;
    }
  }
  const types = wireTypes(s);
  if (!types.some((t) => matchesType(v, t))) throw new BrickError('INVALID_PARAMS', `${path}: must be ${types.join(' or ')}, got ${typeOfValue(v as XmlRpcValue)}`);
  const members = s.properties as Record<string, TSchema> | undefined;
  if (!members || s.additionalProperties !== false) return v as StaticDecode<S>;
  const struct = v as Record<string, unknown>;
  const known = Object.keys(members);
  for (const k of Object.keys(struct))
    if (!Object.hasOwn(members, k)) throw new BrickError('INVALID_PARAMS', `${path}.${k}: unknown option (known: ${known.join(', ')})`);
  const out: Record<string, unknown> = {};
  const required = (s.required as string[] | undefined) ?? [];
  for (const k of known) {
    if (isAbsent(members[k], struct[k])) {
      if (required.includes(k)) throw new BrickError('INVALID_PARAMS', `${path}.${k}: required`);
      continue;
    }
    out[k] = decode(members[k], struct[k], `${path}.${k}`);
  }
  return out as StaticDecode<S>;
}

/** What the dispatcher hands a handler: the arguments checked and decoded; absent optional ones undefined. */
export function decodeArgs(def: MethodDef, args: readonly unknown[]): unknown[] {
  checkArgs(def, args);
  return def.params.map((p, i) => {
    const v = args[i];
    if (p.optional && isAbsent(p.schema, v)) return undefined;
    // A long <string> of a file-carrying call comes as a view of the request body (isTextView):
    // a parameter that takes no bytes reads it as the string it is, so its format judges the text
    // (a 20 KB path is "longer than 4096 bytes", not "must be a string").
    if (isTextView(v) && !wireTypes(p.schema).some((t) => t === 'base64' || t === 'any')) return decode(p.schema, v.toString('utf8'), p.name);
    return decode(p.schema, v, p.name);
  });
}

/** A format's check outside a call (a name brick builds, a config value): throws INVALID_PARAMS naming `what`. */
export const check = decode;
