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
