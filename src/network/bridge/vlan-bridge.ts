// network_ensure_vlan_bridge / network_remove_vlan_bridge.
// Linux (modifyvlan.sh, Ovm3's ovs-vlan-bridge): VLAN device <pif>.<vlan> on the physical interface,
// a bridge named by network.vlan_bridge_name, the device enslaved, both up, the uplink MTU copied.
// Open vSwitch: a fake bridge `add-br NAME PARENT VLAN`. What brick makes is marked as brick's.
import { BrickError } from '../../shared/errors.js';
import { isGuestPort, vlanBridgeName, vlanDeviceName } from '../host/names.js';
import { type LinuxState, type Link, ownerAlias, portsOf } from '../host/link-state.js';
import { OVS_OWNER_KEY, type OvsState, fakeBridges, portsOfFakeBridge, vhostUserHint } from '../host/ovs.js';
import type { OvsCommand, Step } from '../host/plan.js';

export interface VlanBridgeDesired {
  /** A bridge (its uplink port is the pif) or the pif itself. */
  parent: string;
  vlan: number;
  /** Explicit bridge name; default from `pattern`. */
  name?: string;
  /** network.vlan_bridge_name */
  pattern: string;
}

export interface VlanBridgeNames {
  bridge: string;
  pif: string;
  /** Linux only. */
  vlanDevice?: string;
}

/** The physical interface under a Linux bridge: its first port that is no guest's, no VLAN device, no bridge. */
function uplinkOf(s: LinuxState, bridge: string): Link | undefined {
  return portsOf(s, bridge).find((p) => !isGuestPort(p.name) && p.kind !== 'vlan' && p.kind !== 'bridge' && p.kind !== 'vxlan');
}

export function linuxVlanNames(s: LinuxState, d: VlanBridgeDesired): VlanBridgeNames {
  const parent = s.links.get(d.parent);
  if (!parent) throw new BrickError('NOT_FOUND', `parent ${d.parent} does not exist; name an existing bridge or physical interface`);
  let pif = parent;
  if (parent.kind === 'bridge') {
    const u = uplinkOf(s, parent.name);
    if (!u) throw new BrickError('CONFLICT', `bridge ${d.parent} has no physical uplink port to put VLAN ${d.vlan} on; pass the physical interface as parent`);
    pif = u;
  } else if (parent.kind === 'vlan') {
    throw new BrickError('INVALID_PARAMS', `parent: ${d.parent} is itself a VLAN device; name its bridge or physical interface`);
  }
  return vlanNamesOn(d, pif.name);
}

/** The names a VLAN bridge for `d` has when the parent's physical interface is `pif` (throws on a name that cannot be formed). */
export function vlanNamesOn(d: VlanBridgeDesired, pif: string): VlanBridgeNames {
  const bridge = d.name ?? vlanBridgeName(d.pattern, { bridge: d.parent, pif, vlan: d.vlan });
  return { bridge, pif, vlanDevice: vlanDeviceName(pif, d.vlan) };
}

