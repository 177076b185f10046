// The bridge methods: plain and VLAN bridges, control0, confirm, GC (overlay/ and dpdk/ have theirs).
import { emptyIsAbsent, method, optional, options, param } from '../../rpc/params.js';
import { Flag, IfName, LinuxIfName, Mtu, Vlan, seconds } from '../../rpc/formats.js';
import { netContext, removeMethod } from '../host/context.js';
import { Datapath } from '../host/ovs.js';
import { ControlCidr, setupControl } from './control0.js';
import { ensureBridge, ensureVlanBridge, networkGc, removeBridge, removeVlanBridge } from './operations.js';
import { safeApply } from '../host/safe-apply.js';
import { OVS_GUARD_WAIT_S } from '../host/ovs-removal.js';

const FAULTS = 'Faults: INVALID_PARAMS (bad name, VLAN or option; nothing changed), NOT_FOUND, CONFLICT (exists but differs, or not brick\'s), COMMAND_FAILED (the batch failed; earlier steps were undone), TIMEOUT.';

export const methods = [
  method({
    name: 'network_ensure_bridge',
    params: [
      param('name', LinuxIfName, 'bridge name: 1-15 letters, digits, _ . -'),
      optional(
        'opts',
        options({ uplink: emptyIsAbsent(IfName), mtu: Mtu, stp: Flag, confirm_within_s: seconds(3600), datapath_type: Datapath }),
        'uplink (interface to enslave), mtu, stp (bool), confirm_within_s, datapath_type (OVS)',
      ),
    ],
    returns: 'struct',
    help:
      'Make the bridge exist and be up, with the uplink as a port, the MTU (default: the uplink\'s) and STP setting asked for. A new bridge is marked as brick\'s. ' +
      'When the uplink carries the host\'s addresses or routes, brick moves them (and its MAC) to the bridge; because that can cut the host off it is only done with ' +
      'opts.confirm_within_s, and rolled back unless network_confirm comes within that many seconds. Asking again changes nothing. ' +
      'Reply: struct {bridge, changed (bool), changes: [what changed], pending_confirmation, confirm_by}. ' + FAULTS,
    handler: async ([name, o = {}], ctx) =>
      ensureBridge(netContext(ctx), { name, uplink: o.uplink, mtu: o.mtu, stp: o.stp, datapathType: o.datapath_type }, { confirmWithinS: o.confirm_within_s }),
  }),
  method({
    name: 'network_ensure_vlan_bridge',
    params: [
      param('parent', IfName, 'a bridge (its physical uplink carries the VLAN) or the physical interface'),
      param('vlan', Vlan, 'VLAN id 1-4094'),
      optional('opts', options({ name: emptyIsAbsent(LinuxIfName) }), 'name: the bridge name (default network.vlan_bridge_name)'),
    ],
    returns: 'struct',
    help:
      'Make the bridge for a VLAN exist. linuxbridge: VLAN device <pif>.<vlan> on the physical interface and a bridge named by network.vlan_bridge_name ' +
      '({bridge}.{vlan} Ovm3, br{pif}-{vlan} KVM), the device enslaved, both up, the uplink MTU copied, both marked as brick\'s. openvswitch: a fake bridge ' +
      '(add-br NAME PARENT VLAN) with external_ids:brick-owner. Idempotent and safe to call concurrently. Reply: struct {bridge, vlan_device ("" on OVS), vlan, changed, changes}. ' +
      FAULTS,
    handler: async ([parent, vlan, o = {}], ctx) =>
      ensureVlanBridge(netContext(ctx), { parent, vlan, name: o.name, pattern: ctx.config.network.vlan_bridge_name }),
  }),
  removeMethod(
    'network_remove_bridge',
    { name: 'name', help: 'a bridge brick made with network_ensure_bridge (or control0)' },
    'Remove a bridge brick made (network_ensure_bridge, network_setup_control): its uplink is released, the bridge deleted. Refused (CONFLICT, nothing changed) for a bridge brick did not make, ' +
      'one with guest ports or brick\'s VLAN/VXLAN devices or fake VLAN bridges on it, one that holds addresses (removing it could cut the host off), and for the other kinds brick makes ' +
      '(they have their own remove call). openvswitch: the delete is conditional in Open vSwitch on the ports brick checked, so a port another program adds meanwhile is never deleted ' +
      `with the bridge: brick judges again (a guest port: CONFLICT naming it, after up to ${OVS_GUARD_WAIT_S} s).`,
    FAULTS,
    removeBridge,
  ),
  removeMethod(
    'network_remove_vlan_bridge',
    { name: 'name', help: 'the VLAN bridge' },
    'Remove a VLAN bridge brick made, and brick\'s VLAN device under it. A bridge that is not brick\'s, or still has other ports (guests), is refused (CONFLICT). ' +
      'openvswitch: as network_remove_bridge, the delete is conditional on the parent\'s ports brick checked.',
    FAULTS,
    removeVlanBridge,
  ),
  method({
    name: 'network_confirm',
    params: [],
    returns: 'struct',
    help:
      'Keep the network change waiting for confirmation (one applied with confirm_within_s). Call it over the new network path: that it arrives proves the host ' +
      'is still reachable. Reply: struct {kept: [changes]}. Faults: NOT_READY when nothing is waiting (the message says if it was already rolled back).',
    handler: async () => safeApply.confirm(),
  }),
  method({
    name: 'network_gc',
    params: [optional('opts', options({ dry_run: Flag }), 'dry_run (bool): report only')],
    returns: 'array',
    help:
      'Remove the VLAN bridges (and VXLAN bridges) brick made whose only port left is brick\'s own VLAN (VXLAN) device: a guest port (vif*, vnet*, tap*) or any other port keeps a bridge, ' +
      'and bridges brick did not make are never touched. Runs by itself every network.gc_interval_s when that is > 0. Reply: array of the bridge names removed ' +
      '(with dry_run: that would be). ' + FAULTS,
    handler: async ([o = {}], ctx) => networkGc(netContext(ctx), o.dry_run ?? false),
  }),
  method({
    name: 'network_setup_control',
    params: [
      optional('dev', emptyIsAbsent(LinuxIfName), 'default control0'),
      optional('cidr', emptyIsAbsent(ControlCidr), 'default 169.254.0.1/16; a network (169.254.0.0/16) means its first host'),
    ],
    returns: 'struct',
    help:
      'Set up the link-local control network: the bridge exists and is up with ARP on, holds the address, the only route for its network goes through it ' +
      '(zeroconf\'s routes on other devices are removed; a network overlapping another device\'s own address, or /0, is refused, nothing changed), NOZEROCONF=yes in /etc/sysconfig/network where that file exists, a stale ' +
      'network-scripts/ifcfg-<dev> removed (with network.namespace set no host file is touched: nozeroconf and ifcfg say skipped). Each step is idempotent. Reply: struct {dev, address, changed, changes, steps: {bridge, link_up, arp, address, ' +
      'other_routes_removed, route, nozeroconf, ifcfg}}. ' + FAULTS,
    handler: async ([dev = 'control0', cidr = '169.254.0.1/16'], ctx) => setupControl(ctx, dev, cidr),
  }),
];
