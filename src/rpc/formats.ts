// The formats callers' values must have, defined once for every method (network, DPDK, overlay,
// Ovm3, domain, fencer): interface names, VLAN ids, MTUs, keys, addresses, CIDRs, ports, seconds,
// strings safe on a command line. Each is a schema (its XML-RPC types and description, for
// introspection) with the check that decodes it (refine, params.ts). A check says what is wrong
// after "<param>: "; the dispatcher adds the parameter's name. Code that builds a name itself
// checks it with check(IfName, name, 'what').
import { isIP } from 'node:net';
import { T } from './schema.js';
import { Invalid, refine } from './params.js';
import type { XmlRpcStruct, XmlRpcValue } from './values.js';

/** A caller's value for a message: bigints (from <i8>) included, long values cut. */
export function show(v: unknown): string {
  const t = typeof v === 'bigint' ? String(v) : (JSON.stringify(v) ?? String(v));
  return t.length > 60 ? t.slice(0, 60) + '…' : t;
}

// --- XML-RPC types without a format -------------------------------------------------------------
export const Str = T.String();
export const Int = T.Integer();
export const I8 = T.Unsafe<number | bigint>({ xmlrpc: 'i8' });
export const Bool = T.Boolean();
export const Double = T.Number();
export const Struct = T.Unsafe<XmlRpcStruct>({ xmlrpc: 'struct' });
export const List = T.Unsafe<XmlRpcValue[]>({ xmlrpc: 'array' });
export const Any = T.Unsafe<XmlRpcValue>({ xmlrpc: 'any' });

/** Numbers: the Java client sends Integer (int) or Long (i8); CloudStack's own scripts send strings. */
const NUMBER_WIRE = [T.Integer(), I8, T.String()];

// --- Names ----------------------------------------------------------------------------------------
const IFNAMSIZ_MAX = 15;
// Stricter than the kernel (anything but '/', ':' and whitespace) so a name is always one safe
// token in an `ip -batch` line, an ovs-vsctl argument and a socket file name in OVS's run dir.
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** A bridge, port or interface name. */
function ifName(v: unknown): string {
  if (typeof v !== 'string') throw new Invalid(`an interface name is required, got ${show(v)}`);
  if (v === '') throw new Invalid('it is empty; an interface name is required');
  if (v.length > IFNAMSIZ_MAX) throw new Invalid(`${show(v)} is ${v.length} characters; the kernel allows ${IFNAMSIZ_MAX}`);
  if (!NAME_RE.test(v) || v === '.' || v === '..')
    throw new Invalid(`${show(v)} is not a valid interface name (letters, digits, _ . - only, not starting with . or -)`);
  return v;
}
export const IfName = refine(T.String({ description: 'interface name: 1-15 letters, digits, _ . -, not starting with . or -' }), ifName);

/**
 * The name of a Linux interface brick creates (a bridge, a VLAN or VXLAN device, the control
 * device, an OVS bridge's own interface): IfName, but not "all" or "default", which the kernel
 * refuses for any device (they are the net.ipv4.conf.<name> entries for every device). Names that
 * never become a kernel device (DPDK vhost-user and OVS tunnel ports) stay plain IfName.
 */
export const LinuxIfName = refine(T.String({ description: 'interface name: 1-15 letters, digits, _ . -, not starting with . or -, not "all" or "default", not if<digits>' }), (v) => {
  const n = ifName(v);
  if (n === 'all' || n === 'default') throw new Invalid(`"${n}" is reserved by the kernel (net.*.conf.${n} means every interface); choose another interface name`);
  // iproute2 (ll_name_to_index) reads a name no link has as `if%u`, an interface index: while the
  // device does not exist (before its `link add` ran; the undo of a batch stopped part-way),
  // `ip link del dev if3` deletes whatever link has index 3.
  if (/^if-?[0-9]/.test(n))
    throw new Invalid(`"${n}" is read by iproute2 as interface index ${ifIndexOf(n)} whenever no link has that name (ip link del dev ${n} would delete that one); choose another interface name`);
  return n;
});

