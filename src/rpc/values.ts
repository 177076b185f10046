// The values XML-RPC carries, as brick's handlers see them.
//   int/i4 → number; i8 → number (bigint if beyond 2^53); double → number; boolean → boolean;
//   string → string; dateTime.iso8601 → Date; base64 → Buffer; struct → plain object with a null
//   prototype; array → array; nil → null.
// Going out, an integral number inside int32 is <int>, outside it <i8>; a non-integral number is
// <double>; wrap a number in XmlRpcDouble to force <double> (2.0 stays a double).
export class XmlRpcDouble {
  constructor(readonly value: number) {}
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
  | XmlRpcValue[]
  | { [member: string]: XmlRpcValue };

export type XmlRpcStruct = { [member: string]: XmlRpcValue };
