// The overlay network_* XML-RPC methods: GRE/VXLAN tunnels on Open vSwitch (the CloudStack OVS
// plugin's ovstunnel.py) and VXLAN bridges on Linux (modifyvxlan.sh).
import { BrickError } from '../../shared/errors.js';
import { check, emptyIsAbsent, method, optional, options, param } from '../../rpc/params.js';
import { Flag, IfName, LinuxIfName, Multicast, Unicast } from '../../rpc/formats.js';
import { netContext, removeMethod } from '../host/context.js';
import { Datapath } from '../host/ovs.js';
import { ensureOverlayBridge, ensureTunnel, ensureVxlanBridge, removeOverlayBridge, removeTunnel, removeVxlanBridge } from './operations.js';
import { GreKey, Remote, TunnelTypeName, VxlanKey } from './plan.js';
import { Vni } from './vxlan-bridge.js';

const FAULTS =
  'Faults: INVALID_PARAMS (bad name, key, VNI, address or option; nothing changed), NOT_FOUND, CONFLICT (exists but differs, or not brick\'s), ' +
  'VERIFY_FAILED (Open vSwitch refused the interface; it was removed again, the message carries OVS\'s words), COMMAND_FAILED, TIMEOUT.';

export const methods = [
  method({
    name: 'network_ensure_overlay_bridge',
    params: [
      param('bridge', LinuxIfName, 'OVS bridge name: 1-15 letters, digits, _ . -'),
      param('key', GreKey, 'the guest network\'s tunnel key 0-4294967295 (a string for keys past 2^31)'),
      optional('opts', options({ stp: Flag, datapath_type: Datapath }), 'stp (bool, default false), datapath_type (system|netdev, new bridges only)'),
    ],
    returns: 'struct',
    help:
      'Make the Open vSwitch bridge for one overlay (GRE/VXLAN) guest network exist, as ovstunnel.py setup_ovs_bridge does: external_ids brick-owner=overlay-bridge ' +
      'and brick-overlay-key=<key>, STP as asked. Asking again changes nothing; an existing bridge with another key, or one brick did not make, is refused. ' +
      'Reply: struct {bridge, key, changed (bool), changes: [what changed]}. ' + FAULTS,
    handler: async ([bridge, key, o = {}], ctx) => ensureOverlayBridge(netContext(ctx), { bridge, key, stp: o.stp, datapathType: o.datapath_type }),
  }),
  method({
    name: 'network_ensure_tunnel',
    params: [
      param('bridge', IfName, 'the overlay bridge'),
      param('remote_ip', Remote, 'the peer host\'s underlay IPv4 or IPv6 address'),
      // GRE and VXLAN keys differ in range: checked once opts.type is known.
      param('key', GreKey, 'GRE key 0-4294967295, or VXLAN VNI 1-16777215'),
      optional(
        'opts',
        options({ type: emptyIsAbsent(TunnelTypeName), name: emptyIsAbsent(IfName) }),
        'type: gre (default) or vxlan; name: the port name (default <gre|vxl>-<10 hex of sha256(bridge, remote, key)>)',
      ),
    ],
    returns: 'struct',
    help:
      'Make a GRE or VXLAN tunnel port from the bridge to one peer host (ovstunnel.py create_tunnel). The default port name is "gre-" or "vxl-" and the first 10 hex digits ' +
      'of SHA-256 of bridge, remote and key: 14 characters for any key and IPv6 remotes, the same on every call. In the same step brick installs, with ovs-ofctl, flows ' +
      '(priority 1000, a cookie derived from the port name) dropping broadcast and 224.0.0.0/24 multicast arriving from the tunnel, as the OVS plugin does, and checks ' +
      'that OVS accepted the interface (empty error column, an ofport): if not, the port is removed again and the call faults VERIFY_FAILED with OVS\'s words. ' +
      'Asking again changes nothing (flows lost to an ovs-vswitchd restart are put back). Reply: struct {port, ofport, bridge, type, remote, key, changed, changes}. ' + FAULTS,
    handler: async ([bridge, remote, key, o = {}], ctx) => {
      const type = o.type ?? 'gre';
      if (type === 'vxlan') check(VxlanKey, key, 'key');
      return ensureTunnel(netContext(ctx), { bridge, remote, key, type, name: o.name });
    },
  }),
  method({
    name: 'network_remove_tunnel',
    params: [param('bridge', IfName, 'the overlay bridge'), param('port', IfName, 'the tunnel port (as network_ensure_tunnel replied)')],
    returns: 'struct',
    help:
      'Remove a tunnel port brick made and exactly its flows (by cookie), as ovstunnel.py destroy_tunnel. A port brick did not make is refused (CONFLICT). ' +
      'Reply: struct {removed: true, or false when there was no such port; changes}. ' + FAULTS,
    handler: async ([bridge, port], ctx) => removeTunnel(netContext(ctx), bridge, port),
  }),
  removeMethod(
    'network_remove_overlay_bridge',
    { name: 'bridge', help: 'the overlay bridge' },
    'Remove an overlay bridge brick made, with its tunnel ports and flows (ovstunnel.py destroy_ovs_bridge). A bridge brick did not make, or one with other ports ' +
      '(guests) left, is refused (CONFLICT). The delete is conditional in Open vSwitch on the ports brick checked: a port another program adds meanwhile is never deleted with it.',
    FAULTS,
    removeOverlayBridge,
  ),
  method({
    name: 'network_ensure_vxlan_bridge',
    params: [
      param('pif', IfName, 'the underlay interface (if it is a port of a bridge, the VXLAN device is bound to that bridge, as modifyvxlan.sh does)'),
      param('vni', Vni, 'VXLAN network identifier 1-16777215'),
      optional(
        'opts',
        options({ group: emptyIsAbsent(Multicast), remote: emptyIsAbsent(Unicast), name: emptyIsAbsent(LinuxIfName) }),
        'group: multicast group (default 239.<vni>>16>.<vni>>8&255>.<vni&255>, as modifyvxlan.sh); remote: a unicast peer instead of a group; name: bridge name (default brvx-<vni>)',
      ),
    ],
    returns: 'struct',
    help:
      'linuxbridge VXLAN (modifyvxlan.sh) in one ip -batch: the device vxlan<vni> (id vni, the group or remote, dev the underlay, dstport 4789, ttl 10) in the bridge ' +
      'brvx-<vni>, both up, MTU = underlay MTU - 50 (70 over IPv6), both marked as brick\'s (alias brick:vxlan-device / brick:vxlan-bridge) so network_gc removes the ' +
      'bridge once no guest port is left. Asking again changes nothing; a device for the VNI with another group/remote/underlay is refused. ' +
      'Each group counts against the namespace\'s net.ipv4.igmp_max_memberships (default 20): past it the kernel refuses the group, the batch is undone and ' +
      'the COMMAND_FAILED fault says to raise it or use a remote. ' +
      'Reply: struct {bridge, vxlan_device, vni, underlay, changed, changes}. ' + FAULTS,
    handler: async ([pif, vni, o = {}], ctx) => {
      if (o.group && o.remote) throw new BrickError('INVALID_PARAMS', 'opts: give group or remote, not both');
      return ensureVxlanBridge(netContext(ctx), { pif, vni, group: o.group, remote: o.remote, name: o.name });
    },
  }),
  removeMethod(
    'network_remove_vxlan_bridge',
    { name: 'bridge', help: 'the VXLAN bridge (e.g. brvx-<vni>)' },
    'Remove a VXLAN bridge brick made and brick\'s VXLAN device in it (modifyvxlan.sh delete). A bridge brick did not make, or one with other ports (guests), is ' +
      'refused (CONFLICT). network_gc does the same for every unused one.',
    FAULTS,
    removeVxlanBridge,
  ),
];