/** What iproute2's sscanf(name, "if%u") makes of a name: an unsigned 32-bit index. */
function ifIndexOf(n: string): number {
  const m = /^if(-?)([0-9]+)/.exec(n)!;
  const u = BigInt(m[2]) % 2n ** 32n;
  return Number(m[1] ? (2n ** 32n - u) % 2n ** 32n : u);
}

/** One of a few words; `fold` accepts any case and surrounding blanks (CloudStack's details are case-insensitive). */
export function oneOf<const W extends readonly string[]>(words: W, opts: { fold?: boolean; description?: string } = {}) {
  return refine(T.String({ description: opts.description ?? words.join(' or ') }), (v): W[number] => {
    const w = typeof v === 'string' && opts.fold ? v.trim().toLowerCase() : v;
    if (typeof w !== 'string' || !words.includes(w)) throw new Invalid(`must be ${words.map((x) => `"${x}"`).join(' or ')}, got ${show(v)}`);
    return w;
  });
}

// --- Numbers --------------------------------------------------------------------------------------
/** An integer sent as int, i8 or a string of digits. `what` names it in the message (e.g. "GRE key"). */
export function intIn(min: number, max: number, what = '', description?: string) {
  const range = `${what ? what + ' ' : ''}${min}-${max}`;
  return refine(T.Union(NUMBER_WIRE, { description: description ?? `integer ${range}` }), (v): number => {
    const n = typeof v === 'bigint' ? Number(v) : typeof v === 'string' && /^-?\d{1,12}$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw new Invalid(`must be an integer ${range}, got ${show(v)}`);
    return n;
  });
}

export const Port = intIn(1, 65535, '', 'TCP port 1-65535');
export const Mtu = intIn(68, 65535, '', 'MTU 68-65535');

/** A VLAN id; 0 and 4095 are reserved (0 = untagged, for an optional one: leave it out). */
export const Vlan = refine(T.Union([T.Integer(), T.String()], { description: 'VLAN id 1-4094' }), (v): number => {
  const digits = typeof v === 'string' && /^\d+$/.test(v);
  const n = digits ? Number(v) : typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 4094)
    throw new Invalid(`${digits ? String(n) : show(v)} is not a VLAN id: must be an integer 1-4094 (0 and 4095 are reserved)`);
  return n;
});

/** Seconds as int, i8, double or a numeric string; 0 < s ≤ max. */
export function seconds(max: number, description?: string) {
  return refine(T.Union([...NUMBER_WIRE.slice(0, 2), T.Number(), T.String()], { description: description ?? `seconds, 0 < s ≤ ${max}` }), (v): number => {
    const n = typeof v === 'bigint' ? Number(v) : typeof v === 'string' && /^\s*\d{1,7}(\.\d{1,6})?\s*$/.test(v) ? Number(v.trim()) : v;
    if (typeof n !== 'number') throw new Invalid('must be a number of seconds');
    if (!(n > 0 && n <= max)) throw new Invalid(`must be a number of seconds above 0 and at most ${max}, got ${n}`);
    return n;
  });
}

/** A boolean; 0 and 1 too (some clients send int for bool). */
export const Flag = refine(T.Boolean(), (v): boolean => {
  if (typeof v === 'boolean') return v;
  if (v === 0 || v === 1) return v === 1;
  throw new Invalid('must be a boolean');
});

