// network_ensure_bridge: a bridge exists, is up, and (if asked) has the uplink as a port, the MTU
// and the STP setting asked for. Linux: a bridge with alias brick:bridge when brick creates it.
// When the uplink carries the host's addresses or routes, enslaving it would cut the host off, so
// the plan also moves them (and the uplink's MAC) to the bridge, and is marked RISKY: brick only
// applies it with confirm_within_s (see safe-apply.ts).
import { BrickError } from '../../shared/errors.js';
import { type LinuxState, movableAddrs, movableRoutes, ownerAlias, portsOf, routeArgs } from '../host/link-state.js';
import { isGuestPort } from '../host/names.js';
import { OVS_OWNER_KEY, type OvsState, datapathOf, fakeBridges, isOvsGuestPort, portsOfOvsBridge, vhostUserHint } from '../host/ovs.js';
import type { OvsCommand, Step } from '../host/plan.js';

export interface BridgeDesired {
  name: string;
  uplink?: string;
  mtu?: number;
  stp?: boolean;
  /** OVS only: datapath_type for a new bridge (netdev for userspace OVS). */
  datapathType?: string;
}

export interface LinuxBridgePlan {
  steps: Step[];
  /** Why applying could cut the host off; undefined when it cannot. */
  risky?: string;
}

export function planLinuxBridge(s: LinuxState, d: BridgeDesired): LinuxBridgePlan {
  const steps: Step[] = [];
  const br = s.links.get(d.name);
  if (br && br.kind !== 'bridge')
    throw new BrickError('CONFLICT', `${d.name} exists and is a ${br.kind || 'physical'} interface, not a bridge; choose another name`);
  const up = d.uplink ? s.links.get(d.uplink) : undefined;
  if (d.uplink) {
    if (!up) throw new BrickError('NOT_FOUND', `uplink ${d.uplink} does not exist; name an existing interface`);
    if (d.uplink === d.name) throw new BrickError('INVALID_PARAMS', `uplink: a bridge cannot be its own uplink`);
    if (up.kind === 'bridge') throw new BrickError('CONFLICT', `uplink ${d.uplink} is a bridge; a bridge cannot be a port of another bridge`);
    if (up.master && up.master !== d.name)
      throw new BrickError('CONFLICT', `uplink ${d.uplink} is already a port of ${up.master}; release it there first`);
  }
  const enslave = Boolean(up && up.master !== d.name);
  const addrs = enslave && up ? movableAddrs(s, up.name) : [];
  const routes = enslave && up ? movableRoutes(s, up.name) : [];
  const mtu = d.mtu ?? (up && !br ? up.mtu : undefined);

  if (!br) {
    steps.push({ do: `link add name ${d.name} type bridge${d.stp !== undefined ? ` stp_state ${d.stp ? 1 : 0}` : ''}`, undo: `link del dev ${d.name}`, what: `created bridge ${d.name}` });
    steps.push({ do: `link set dev ${d.name} alias ${ownerAlias('bridge')}`, what: `marked ${d.name} as brick's` });
    if (addrs.length && up?.mac) steps.push({ do: `link set dev ${d.name} address ${up.mac}`, what: `gave ${d.name} the MAC of ${up.name} (${up.mac})` });
    if (mtu !== undefined) steps.push({ do: `link set dev ${d.name} mtu ${mtu}`, what: `set ${d.name} mtu ${mtu}` });
  } else {
    if (d.stp !== undefined && br.stp !== d.stp)
      steps.push({
        do: `link set dev ${d.name} type bridge stp_state ${d.stp ? 1 : 0}`,
        undo: `link set dev ${d.name} type bridge stp_state ${d.stp ? 0 : 1}`,
        what: `turned STP ${d.stp ? 'on' : 'off'} on ${d.name}`,
      });
    if (mtu !== undefined && br.mtu !== mtu)
      steps.push({ do: `link set dev ${d.name} mtu ${mtu}`, undo: `link set dev ${d.name} mtu ${br.mtu}`, what: `set ${d.name} mtu ${br.mtu} → ${mtu}` });
  }
  if (!br?.up) steps.push({ do: `link set dev ${d.name} up`, undo: br ? `link set dev ${d.name} down` : undefined, what: `brought ${d.name} up` });
  if (up && enslave) {
    steps.push({ do: `link set dev ${up.name} master ${d.name}`, undo: `link set dev ${up.name} nomaster`, what: `made ${up.name} a port of ${d.name}` });
    // Routes first, so none is left pointing at a device that lost its address.
    for (const r of routes)
      steps.push({ do: `route del ${routeArgs(r).join(' ')}`, undo: `route add ${routeArgs(r).join(' ')}`, what: `removed route ${r.dst} from ${up.name}` });
    for (const a of addrs)
      steps.push({ do: `address del ${a.address}/${a.prefix} dev ${up.name}`, undo: `address add ${a.address}/${a.prefix} dev ${up.name}`, what: `removed ${a.address}/${a.prefix} from ${up.name}` });
    for (const a of addrs)
      steps.push({ do: `address add ${a.address}/${a.prefix} dev ${d.name}`, undo: `address del ${a.address}/${a.prefix} dev ${d.name}`, what: `moved ${a.address}/${a.prefix} to ${d.name}` });
    for (const r of routes)
      steps.push({ do: `route add ${routeArgs(r, d.name).join(' ')}`, undo: `route del ${routeArgs(r, d.name).join(' ')}`, what: `moved route ${r.dst} to ${d.name}` });
  }
  if (up && !up.up) steps.push({ do: `link set dev ${up.name} up`, undo: `link set dev ${up.name} down`, what: `brought ${up.name} up` });
  const risky =
    addrs.length || routes.length
      ? `${up!.name} carries ${[...addrs.map((a) => `${a.address}/${a.prefix}`), ...routes.map((r) => `route ${r.dst}`)].join(', ')}; moving it into ${d.name} could cut the host off`
      : undefined;
  return { steps, ...(risky ? { risky } : {}) };
}

