// Names and numbers callers send: interface names, VLAN ids, the VLAN bridge name pattern. Every
// check throws INVALID_PARAMS naming the parameter, before anything on the host is read or changed.
// The charset is stricter than the kernel's (which allows anything but '/', ':' and whitespace) so
// a name is always safe as one token in an `ip -batch` line or an ovs-vsctl argument.
import { isIP } from 'node:net';
import { BrickError } from '../../shared/errors.js';

export const IFNAMSIZ_MAX = 15;
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Ports a guest (Xen vif, libvirt vnet, tap) holds; a bridge with one of these is in use. */
export const GUEST_PORT_RE = /^(vif|vnet|tap)/;

export function isGuestPort(name: string): boolean {
  return GUEST_PORT_RE.test(name);
}

export function checkIfName(name: unknown, param: string): string {
  if (typeof name !== 'string' || name === '')
    throw new BrickError('INVALID_PARAMS', `${param}: an interface name is required`);
  if (name.length > IFNAMSIZ_MAX)
    throw new BrickError('INVALID_PARAMS', `${param}: "${name}" is ${name.length} characters; the kernel allows ${IFNAMSIZ_MAX}`);
  if (!NAME_RE.test(name) || name === '.' || name === '..')
    throw new BrickError(
      'INVALID_PARAMS',
      `${param}: "${name}" is not a valid interface name (letters, digits, _ . - only, not starting with . or -)`,
    );
  return name;
}

export function checkVlan(vlan: unknown, param = 'vlan'): number {
  const n = typeof vlan === 'string' && /^\d+$/.test(vlan) ? Number(vlan) : vlan;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 4094)
    throw new BrickError('INVALID_PARAMS', `${param}: must be an integer VLAN id 1-4094, got ${show(vlan)}`);
  return n;
}

export function checkMtu(mtu: unknown, param = 'mtu'): number {
  if (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 68 || mtu > 65535)
    throw new BrickError('INVALID_PARAMS', `${param}: must be an integer 68-65535, got ${show(mtu)}`);
  return mtu;
}

/** The VLAN device on a physical interface, as modifyvlan.sh and vdsm name it. */
export function vlanDeviceName(pif: string, vlan: number): string {
  return checkIfName(`${pif}.${vlan}`, 'vlan device (pif.vlan)');
}

/** Fill network.vlan_bridge_name: {bridge} is the parent as asked, {pif} the physical interface. */
export function vlanBridgeName(pattern: string, v: { bridge: string; pif: string; vlan: number }): string {
  const name = pattern.replaceAll('{bridge}', v.bridge).replaceAll('{pif}', v.pif).replaceAll('{vlan}', String(v.vlan));
  return checkIfName(name, `VLAN bridge name (network.vlan_bridge_name "${pattern}")`);
}

/** An IPv4/IPv6 address with prefix, e.g. 169.254.0.1/16. */
export interface Cidr {
  address: string;
  prefix: number;
  family: 4 | 6;
}

export function parseCidr(s: unknown, param: string): Cidr {
  const m = typeof s === 'string' ? /^([0-9A-Fa-f.:]+)\/(\d{1,3})$/.exec(s) : null;
  const family = m ? isIP(m[1]) : 0;
  const prefix = m ? Number(m[2]) : NaN;
  if (!m || !family || prefix > (family === 4 ? 32 : 128))
    throw new BrickError('INVALID_PARAMS', `${param}: must be an address with prefix like 169.254.0.1/16, got ${show(s)}`);
  return { address: m[1], prefix, family: family as 4 | 6 };
}

function v4ToInt(a: string): number {
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}
function intToV4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** The network prefix of an IPv4 CIDR: 169.254.0.1/16 → 169.254.0.0/16. */
export function v4Network(c: Cidr): string {
  const mask = c.prefix === 0 ? 0 : 2 ** 32 - 2 ** (32 - c.prefix);
  return `${intToV4((v4ToInt(c.address) & mask) >>> 0)}/${c.prefix}`;
}

/** True when the CIDR names a network (host part zero), as Ovm3 passes 169.254.0.0/16. */
export function v4IsNetwork(c: Cidr): boolean {
  return c.prefix < 31 && v4Network(c) === `${c.address}/${c.prefix}`;
}

/** The first host address of an IPv4 network: 169.254.0.0/16 → 169.254.0.1/16. */
export function v4FirstHost(c: Cidr): Cidr {
  const net = v4ToInt(v4Network(c).split('/')[0]);
  return { address: intToV4(net + 1), prefix: c.prefix, family: 4 };
}

/** A caller's value for a message: bigints (from <i8>) included, long values cut. */
export function show(v: unknown): string {
  const t = typeof v === 'bigint' ? String(v) : (JSON.stringify(v) ?? String(v));
  return t.length > 60 ? t.slice(0, 60) + '…' : t;
}
