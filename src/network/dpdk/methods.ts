// XML-RPC methods for DPDK vhost-user ports (SPEC: dpdk_add_port, dpdk_del_port, dpdk_list_ports).
import { emptyIsAbsent, method, optional, options, orNil, param } from '../../rpc/params.js';
import { IfName, Vlan } from '../../rpc/formats.js';
import { addDpdkPort, delDpdkPort, listPorts } from './operations.js';
import { VhostModeName, addRequest } from './plan.js';

export const methods = [
  method({
    name: 'dpdk_add_port',
    params: [
      param('bridge', IfName, 'an Open vSwitch bridge with datapath_type=netdev'),
      optional('opts', orNil(options({ mode: VhostModeName, vlan: Vlan, name: emptyIsAbsent(IfName) })), 'mode (server|client, default server), vlan (1-4094), name'),
    ],
    returns: 'struct',
    help:
      'Add a DPDK vhost-user port for one guest NIC to an OVS-DPDK bridge, in one ovs-vsctl transaction marked ' +
      'external_ids:brick-owner=dpdk. Arguments: bridge (string, a netdev bridge); opts struct: mode "server" (default; ' +
      'type dpdkvhostuser, OVS creates the socket, the guest connects) or "client" (type dpdkvhostuserclient, ' +
      'options:vhost-server-path=<socket>, the guest creates the socket); vlan: access VLAN tag 1-4094 (absent = untagged); ' +
      'name: port name (default: the next free csdpdk-N; concurrent calls never get the same name). Sockets are ' +
      '<dir>/<port>, dir being OVS\'s run dir (network.ovs_rundir, default /var/run/openvswitch) plus ' +
      'other_config:vhost-sock-dir; ovs-vswitchd reads that only when it starts, so a server port\'s socket is the one ' +
      'ovs-vswitchd listens on (the reply and dpdk_list_ports give that path). An explicit name that exists with the same ' +
      'settings and works is success with changed=false; one that exists but is broken (an OVS error on the interface, ' +
      'or a server socket that is gone) is removed and added again (changed=true), unless a guest is connected to it ' +
      '(VERIFY_FAILED, left alone). After adding, the interface must show no OVS error and (server mode) ovs-vswitchd ' +
      'must listen on the socket; otherwise the port is removed again. A socket file nobody listens on where a server ' +
      'port\'s socket goes (left by a killed ovs-vswitchd; OVS cannot bind over it) is removed before adding. ' +
      'Reply: struct {port, bridge, socket, ovs_mode, guest_mode (the libvirt <source mode>: client for a server port, ' +
      'server for a client port), vlan (0 = untagged), changed}. Faults: INVALID_PARAMS (bad bridge/name, vlan 0/4095 or ' +
      'out of range, unknown mode or option; nothing changed), UNSUPPORTED (no OVS or no DPDK on this host), NOT_FOUND ' +
      '(no such bridge), CONFLICT (bridge is not netdev; the name exists with other settings or is not brick\'s), ' +
      'VERIFY_FAILED (OVS did not accept the port; the message quotes OVS; the port was removed — a broken port added ' +
      'again is then gone too, and the message says so), TIMEOUT.',
    handler: async ([bridge, opts], ctx) => addDpdkPort(ctx, addRequest(bridge, opts)),
  }),
  method({
    name: 'dpdk_del_port',
    params: [param('port', IfName, 'a port dpdk_add_port created')],
    returns: 'struct',
    help:
      'Remove a DPDK vhost-user port that brick created (OVS removes its server-mode socket). Argument: port (string). ' +
      'Idempotent: an absent port gives removed=false. Reply: struct {port, removed (bool)}. Faults: INVALID_PARAMS (bad ' +
      'name), CONFLICT (the port exists but is not brick\'s DPDK port — it lacks external_ids:brick-owner=dpdk or is not ' +
      'vhost-user — and is left alone), UNSUPPORTED (no OVS or no DPDK), TIMEOUT.',
    handler: async ([port], ctx) => delDpdkPort(ctx, port),
  }),
  method({
    name: 'dpdk_list_ports',
    params: [],
    returns: 'array',
    help:
      'List every DPDK vhost-user port Open vSwitch has (brick\'s and others\'). No arguments. Reply: array of structs ' +
      '{name, bridge, mode (OVS side: server|client), guest_mode (libvirt <source mode>), tag (access VLAN, 0 = untagged), ' +
      'socket, status (struct: OVS Interface status, e.g. mode=server, status=connected|disconnected), error (OVS ' +
      'Interface error, "" = none), brick_owned (bool)}, sorted by name. Faults: UNSUPPORTED (no OVS or no DPDK), TIMEOUT.',
    handler: async (_args, ctx) => listPorts(ctx),
  }),
];
