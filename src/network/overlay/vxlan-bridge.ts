// network_ensure_vxlan_bridge / network_remove_vxlan_bridge (linuxbridge), the job of CloudStack's
// modifyvxlan.sh done as one `ip -batch`: a kernel VXLAN device vxlan<vni> on the underlay, a bridge
// brvx-<vni> (or the name asked for) holding it, both up, the MTU lowered for the VXLAN header, both
// marked as brick's (alias brick:vxlan-device / brick:vxlan-bridge) so network_gc collects the
// bridge once no guest port is left, as it does VLAN bridges.
//
// The underlay: like modifyvxlan.sh, if the physical interface is a port of a bridge the address is
// on that bridge, so the VXLAN device is bound to the bridge. The multicast group is derived from
// the VNI as modifyvxlan.sh does (239.<vni>>16>.<vni>>8&255>.<vni&255>) unless one is given; a
// unicast `remote` (one peer, no multicast in the underlay) may be given instead. modifyvxlan.sh also
// adds a /32 route for the group; the kernel joins the group on the `dev` given to the VXLAN device,
// so brick does not (it would be a host change nothing collects).
import { isIP } from 'node:net';
import { BrickError } from '../../shared/errors.js';
import { check } from '../../rpc/params.js';
import { LinuxIfName, canonicalIp, intIn } from '../../rpc/formats.js';
import { type LinuxState, type Link, ownerAlias, portsOf } from '../host/link-state.js';
import type { Step } from '../host/plan.js';

export const VNI_MAX = 16_777_215;
export const VXLAN_PORT = 4789;
/** modifyvxlan.sh's TTL for the encapsulated packets. */
export const VXLAN_TTL = 10;
/** Outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8; over IPv6 20 more. */
export const VXLAN_OVERHEAD_V4 = 50;
export const VXLAN_OVERHEAD_V6 = 70;

export interface VxlanBridgeDesired {
  pif: string;
  vni: number;
  /** Multicast group; default derived from the VNI. */
  group?: string;
  /** Unicast peer instead of a group. */
  remote?: string;
  /** Bridge name; default brvx-<vni>. */
  name?: string;
}

export interface VxlanNames {
  bridge: string;
  vxlanDevice: string;
}

/** A VXLAN network identifier. */
export const Vni = intIn(1, VNI_MAX, 'VXLAN VNI');

/** modifyvxlan.sh: 239.<(vni>>16)%256>.<(vni>>8)%256>.<vni%256>. */
export function vxlanGroup(vni: number): string {
  return `239.${(vni >> 16) & 255}.${(vni >> 8) & 255}.${vni & 255}`;
}

export function vxlanNames(d: Pick<VxlanBridgeDesired, 'vni' | 'name'>): VxlanNames {
  return { vxlanDevice: check(LinuxIfName, `vxlan${d.vni}`, 'VXLAN device'), bridge: d.name ?? check(LinuxIfName, `brvx-${d.vni}`, 'VXLAN bridge') };
}

/** The device the VXLAN device is bound to: the pif, or the bridge it is a port of (the address is there). */
export function underlayOf(s: LinuxState, pif: string): Link {
  const l = s.links.get(pif);
  if (!l) throw new BrickError('NOT_FOUND', `pif ${pif} does not exist; name the physical interface (or bridge) that carries the underlay`);
  if (l.kind === 'vxlan') throw new BrickError('INVALID_PARAMS', `pif: ${pif} is itself a VXLAN device; name the physical interface under it`);
  if (l.master) {
    const m = s.links.get(l.master);
    if (m?.kind === 'bridge') return m;
  }
  return l;
}

