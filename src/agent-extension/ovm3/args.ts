// What the Ovm3 calls check beyond their parameters' formats (rpc/formats.ts, declared in
// methods.ts): addresses inside ovm3.domr_networks (config-dependent), CloudStack VM names. The
// Python module trusted its callers and pasted arguments into shell strings; brick checks every
// argument before anything runs.
import { isIP } from 'node:net';
import { BrickError } from '../../shared/errors.js';
import { check } from '../../rpc/params.js';
import { IpLiteral } from '../../rpc/formats.js';

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
  const ip = check(IpLiteral, v, name);
  if (!networks.some((n) => inCidr(ip, n)))
    throw new BrickError(
      'INVALID_PARAMS',
      `${name}: ${ip} is not inside ovm3.domr_networks (${networks.join(', ') || 'empty'}); add its network there if brick should reach it`,
    );
  return ip;
}

/**
 * CloudStack VM names: i-<account>-<id>-<instance.name>, r-<id>-<instance.name>, s-, v-
 * (VirtualMachineName.getVmName). instance.name is the cloud's global setting, "VM" by default;
 * CloudStack refuses one with a hyphen, a space or a plus sign (NetUtils.verifyInstanceName), so
 * a cloud may name its VMs i-2-29-PROD. Here: printable ASCII without those, at most 64 characters.
 */
export const CLOUDSTACK_VM_NAME = /^[A-Za-z]-(\d{1,19}-)?\d{1,19}-[\x21-\x2a\x2c\x2e-\x7e]{1,64}$/;

export function isCloudStackVmName(v: unknown): v is string {
  return typeof v === 'string' && CLOUDSTACK_VM_NAME.test(v);
}
