// The few TypeBox schema kinds method parameters use, built here as the very objects TypeBox's
// Type.* builders make (same keywords, same TypeBox symbols; test/unit/rpc-params.test.ts compares
// them), so TypeBox's static types (Static, StaticDecode) type every handler while the agent never
// loads TypeBox's builder at run time: the bundle would grow by ~150 KiB and idle RSS by ~2 MB
// (issue 19; the config schema is compiled at build time for the same reason).
import type { SchemaOptions, Static, StaticDecode, TBoolean, TInteger, TNull, TNumber, TObject, TOptional, TProperties, TSchema, TString, TTransform, TUint8Array, TUnion, TUnsafe } from '@sinclair/typebox';

import type { Kind as TKind, OptionalKind as TOptionalKind, TransformKind as TTransformKind } from '@sinclair/typebox';

// TypeBox's own symbols (Symbol.for gives the same values as TypeBox's exports), typed as them.
export const Kind: typeof TKind = Symbol.for('TypeBox.Kind') as typeof TKind;
export const OptionalKind: typeof TOptionalKind = Symbol.for('TypeBox.Optional') as typeof TOptionalKind;
export const TransformKind: typeof TTransformKind = Symbol.for('TypeBox.Transform') as typeof TTransformKind;

const make = <S>(kind: string, keywords: object, options?: SchemaOptions): S => ({ ...options, [Kind]: kind, ...keywords }) as S;

export const T = {
  String: (o?: SchemaOptions) => make<TString>('String', { type: 'string' }, o),
  Integer: (o?: SchemaOptions) => make<TInteger>('Integer', { type: 'integer' }, o),
  Number: (o?: SchemaOptions) => make<TNumber>('Number', { type: 'number' }, o),
  Boolean: (o?: SchemaOptions) => make<TBoolean>('Boolean', { type: 'boolean' }, o),
  Null: (o?: SchemaOptions) => make<TNull>('Null', { type: 'null' }, o),
  Uint8Array: (o?: SchemaOptions) => make<TUint8Array>('Uint8Array', { type: 'Uint8Array' }, o),
  Union: <S extends TSchema[]>(anyOf: [...S], o?: SchemaOptions) => make<TUnion<S>>('Union', { anyOf }, o),
  Unsafe: <V>(o: SchemaOptions = {}) => make<TUnsafe<V>>('Unsafe', {}, o),
  Optional: <S extends TSchema>(s: S): TOptional<S> => ({ ...s, [OptionalKind]: 'Optional' }) as TOptional<S>,
  Object: <P extends TProperties>(properties: P, o?: SchemaOptions) => {
    const required = Object.keys(properties).filter((k) => !(OptionalKind in properties[k]));
    return make<TObject<P>>('Object', { type: 'object', properties, ...(required.length ? { required } : {}) }, o);
  },
  /** TypeBox's Transform(s).Decode(decode).Encode(identity). */
  Transform: <S extends TSchema, V>(s: S, decode: (v: unknown) => V): TTransform<S, V> =>
    ({ ...s, [TransformKind]: { Decode: decode, Encode: (v: V) => v as unknown as StaticDecode<S> } }) as unknown as TTransform<S, V>,
};

export type { Static, StaticDecode, TSchema };

