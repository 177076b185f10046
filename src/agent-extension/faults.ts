// The one mapping from an error to an XML-RPC fault, used for every call (plain, in a multicall,
// passed to the vendor agent).
import type { Logger } from '../shared/log.js';
import { BrickError, FAULT_CODES, type FaultName } from '../shared/errors.js';
import { CodecError, EncodeError } from './codec.js';

export interface Fault {
  faultCode: number;
  faultString: string;
  /** The fault's name, or "vendor" for a fault the vendor agent returned. */
  fault: FaultName | 'vendor';
}

/** The one mapping from an error to a fault. Unknown errors are logged with their stack and hidden. */
export function faultFor(e: unknown, method: string, log: Logger): Fault {
  if (e instanceof BrickError) return { fault: e.fault, faultCode: e.code, faultString: e.message };
  if (e instanceof VendorFault) return { fault: 'vendor', faultCode: e.faultCode, faultString: e.faultString };
  if (e instanceof CodecError) return { fault: 'PARSE_ERROR', faultCode: FAULT_CODES.PARSE_ERROR.code, faultString: e.message };
  log.error({ err: e, method }, 'internal error in a call');
  const what = e instanceof EncodeError ? 'could not write its reply' : 'failed unexpectedly';
  return { fault: 'INTERNAL', faultCode: FAULT_CODES.INTERNAL.code, faultString: `${method}: ${what} (a bug in brick; the brick log has the details)` };
}

/** A fault the vendor agent returned, passed on as is inside a multicall. */
export class VendorFault extends Error {
  constructor(
    readonly faultCode: number,
    readonly faultString: string,
  ) {
    super(faultString);
  }
}