export function planOvsBridge(s: OvsState, d: BridgeDesired): OvsCommand[] {
  const cmds: OvsCommand[] = [];
  const br = s.bridges.get(d.name);
  const fake = s.ports.get(d.name);
  if (!br && fake?.fakeBridge) throw new BrickError('CONFLICT', `${d.name} is a fake VLAN bridge on ${fake.bridge}, not a bridge; choose another name`);
  // A bridge's datapath is only set when it is made: moving one between the kernel and userspace re-creates its ports.
  if (br && d.datapathType && datapathOf(br) !== d.datapathType)
    throw new BrickError('CONFLICT', `${d.name} has datapath_type ${datapathOf(br)}, not ${d.datapathType}; remove it first, or ask without opts.datapath_type`);
  if (!br) {
    cmds.push({ args: ['--may-exist', 'add-br', d.name], what: `created OVS bridge ${d.name}` });
    cmds.push({ args: ['set', 'Bridge', d.name, `external_ids:${OVS_OWNER_KEY}=bridge`], what: `marked ${d.name} as brick's` });
    if (d.datapathType) cmds.push({ args: ['set', 'Bridge', d.name, `datapath_type=${d.datapathType}`], what: `set ${d.name} datapath_type ${d.datapathType}` });
  }
  if (d.stp !== undefined && (br?.stp ?? false) !== d.stp)
    cmds.push({ args: ['set', 'Bridge', d.name, `stp_enable=${d.stp}`], what: `turned STP ${d.stp ? 'on' : 'off'} on ${d.name}` });
  const ownIface = s.ports.get(d.name)?.interfaces.find((i) => i.name === d.name);
  if (d.mtu !== undefined && ownIface?.mtuRequest !== d.mtu)
    cmds.push({ args: ['set', 'Interface', d.name, `mtu_request=${d.mtu}`], what: `set ${d.name} mtu ${d.mtu}` });
  if (d.uplink) {
    const p = s.ports.get(d.uplink);
    if (p && p.bridge !== d.name) throw new BrickError('CONFLICT', `uplink ${d.uplink} is already a port of OVS bridge ${p.bridge}; release it there first`);
    if (s.bridges.has(d.uplink)) throw new BrickError('CONFLICT', `uplink ${d.uplink} is an OVS bridge, not a port`);
    if (!p) cmds.push({ args: ['--may-exist', 'add-port', d.name, d.uplink], what: `made ${d.uplink} a port of ${d.name}` });
  }
  return cmds;
}

