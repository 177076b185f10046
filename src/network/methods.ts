// Every network_* method: network_state here, the rest from the feature folders.
import { method } from '../rpc/params.js';
import { netContext, truthfulWhenStopped } from './host/context.js';
import { networkState } from './state.js';
import { methods as bridge } from './bridge/methods.js';
import { methods as overlay } from './overlay/methods.js';
import { methods as dpdk } from './dpdk/methods.js';

const state = [
  method({
    name: 'network_state',
    params: [],
    returns: 'struct',
    help:
      'The running network state, read from the kernel (and Open vSwitch with backend openvswitch). Reply: struct {backend, namespace, ' +
      'bridges: [{name, type linux|ovs|ovs-fake, ports, guest_ports, brick_owned, owner, mtu, up, stp, parent, vlan}], ' +
      'vlan_devices: [{name, parent, vlan, master, brick_owned}], addresses: [{dev, address, family, scope}], routes: [{family, dst, dev, gateway, protocol, metric}], ' +
      'tunnels (backend openvswitch): [{port, bridge, type gre|vxlan, remote, key, ofport, status (link state, or "error"), error, brick_owned}], ' +
      'vxlan_bridges: [{name, vxlan_device, vni, group, remote, dev, mtu, up, ports, brick_owned}], ' +
      'pending_confirmation}. Changes nothing.',
    handler: async (_args, ctx) => networkState(netContext(ctx)),
  }),
];

export const methods = [...state, ...bridge, ...overlay, ...dpdk].map(truthfulWhenStopped);
