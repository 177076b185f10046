// Every failure brick reports carries a stable code, names the thing that was wrong and, where we
// can, says what to do about it. The XML-RPC layer turns these into faults (faultCode = code);
// the CLI turns them into one-line messages. Codes are part of the public contract: never renumber,
// only append. The README's fault table is generated from FAULT_CODES' descriptions.

export const FAULT_CODES = {
  // XML-RPC protocol level, as in the "fault code interoperability" convention.
  PARSE_ERROR: { code: -32700, what: 'the request body is not well-formed XML-RPC' },
  INVALID_REQUEST: { code: -32600, what: 'the request is XML but not a valid methodCall' },
  METHOD_NOT_FOUND: { code: -32601, what: 'no such method (and no vendor agent to pass it to)' },
  INVALID_PARAMS: { code: -32602, what: 'wrong number or type of arguments, or a value out of range; the message names the parameter' },
  INTERNAL: { code: -32603, what: 'an internal error in brick (a bug): the log has details' },
  // brick's own, 1000 and up.
  NOT_FOUND: { code: 1001, what: 'the named thing (bridge, port, domain, file, pool) does not exist' },
  CONFLICT: { code: 1002, what: 'the thing exists but differs from what was asked, or is not brick\'s to change' },
  PATH_REFUSED: { code: 1003, what: 'the path is outside file_roots, escapes through .. or a symlink, or is not allowed' },
  TIMEOUT: { code: 1004, what: 'the call or a command it ran passed its deadline' },
  COMMAND_FAILED: { code: 1005, what: 'a host command failed; the message carries its exit status and stderr' },
  UNSUPPORTED: { code: 1006, what: 'this host cannot do that (no OVS, no DPDK, wrong hypervisor, wrong backend)' },
  HOOK_FAILED: { code: 1007, what: 'a before_device_create or before_vm_start hook failed the start (a non-zero exit, not executable, a timeout, or unusable XML)' },
  VENDOR_AGENT: { code: 1008, what: 'the vendor agent could not be reached for a passed-through call' },
  VERIFY_FAILED: { code: 1009, what: 'a change was applied but the host did not accept it; it was rolled back' },
  BAD_XML: { code: 1010, what: 'a domain XML argument is not well-formed or not a libvirt domain' },
  NOT_READY: { code: 1011, what: 'a prerequisite is not in place yet (fencer state missing, no confirmation pending)' },
  TOO_LARGE: { code: 1012, what: 'an argument is larger than brick accepts' },
  UNAUTHORIZED: { code: 1013, what: 'authentication failed' },
} as const;

export type FaultName = keyof typeof FAULT_CODES;

export class BrickError extends Error {
  readonly fault: FaultName;
  /** Extra machine-readable detail; never secrets or file contents. */
  readonly detail?: Record<string, unknown>;
  constructor(fault: FaultName, message: string, detail?: Record<string, unknown>) {
    super(message);
    this.name = 'BrickError';
    this.fault = fault;
    this.detail = detail;
  }
  get code(): number {
    return FAULT_CODES[this.fault].code;
  }
}

/** A user error at the command line: printed as one line, exit 1. */
export class UsageError extends Error {
  /** The command whose usage to print with it; the global usage when absent. */
  readonly command?: string;
  constructor(message: string, command?: string) {
    super(message);
    this.command = command;
    this.name = 'UsageError';
  }
}

export function isBrickError(e: unknown): e is BrickError {
  return e instanceof BrickError;
}
