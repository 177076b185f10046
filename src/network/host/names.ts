// The names brick gives what it makes (VLAN devices, VLAN bridges from network.vlan_bridge_name),
// guest ports, and IPv4 network arithmetic. What callers send is checked by the formats in
// rpc/formats.ts (the one set of validators); a name built here is checked with the same IfName.
import { check } from '../../rpc/params.js';
import { LinuxIfName, type Cidr } from '../../rpc/formats.js';

export type { Cidr };

/** Ports a guest (Xen vif, libvirt vnet, tap) holds; a bridge with one of these is in use. */
export const GUEST_PORT_RE = /^(vif|vnet|tap)/;

export function isGuestPort(name: string): boolean {
  return GUEST_PORT_RE.test(name);
}

/** The VLAN device on a physical interface, as modifyvlan.sh and vdsm name it. */
export function vlanDeviceName(pif: string, vlan: number): string {
  return check(LinuxIfName, `${pif}.${vlan}`, 'vlan device (pif.vlan)');
}

/** Fill network.vlan_bridge_name: {bridge} is the parent as asked, {pif} the physical interface. */
export function vlanBridgeName(pattern: string, v: { bridge: string; pif: string; vlan: number }): string {
  const name = pattern.replaceAll('{bridge}', v.bridge).replaceAll('{pif}', v.pif).replaceAll('{vlan}', String(v.vlan));
  return check(LinuxIfName, name, `VLAN bridge name (network.vlan_bridge_name "${pattern}")`);
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