export function planVxlanBridge(s: LinuxState, d: VxlanBridgeDesired): { names: VxlanNames; underlay: string; steps: Step[] } {
  const names = vxlanNames(d);
  const { bridge, vxlanDevice: dev } = names;
  const under = underlayOf(s, d.pif);
  if (bridge === dev || bridge === d.pif || bridge === under.name)
    throw new BrickError('INVALID_PARAMS', `opts.name: the VXLAN bridge cannot be named ${bridge} (that is the VXLAN device or the underlay)`);
  const peer = d.remote ? { remote: d.remote } : { group: d.group ?? vxlanGroup(d.vni) };
  const peerFamily = isIP(peer.remote ?? peer.group!);
  const mtu = under.mtu - (peerFamily === 6 ? VXLAN_OVERHEAD_V6 : VXLAN_OVERHEAD_V4);
  if (mtu < 68) throw new BrickError('CONFLICT', `${under.name} has MTU ${under.mtu}; with the VXLAN header that leaves ${mtu}, below the minimum 68`);

  const vx = s.links.get(dev);
  const br = s.links.get(bridge);
  if (vx) {
    if (vx.kind !== 'vxlan' || vx.vxlan?.id !== d.vni)
      throw new BrickError('CONFLICT', `${dev} exists but is not VXLAN ${d.vni} (${vx.kind || 'physical'}${vx.vxlan ? ` VNI ${vx.vxlan.id}` : ''}); remove it first`);
    const have = vx.vxlan!;
    const differs: string[] = [];
    if (have.dev !== undefined && have.dev !== under.name) differs.push(`on ${have.dev}, not ${under.name}`);
    // ip prints an IPv6 address compressed and lower case; the caller may have written it otherwise.
    const same = (a: string | undefined, b: string) => a !== undefined && canonicalIp(a) === canonicalIp(b);
    if (peer.group && !same(have.group, peer.group)) differs.push(`group ${have.group ?? 'none'}, not ${peer.group}`);
    if (peer.remote && !same(have.remote, peer.remote)) differs.push(`remote ${have.remote ?? 'none'}, not ${peer.remote}`);
    if (have.port !== undefined && have.port !== VXLAN_PORT) differs.push(`UDP port ${have.port}, not ${VXLAN_PORT}`);
    if (differs.length) throw new BrickError('CONFLICT', `${dev} exists with ${differs.join(', ')}; remove it (or its bridge) first`);
    if (vx.master && vx.master !== bridge)
      throw new BrickError('CONFLICT', `${dev} is already a port of ${vx.master}; VNI ${d.vni} is bridged there (ask for opts.name ${vx.master} or remove that bridge)`);
  }
  if (br && br.kind !== 'bridge') throw new BrickError('CONFLICT', `${bridge} exists and is a ${br.kind || 'physical'} interface, not a bridge; pass another opts.name`);
  const otherVx = br ? portsOf(s, bridge).find((p) => p.kind === 'vxlan' && p.name !== dev) : undefined;
  if (otherVx) throw new BrickError('CONFLICT', `${bridge} already carries VXLAN device ${otherVx.name} (VNI ${otherVx.vxlan?.id}); one bridge per VNI: pass another opts.name`);

  const steps: Step[] = [];
  if (!vx) {
    const where = peer.remote ? `remote ${peer.remote}` : `group ${peer.group}`;
    steps.push({
      do: `link add ${dev} type vxlan id ${d.vni} ${where} dev ${under.name} dstport ${VXLAN_PORT} ttl ${VXLAN_TTL}`,
      undo: `link del dev ${dev}`,
      what: `created VXLAN device ${dev} (VNI ${d.vni}, ${where}, on ${under.name})`,
    });
    steps.push({ do: `link set dev ${dev} alias ${ownerAlias('vxlan-device')}`, what: `marked ${dev} as brick's` });
  }
  // Lower the MTU on what brick made (a person's device keeps theirs).
  if (!vx || (vx.owner && vx.mtu !== mtu))
    steps.push({ do: `link set dev ${dev} mtu ${mtu}`, undo: vx ? `link set dev ${dev} mtu ${vx.mtu}` : undefined, what: `set ${dev} mtu ${mtu}` });
  if (!br) {
    steps.push({ do: `link add name ${bridge} type bridge`, undo: `link del dev ${bridge}`, what: `created bridge ${bridge}` });
    steps.push({ do: `link set dev ${bridge} alias ${ownerAlias('vxlan-bridge')}`, what: `marked ${bridge} as brick's` });
  }
  if (!br || (br.owner && br.mtu !== mtu))
    steps.push({ do: `link set dev ${bridge} mtu ${mtu}`, undo: br ? `link set dev ${bridge} mtu ${br.mtu}` : undefined, what: `set ${bridge} mtu ${mtu}` });
  if (vx?.master !== bridge) steps.push({ do: `link set dev ${dev} master ${bridge}`, undo: `link set dev ${dev} nomaster`, what: `made ${dev} a port of ${bridge}` });
  if (!vx?.up) steps.push({ do: `link set dev ${dev} up`, undo: vx ? `link set dev ${dev} down` : undefined, what: `brought ${dev} up` });
  if (!br?.up) steps.push({ do: `link set dev ${bridge} up`, undo: br ? `link set dev ${bridge} down` : undefined, what: `brought ${bridge} up` });
  return { names, underlay: under.name, steps };
}

export interface VxlanRemovalPlan {
  exists: boolean;
  steps: Step[];
}

/** Remove a brick VXLAN bridge and brick's VXLAN device in it; refuses a person's bridge and one with other ports. */
export function planRemoveVxlanBridge(s: LinuxState, name: string): VxlanRemovalPlan {
  const br = s.links.get(name);
  if (!br) return { exists: false, steps: [] };
  if (br.kind !== 'bridge' || br.owner !== 'vxlan-bridge')
    throw new BrickError('CONFLICT', `${name} is not a VXLAN bridge brick made (no alias ${ownerAlias('vxlan-bridge')}); brick leaves it alone`);
  const ports = portsOf(s, name);
  const inUse = ports.filter((p) => p.owner !== 'vxlan-device');
  if (inUse.length) throw new BrickError('CONFLICT', `${name} still has ports ${inUse.map((p) => p.name).join(', ')}; detach them (stop the guests) first`);
  const steps: Step[] = ports.map((p) => ({ do: `link del dev ${p.name}`, what: `removed VXLAN device ${p.name}` }));
  steps.push({ do: `link del dev ${name}`, what: `removed bridge ${name}` });
  return { exists: true, steps };
}

/** For network_state: the VXLAN bridges (bridges holding a VXLAN device). */
export function vxlanBridges(s: LinuxState): { name: string; vxlan_device: string; vni: number; group: string; remote: string; dev: string; mtu: number; up: boolean; ports: string[]; brick_owned: boolean }[] {
  const out = [];
  for (const br of [...s.links.values()].filter((l) => l.kind === 'bridge').sort((a, b) => a.index - b.index)) {
    const ports = portsOf(s, br.name);
    const vx = ports.find((p) => p.kind === 'vxlan');
    if (!vx) continue;
    out.push({
      name: br.name,
      vxlan_device: vx.name,
      vni: vx.vxlan?.id ?? 0,
      group: vx.vxlan?.group ?? '',
      remote: vx.vxlan?.remote ?? '',
      dev: vx.vxlan?.dev ?? '',
      mtu: br.mtu,
      up: br.up,
      ports: ports.map((p) => p.name),
      brick_owned: br.owner === 'vxlan-bridge',
    });
  }
  return out;
}