/** What network_remove_bridge removes: a plain bridge (or control0) brick made, with no guest on it. */
export interface BridgeRemovalPlan {
  /** false: nothing by that name. */
  exists: boolean;
  steps: Step[];
  cmds: OvsCommand[];
}

const REMOVABLE_OWNERS = new Set(['bridge', 'control']);

/**
 * Linux: the uplink (and any other non-guest port) is released, then the bridge deleted. A bridge
 * holding addresses (the host's, moved there by safe apply) is refused: removing it could cut the
 * host off; move them back first.
 */
export function planLinuxRemoveBridge(s: LinuxState, name: string): BridgeRemovalPlan {
  const br = s.links.get(name);
  if (!br) return { exists: false, steps: [], cmds: [] };
  if (br.kind !== 'bridge' || !br.owner || !REMOVABLE_OWNERS.has(br.owner))
    throw new BrickError(
      'CONFLICT',
      br.owner && br.kind === 'bridge'
        ? `${name} is brick's ${br.owner}; remove it with the call for that kind (network_remove_vlan_bridge, network_remove_vxlan_bridge)`
        : `${name} is not a bridge brick made (no alias ${ownerAlias('bridge')}); brick leaves it alone`,
    );
  const ports = portsOf(s, name);
  const guests = ports.filter((p) => isGuestPort(p.name) || p.owner === 'vlan-device' || p.owner === 'vxlan-device');
  if (guests.length) throw new BrickError('CONFLICT', `${name} still has ports ${guests.map((p) => p.name).join(', ')}; detach them (stop the guests) first`);
  const addrs = movableAddrs(s, name);
  if (addrs.length)
    throw new BrickError('CONFLICT', `${name} carries ${addrs.map((a) => `${a.address}/${a.prefix}`).join(', ')}; removing it could cut the host off: move the addresses to another device first`);
  const steps: Step[] = ports.map((p) => ({ do: `link set dev ${p.name} nomaster`, undo: `link set dev ${p.name} master ${name}`, what: `released ${p.name} from ${name}` }));
  steps.push({ do: `link del dev ${name}`, what: `removed bridge ${name}` });
  return { exists: true, steps, cmds: [] };
}

/**
 * Open vSwitch: a real bridge marked brick-owner=bridge, with no guest port (vif/vnet/tap, or a DPDK
 * vhost-user port, connected or not) and no fake bridge on it. Other ports (the uplink) go with it.
 */
export function planOvsRemoveBridge(s: OvsState, name: string): BridgeRemovalPlan {
  const br = s.bridges.get(name);
  if (!br) {
    if (s.ports.get(name)?.fakeBridge) throw new BrickError('CONFLICT', `${name} is a fake VLAN bridge; remove it with network_remove_vlan_bridge`);
    return { exists: false, steps: [], cmds: [] };
  }
  const owner = br.externalIds[OVS_OWNER_KEY];
  if (!owner || !REMOVABLE_OWNERS.has(owner))
    throw new BrickError(
      'CONFLICT',
      owner ? `${name} is brick's ${owner}; remove it with the call for that kind` : `${name} is an OVS bridge brick did not make (no external_ids:${OVS_OWNER_KEY}); brick leaves it alone`,
    );
  const fakes = fakeBridges(s).filter((f) => f.parent === name);
  if (fakes.length) throw new BrickError('CONFLICT', `${name} still has VLAN bridges ${fakes.map((f) => f.name).join(', ')}; remove them first`);
  const guests = portsOfOvsBridge(s, name).filter((p) => isOvsGuestPort(s, p));
  if (guests.length) throw new BrickError('CONFLICT', `${name} still has ports ${guests.join(', ')}; detach them (stop the guests) first${vhostUserHint(s, guests)}`);
  return { exists: true, steps: [], cmds: [{ args: ['--if-exists', 'del-br', name], what: `removed OVS bridge ${name}` }] };
}
