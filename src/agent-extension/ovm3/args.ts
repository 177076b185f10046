// Argument checks shared by the Ovm3 module's calls. All pure: a value in, a clean value out or a
// BrickError('INVALID_PARAMS' | 'TOO_LARGE') naming the parameter. The Python module trusted its
// callers and pasted arguments into shell strings; brick checks every argument before anything runs.
import { isIP } from 'node:net';
import { BrickError } from '../../shared/errors.js';

/** Shell control syntax brick refuses in every argument, even those that never reach a shell. */
const SHELL_META = /[;&|`<>\\]|\$\(|\$\{|[\u0000-\u001f\u007f]/;

/** Describe the first offending character, for messages. */
function offending(s: string): string {
  const m = SHELL_META.exec(s);
  if (!m) return '';
  const c = m[0];
  const code = c.charCodeAt(0);
  return code < 0x20 || code === 0x7f ? `control character 0x${code.toString(16).padStart(2, '0')}` : `"${c}"`;
}

export function str(name: string, v: unknown, maxLen = 4096): string {
  if (typeof v !== 'string') throw new BrickError('INVALID_PARAMS', `${name}: must be a string`);
  if (Buffer.byteLength(v) > maxLen) throw new BrickError('TOO_LARGE', `${name}: longer than ${maxLen} bytes`);
  return v;
}

/** A string that will be (or could be) part of a command line: no shell control syntax at all. */
export function plain(name: string, v: unknown, maxLen = 4096): string {
  const s = str(name, v, maxLen);
  if (SHELL_META.test(s))
    throw new BrickError('INVALID_PARAMS', `${name}: ${offending(s)} is not allowed (no shell syntax, control characters or newlines)`);
  return s;
}

/** An integer sent as int, i8 or a string of digits (the Java client sends both). */
export function int(name: string, v: unknown, min: number, max: number): number {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'bigint') n = Number(v);
  else if (typeof v === 'string' && /^\s*-?\d{1,12}\s*$/.test(v)) n = Number(v.trim());
  else throw new BrickError('INVALID_PARAMS', `${name}: must be an integer, got ${JSON.stringify(String(v)).slice(0, 40)}`);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new BrickError('INVALID_PARAMS', `${name}: must be an integer ${min}-${max}, got ${n}`);
  return n;
}

/** Seconds as int, double or numeric string; 0 < s ≤ max. */
export function seconds(name: string, v: unknown, max: number): number {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'bigint') n = Number(v);
  else if (typeof v === 'string' && /^\s*\d{1,7}(\.\d{1,6})?\s*$/.test(v)) n = Number(v.trim());
  else throw new BrickError('INVALID_PARAMS', `${name}: must be a number of seconds`);
  if (!(n > 0 && n <= max)) throw new BrickError('INVALID_PARAMS', `${name}: must be a number of seconds above 0 and at most ${max}, got ${n}`);
  return n;
}

export function port(name: string, v: unknown): number {
  return int(name, v, 1, 65535);
}

/** An IP literal (v4 or v6, no zone). */
export function ipLiteral(name: string, v: unknown): string {
  const s = plain(name, v, 64).trim();
  if (!isIP(s)) throw new BrickError('INVALID_PARAMS', `${name}: must be an IPv4 or IPv6 address, got "${s}"`);
  return s;
}

const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** An IP literal or a strict DNS host name (RFC 1123 labels; never starts with "-"). */
export function hostOrIp(name: string, v: unknown): string {
  const s = plain(name, v, 253).trim();
  if (isIP(s)) return s;
  const labels = s.replace(/\.$/, '').split('.');
  if (s.length === 0 || !labels.every((l) => LABEL.test(l)) || /^\d+$/.test(labels[labels.length - 1]))
    throw new BrickError('INVALID_PARAMS', `${name}: must be an IP address or a host name (letters, digits, - and .), got "${s}"`);
  return s;
}

/** Parse "a.b.c.d/n" or "v6/n"; undefined when it is not a CIDR. */
export function parseCidr(cidr: string): { family: 4 | 6; bits: bigint; prefix: number } | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr.trim());
  if (!m) return undefined;
  const fam = isIP(m[1]);
  const prefix = Number(m[2]);
  if (fam === 0 || prefix > (fam === 4 ? 32 : 128)) return undefined;
  return { family: fam as 4 | 6, bits: ipBits(m[1]), prefix };
}

/** An address as an unsigned integer (32 or 128 bits); assumes isIP() said yes. */
export function ipBits(ip: string): bigint {
  if (isIP(ip) === 4) return ip.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n);
  let s = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const b = ipBits(v4[1]);
    s = s.slice(0, -v4[1].length) + `${(b >> 16n).toString(16)}:${(b & 0xffffn).toString(16)}`;
  }
  const [head, tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined ? (tail ? tail.split(':') : []) : [];
  const groups = tail !== undefined ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g || '0', 16)), 0n);
}

export function inCidr(ip: string, cidr: string): boolean {
  const c = parseCidr(cidr);
  const fam = isIP(ip);
  if (!c || fam !== c.family) return false;
  const width = fam === 4 ? 32 : 128;
  const shift = BigInt(width - c.prefix);
  return ipBits(ip) >> shift === c.bits >> shift;
}

/** A system VM address: an IP literal inside one of ovm3.domr_networks. */
export function domrAddress(name: string, v: unknown, networks: readonly string[]): string {
  const ip = ipLiteral(name, v);
  if (!networks.some((n) => inCidr(ip, n)))
    throw new BrickError(
      'INVALID_PARAMS',
      `${name}: ${ip} is not inside ovm3.domr_networks (${networks.join(', ') || 'empty'}); add its network there if brick should reach it`,
    );
  return ip;
}

/** CloudStack VM names: i-<account>-<id>-VM, r-<id>-VM, s-, v-. */
export const CLOUDSTACK_VM_NAME = /^[A-Za-z]-(\d{1,19}-)?\d{1,19}-VM$/;

export function isCloudStackVmName(v: unknown): v is string {
  return typeof v === 'string' && CLOUDSTACK_VM_NAME.test(v);
}

/** A network device name as the kernel accepts it (≤ 15 bytes, no / or whitespace). */
export function deviceName(name: string, v: unknown): string {
  const s = plain(name, v, 64);
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(s) || s === '.' || s === '..')
    throw new BrickError('INVALID_PARAMS', `${name}: must be a network device name (1-15 letters, digits, _ . : @ -), got "${s}"`);
  return s;
}