export function planLinuxVlanBridge(s: LinuxState, d: VlanBridgeDesired): { names: VlanBridgeNames; steps: Step[] } {
  const names = linuxVlanNames(s, d);
  const { bridge, pif: pifName } = names;
  const vdevName = names.vlanDevice!;
  const pif = s.links.get(pifName)!;
  const vdev = s.links.get(vdevName);
  const br = s.links.get(bridge);
  if (bridge === d.parent || bridge === pifName) throw new BrickError('INVALID_PARAMS', `name: the VLAN bridge cannot be named like its parent (${bridge})`);
  if (bridge === vdevName)
    throw new BrickError('INVALID_PARAMS', `the VLAN bridge name ${bridge} is the VLAN device's own name (${pifName}.${d.vlan}); pass a bridge as parent, opts.name, or another network.vlan_bridge_name`);
  if (vdev && (vdev.kind !== 'vlan' || vdev.vlan?.id !== d.vlan || vdev.vlan?.parent !== pifName))
    throw new BrickError('CONFLICT', `${vdevName} exists but is not VLAN ${d.vlan} on ${pifName} (${vdev.kind || 'physical'}${vdev.vlan ? ` id ${vdev.vlan.id} on ${vdev.vlan.parent}` : ''}); remove it first`);
  if (vdev?.master && vdev.master !== bridge)
    throw new BrickError('CONFLICT', `${vdevName} is already a port of ${vdev.master}; VLAN ${d.vlan} on ${pifName} is bridged there (remove that bridge or ask for ${vdev.master})`);
  if (br && br.kind !== 'bridge') throw new BrickError('CONFLICT', `${bridge} exists and is a ${br.kind || 'physical'} interface, not a bridge; pass another opts.name`);

  const steps: Step[] = [];
  if (!vdev) {
    steps.push({ do: `link add link ${pifName} name ${vdevName} type vlan id ${d.vlan}`, undo: `link del dev ${vdevName}`, what: `created VLAN device ${vdevName}` });
    steps.push({ do: `link set dev ${vdevName} alias ${ownerAlias('vlan-device')}`, what: `marked ${vdevName} as brick's` });
  }
  // Copy the uplink MTU onto what brick made (a person's device keeps theirs).
  if (!vdev || (vdev.owner && vdev.mtu !== pif.mtu))
    steps.push({ do: `link set dev ${vdevName} mtu ${pif.mtu}`, undo: vdev ? `link set dev ${vdevName} mtu ${vdev.mtu}` : undefined, what: `set ${vdevName} mtu ${pif.mtu}` });
  if (!br) {
    steps.push({ do: `link add name ${bridge} type bridge`, undo: `link del dev ${bridge}`, what: `created bridge ${bridge}` });
    steps.push({ do: `link set dev ${bridge} alias ${ownerAlias('vlan-bridge')}`, what: `marked ${bridge} as brick's` });
  }
  if (!br || (br.owner && br.mtu !== pif.mtu))
    steps.push({ do: `link set dev ${bridge} mtu ${pif.mtu}`, undo: br ? `link set dev ${bridge} mtu ${br.mtu}` : undefined, what: `set ${bridge} mtu ${pif.mtu}` });
  if (vdev?.master !== bridge)
    steps.push({ do: `link set dev ${vdevName} master ${bridge}`, undo: `link set dev ${vdevName} nomaster`, what: `made ${vdevName} a port of ${bridge}` });
  if (!vdev?.up) steps.push({ do: `link set dev ${vdevName} up`, undo: vdev ? `link set dev ${vdevName} down` : undefined, what: `brought ${vdevName} up` });
  if (!br?.up) steps.push({ do: `link set dev ${bridge} up`, undo: br ? `link set dev ${bridge} down` : undefined, what: `brought ${bridge} up` });
  return { names, steps };
}

/** For OVS the parent is a bridge, or a port whose bridge is then the parent. */
export function ovsVlanNames(s: OvsState, d: VlanBridgeDesired): VlanBridgeNames & { parentBridge: string } {
  let parentBridge: string;
  let pif: string;
  const port = s.ports.get(d.parent);
  if (s.bridges.has(d.parent)) {
    parentBridge = d.parent;
    const uplink = s.bridges.get(d.parent)!.ports.find((n) => {
      const p = s.ports.get(n)!;
      return n !== d.parent && !p.fakeBridge && !isGuestPort(n) && p.interfaces.every((i) => i.type === '' || i.type === 'system');
    });
    pif = uplink ?? d.parent;
  } else if (port?.fakeBridge) {
    throw new BrickError('INVALID_PARAMS', `parent: ${d.parent} is a fake VLAN bridge on ${port.bridge}; name ${port.bridge}`);
  } else if (port) {
    parentBridge = port.bridge;
    pif = port.name;
  } else {
    throw new BrickError('NOT_FOUND', `parent ${d.parent} is neither an Open vSwitch bridge nor a port of one`);
  }
  const bridge = d.name ?? vlanBridgeName(d.pattern, { bridge: d.parent, pif, vlan: d.vlan });
  return { bridge, pif, parentBridge };
}