// --- Strings --------------------------------------------------------------------------------------
/** Shell control syntax brick refuses in every argument that is (or could be) part of a command line. */
const SHELL_META = /[;&|`<>\\]|\$\(|\$\{|[\u0000-\u001f\u007f]/;

function offending(s: string): string {
  const c = SHELL_META.exec(s)?.[0] ?? '';
  const code = c.charCodeAt(0);
  return code < 0x20 || code === 0x7f ? `control character 0x${code.toString(16).padStart(2, '0')}` : `"${c}"`;
}

function text(v: unknown, maxLen: number): string {
  if (typeof v !== 'string') throw new Invalid('must be a string');
  if (Buffer.byteLength(v) > maxLen) throw new Invalid(`longer than ${maxLen} bytes`, 'TOO_LARGE');
  return v;
}

/** Any string up to maxLen bytes (TOO_LARGE beyond). */
export const Text = (maxLen = 4096, description?: string) => refine(T.String(description ? { description } : {}), (v) => text(v, maxLen));

/** A string that will be (or could be) part of a command line: no shell control syntax, no control characters. */
export function plainText(v: unknown, maxLen = 4096): string {
  const s = text(v, maxLen);
  if (SHELL_META.test(s)) throw new Invalid(`${offending(s)} is not allowed (no shell syntax, control characters or newlines)`);
  return s;
}
export const Plain = (maxLen = 4096, description?: string) => refine(T.String(description ? { description } : {}), (v) => plainText(v, maxLen));

// --- Addresses ------------------------------------------------------------------------------------
/** An IP literal (v4 or v6, no zone), blanks around it dropped. */
export const IpLiteral = refine(T.String({ description: 'an IPv4 or IPv6 address' }), (v) => {
  const s = plainText(v, 64).trim();
  if (!isIP(s)) throw new Invalid(`must be an IPv4 or IPv6 address, got "${s}"`);
  return s;
});

const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** An IP literal or a strict DNS host name (RFC 1123 labels; never starts with "-"). */
export const HostOrIp = refine(T.String({ description: 'an IP address or a host name' }), (v) => {
  const s = plainText(v, 253).trim();
  if (isIP(s)) return s;
  const labels = s.replace(/\.$/, '').split('.');
  if (s.length === 0 || !labels.every((l) => LABEL.test(l)) || /^\d+$/.test(labels[labels.length - 1]))
    throw new Invalid(`must be an IP address or a host name (letters, digits, - and .), got "${s}"`);
  return s;
});

function isMulticast(ip: string): boolean {
  const f = isIP(ip);
  if (f === 4) {
    const first = Number(ip.split('.')[0]);
    return first >= 224 && first <= 239;
  }
  return f === 6 && /^ff/i.test(ip);
}

/** A unicast IPv4/IPv6 address (a tunnel's or VXLAN's peer). */
/**
 * An IPv6 address with a zone (fe80::1%eth0), which isIP accepts: iproute2 and Open vSwitch take no
 * zone in a VXLAN/GRE remote or group, and the device is named separately.
 */
function refuseZone(v: unknown): void {
  if (typeof v === 'string' && v.includes('%') && isIP(v))
    throw new Invalid(`${show(v)} carries a zone ("%${v.slice(v.indexOf('%') + 1)}"); give the address alone (the device is named separately)`);
}

/** An IP address in one spelling, as a planner compares them: IPv6 compressed and lower case, IPv4 as is. */
export function canonicalIp(ip: string): string {
  if (isIP(ip) === 6) return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  return ip;
}

export function unicast(v: unknown): string {
  refuseZone(v);
  if (typeof v !== 'string' || !isIP(v) || isMulticast(v) || v === '0.0.0.0' || v === '::')
    throw new Invalid(`must be a unicast IPv4 or IPv6 address, got ${show(v)}`);
  return v;
}
export const Unicast = refine(T.String({ description: 'a unicast IPv4 or IPv6 address' }), unicast);

/** A multicast group (224.0.0.0/4 or ff00::/8). */
export const Multicast = refine(T.String({ description: 'a multicast IP address' }), (v) => {
  refuseZone(v);
  if (typeof v !== 'string' || !isIP(v) || !isMulticast(v)) throw new Invalid(`must be a multicast IP address (224.0.0.0/4 or ff00::/8), got ${show(v)}`);
  return v;
});

/** An IPv4/IPv6 address with prefix, e.g. 169.254.0.1/16. */
export interface Cidr {
  address: string;
  prefix: number;
  family: 4 | 6;
}

export const CidrText = refine(T.String({ description: 'an address with prefix, e.g. 169.254.0.1/16' }), (s): Cidr => {
  const m = typeof s === 'string' ? /^([0-9A-Fa-f.:]+)\/(\d{1,3})$/.exec(s) : null;
  const family = m ? isIP(m[1]) : 0;
  const prefix = m ? Number(m[2]) : NaN;
  if (!m || !family || prefix > (family === 4 ? 32 : 128)) throw new Invalid(`must be an address with prefix like 169.254.0.1/16, got ${show(s)}`);
  return { address: m[1], prefix, family: family as 4 | 6 };
});
