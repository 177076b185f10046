// The values XML-RPC carries, as brick's handlers see them.
//   int/i4 → number; i8 → number (bigint if beyond 2^53); double → number; boolean → boolean;
//   string → string; dateTime.iso8601 → Date; base64 → Buffer; struct → plain object with a null
//   prototype; array → array; nil → null.
// Going out, an integral number inside int32 is <int>, outside it <i8>; a non-integral number is
// <double>; wrap a number in XmlRpcDouble to force <double> (2.0 stays a double).
export class XmlRpcDouble {
  constructor(readonly value: number) {}
}

/**
 * An integer always written as <i8>, even inside int32: Apache XML-RPC decodes <i8> to Long, which
 * every CloudStack Ovm3 client revision accepts where it casts to Long (exec_domr's rc).
 */
export class XmlRpcI8 {
  constructor(readonly value: number) {
    if (!Number.isSafeInteger(value)) throw new RangeError(`XmlRpcI8: ${value} is not a safe integer`);
  }
}

export type XmlRpcValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Date
  | Buffer
  | XmlRpcDouble
  | XmlRpcI8
  | XmlRpcValue[]
  | { [member: string]: XmlRpcValue };

export type XmlRpcStruct = { [member: string]: XmlRpcValue };

export const TEXT_VIEW = Symbol.for('brick.textView');
/**
 * A long <string> of a call that carries file contents, handed over as the bytes of the request
 * body it was read from (a view, not a copy): already checked as UTF-8 without the characters XML
 * forbids and without '&'. Its bytes are the UTF-8 of the text: written as they are.
 */
export function isTextView(v: unknown): v is Buffer {
  return Buffer.isBuffer(v) && (v as Buffer & { [TEXT_VIEW]?: true })[TEXT_VIEW] === true;
}

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** The XML-RPC type name of a decoded value, as the catalogue's ParamType spells it. */
export function typeOfValue(v: XmlRpcValue | undefined): string {
  if (v === null || v === undefined) return 'nil';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'bigint') return 'i8';
  if (typeof v === 'number') return Number.isInteger(v) ? (v >= INT32_MIN && v <= INT32_MAX ? 'int' : 'i8') : 'double';
  if (v instanceof XmlRpcDouble) return 'double';
  if (v instanceof XmlRpcI8) return 'i8';
  if (v instanceof Date) return 'dateTime.iso8601';
  if (isTextView(v)) return 'string';
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return 'base64';
  if (Array.isArray(v)) return 'array';
  return 'struct';
}