export function planOvsVlanBridge(s: OvsState, d: VlanBridgeDesired): { names: VlanBridgeNames; cmds: OvsCommand[] } {
  const names = ovsVlanNames(s, d);
  const existing = fakeBridges(s).find((f) => f.name === names.bridge);
  if (s.bridges.has(names.bridge)) throw new BrickError('CONFLICT', `${names.bridge} exists as a real OVS bridge, not VLAN ${d.vlan} on ${names.parentBridge}; pass another opts.name`);
  if (existing) {
    if (existing.parent !== names.parentBridge || existing.vlan !== d.vlan)
      throw new BrickError('CONFLICT', `${names.bridge} exists as VLAN ${existing.vlan} on ${existing.parent}, not VLAN ${d.vlan} on ${names.parentBridge}`);
    return { names, cmds: [] };
  }
  if (s.ports.has(names.bridge)) throw new BrickError('CONFLICT', `${names.bridge} exists as a port of ${s.ports.get(names.bridge)!.bridge}; pass another opts.name`);
  return {
    names,
    cmds: [
      { args: ['--may-exist', 'add-br', names.bridge, names.parentBridge, String(d.vlan)], what: `created fake bridge ${names.bridge} (VLAN ${d.vlan} on ${names.parentBridge})` },
      { args: ['set', 'Port', names.bridge, `external_ids:${OVS_OWNER_KEY}=vlan-bridge`], what: `marked ${names.bridge} as brick's` },
    ],
  };
}

export interface RemovalPlan {
  /** false: nothing by that name. */
  exists: boolean;
  steps: Step[];
  cmds: OvsCommand[];
}

/** Steps to remove a brick VLAN bridge and brick's VLAN device under it; refuses a person's bridge and one in use. */
export function planLinuxRemoveVlanBridge(s: LinuxState, name: string): RemovalPlan {
  const br = s.links.get(name);
  if (!br) return { exists: false, steps: [], cmds: [] };
  if (br.kind !== 'bridge' || br.owner !== 'vlan-bridge')
    throw new BrickError('CONFLICT', `${name} is not a VLAN bridge brick made (no alias ${ownerAlias('vlan-bridge')}); brick leaves it alone`);
  const ports = portsOf(s, name);
  const inUse = ports.filter((p) => p.owner !== 'vlan-device');
  if (inUse.length)
    throw new BrickError('CONFLICT', `${name} still has ports ${inUse.map((p) => p.name).join(', ')}; detach them (stop the guests) first`);
  const steps: Step[] = ports.map((p) => ({ do: `link del dev ${p.name}`, what: `removed VLAN device ${p.name}` }));
  steps.push({ do: `link del dev ${name}`, what: `removed bridge ${name}` });
  return { exists: true, steps, cmds: [] };
}

export function planOvsRemoveVlanBridge(s: OvsState, name: string): RemovalPlan {
  const fb = fakeBridges(s).find((f) => f.name === name);
  if (!fb) {
    if (s.bridges.has(name)) throw new BrickError('CONFLICT', `${name} is a real OVS bridge, not a VLAN bridge brick made; brick leaves it alone`);
    return { exists: false, steps: [], cmds: [] };
  }
  if (fb.owner !== 'vlan-bridge') throw new BrickError('CONFLICT', `${name} is a fake bridge brick did not make (no external_ids:${OVS_OWNER_KEY}); brick leaves it alone`);
  const ports = portsOfFakeBridge(s, fb);
  if (ports.length) throw new BrickError('CONFLICT', `${name} still has ports ${ports.join(', ')}; detach them (stop the guests) first${vhostUserHint(s, ports)}`);
  return { exists: true, steps: [], cmds: [{ args: ['--if-exists', 'del-br', name], what: `removed fake bridge ${name}` }] };
}
