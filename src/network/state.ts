// network_state: the running host as one report (kernel links, addresses, routes; Open vSwitch
// bridges, fake bridges and tunnels; VXLAN bridges) and whether a change waits for confirmation.
import type { XmlRpcStruct, XmlRpcValue } from '../rpc/values.js';
import type { NetContext } from './host/context.js';
import { isGuestPort } from './host/names.js';
import { readLinux, portsOf, type LinuxState } from './host/link-state.js';
import { fakeBridges, isOvsGuestPort, portsOfFakeBridge, portsOfOvsBridge, readOvs, type OvsState } from './host/ovs.js';
import { safeApply } from './host/safe-apply.js';
import { overlayReport } from './overlay/operations.js';

function linuxReport(s: LinuxState): { bridges: XmlRpcValue[]; vlan_devices: XmlRpcValue[]; addresses: XmlRpcValue[]; routes: XmlRpcValue[] } {
  const links = [...s.links.values()].sort((a, b) => a.index - b.index);
  return {
    bridges: links
      .filter((l) => l.kind === 'bridge')
      .map((l) => {
        const ports = portsOf(s, l.name).map((p) => p.name);
        return {
          name: l.name,
          type: 'linux',
          up: l.up,
          mtu: l.mtu,
          stp: l.stp ?? false,
          ports,
          guest_ports: ports.filter(isGuestPort),
          brick_owned: l.owner !== undefined,
          owner: l.owner ?? '',
        };
      }),
    vlan_devices: links
      .filter((l) => l.kind === 'vlan')
      .map((l) => ({ name: l.name, parent: l.vlan?.parent ?? '', vlan: l.vlan?.id ?? 0, master: l.master ?? '', up: l.up, mtu: l.mtu, brick_owned: l.owner !== undefined })),
    addresses: s.addrs.map((a) => ({ dev: a.dev, address: `${a.address}/${a.prefix}`, family: a.family, scope: a.scope })),
    routes: s.routes.map((r) => ({
      family: r.family,
      dst: r.dst,
      dev: r.dev ?? '',
      gateway: r.gateway ?? '',
      protocol: r.protocol ?? '',
      ...(r.metric !== undefined ? { metric: r.metric } : {}),
    })),
  };
}

/** Open vSwitch's bridges and fake bridges; guest_ports as network_remove_bridge counts them (vhost-user ports too). */
export function ovsReport(s: OvsState): XmlRpcValue[] {
  const guest = (n: string) => isOvsGuestPort(s, n);
  const real = [...s.bridges.values()].map((b) => ({
    name: b.name,
    type: 'ovs',
    ports: portsOfOvsBridge(s, b.name),
    guest_ports: portsOfOvsBridge(s, b.name).filter(guest),
    brick_owned: b.externalIds['brick-owner'] !== undefined,
    owner: b.externalIds['brick-owner'] ?? '',
    datapath_type: b.datapathType,
    stp: b.stp,
  }));
  const fake = fakeBridges(s).map((f) => ({
    name: f.name,
    type: 'ovs-fake',
    parent: f.parent,
    vlan: f.vlan,
    ports: portsOfFakeBridge(s, f),
    guest_ports: portsOfFakeBridge(s, f).filter(guest),
    brick_owned: f.owner !== undefined,
    owner: f.owner ?? '',
  }));
  return [...real, ...fake].sort((a, b) => a.name.localeCompare(b.name));
}

export async function networkState(nc: NetContext): Promise<XmlRpcStruct> {
  const linux = linuxReport(await readLinux(nc.host));
  const bridges = nc.host.backend === 'openvswitch' ? [...ovsReport(await readOvs(nc.host)), ...linux.bridges] : linux.bridges;
  return {
    backend: nc.host.backend,
    namespace: nc.host.namespace,
    bridges,
    vlan_devices: linux.vlan_devices,
    addresses: linux.addresses,
    routes: linux.routes,
    ...(await overlayReport(nc)),
    pending_confirmation: safeApply.hasPending,
  };
}
