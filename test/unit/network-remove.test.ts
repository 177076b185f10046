// network_remove_bridge's planners: only a bridge brick made (or control0), no guest on it, no
// address the host may depend on; the other kinds are pointed at their own remove call.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddrs, parseLinks, type LinuxState } from '../../src/network/host/link-state.js';
import { planLinuxRemoveBridge, planOvsRemoveBridge } from '../../src/network/bridge/bridge.js';
import { planOvsRemoveVlanBridge } from '../../src/network/bridge/vlan-bridge.js';
import { planOvsGc } from '../../src/network/bridge/gc.js';
import { ovsReport } from '../../src/network/state.js';
import { ovsPortsGuard, parseOvs, portSetChanges, type OvsInterface, type OvsState } from '../../src/network/host/ovs.js';
import { BrickError } from '../../src/shared/errors.js';

type L = Record<string, unknown>;
const link = (ifindex: number, ifname: string, extra: L = {}): L => ({ ifindex, ifname, flags: ['UP'], mtu: 1500, ...extra });
const br = (i: number, n: string, alias?: string) => link(i, n, { linkinfo: { info_kind: 'bridge' }, ...(alias ? { ifalias: alias } : {}) });
const linux = (links: L[], addrs: L[] = []): LinuxState => ({ links: parseLinks(JSON.stringify(links)), addrs: parseAddrs(JSON.stringify(addrs)), routes: [] });
const conflict = (re: RegExp) => (e: unknown) => e instanceof BrickError && e.fault === 'CONFLICT' && re.test(e.message);

describe('network_remove_bridge (linux)', () => {
  it("releases the uplink, then deletes brick's bridge; nothing by that name is removed: false", () => {
    const s = linux([br(2, 'br0', 'brick:bridge'), link(3, 'eth0', { master: 'br0' })]);
    assert.deepEqual(planLinuxRemoveBridge(s, 'br0').steps.map((x) => x.do), ['link set dev eth0 nomaster', 'link del dev br0']);
    assert.deepEqual(planLinuxRemoveBridge(s, 'nope'), { exists: false, steps: [], cmds: [] });
    assert.deepEqual(planLinuxRemoveBridge(linux([br(2, 'control0', 'brick:control')]), 'control0').steps.map((x) => x.do), ['link del dev control0']);
  });
  it("refuses a person's bridge, a guest on it, brick's other kinds, and a bridge holding the host's address", () => {
    assert.throws(() => planLinuxRemoveBridge(linux([br(2, 'br0')]), 'br0'), conflict(/not a bridge brick made/));
    assert.throws(() => planLinuxRemoveBridge(linux([link(2, 'eth0')]), 'eth0'), conflict(/not a bridge brick made/));
    assert.throws(() => planLinuxRemoveBridge(linux([br(2, 'br0', 'brick:bridge'), link(3, 'vnet0', { master: 'br0' })]), 'br0'), conflict(/still has ports vnet0/));
    assert.throws(() => planLinuxRemoveBridge(linux([br(2, 'breth0-10', 'brick:vlan-bridge')]), 'breth0-10'), conflict(/network_remove_vlan_bridge/));
    const withAddr = linux([br(2, 'br0', 'brick:bridge')], [{ ifname: 'br0', addr_info: [{ family: 'inet', local: '10.0.0.2', prefixlen: 24, scope: 'global' }] }]);
    assert.throws(() => planLinuxRemoveBridge(withAddr, 'br0'), conflict(/carries 10.0.0.2\/24; removing it could cut the host off/));
  });
});

describe('network_remove_bridge (openvswitch)', () => {
  const ovs = (owner: string | undefined, extraPorts: string[] = [], fake = false): OvsState => {
    const ports = new Map();
    ports.set('br0', { name: 'br0', bridge: 'br0', fakeBridge: false, externalIds: {}, interfaces: [] });
    for (const p of extraPorts) ports.set(p, { name: p, bridge: 'br0', fakeBridge: false, externalIds: {}, interfaces: [] });
    if (fake) ports.set('br0.10', { name: 'br0.10', bridge: 'br0', tag: 10, fakeBridge: true, externalIds: { 'brick-owner': 'vlan-bridge' }, interfaces: [] });
    const all = [...ports.keys()].sort();
    return { bridges: new Map([['br0', { name: 'br0', ports: all, externalIds: (owner ? { 'brick-owner': owner } : {}) as Record<string, string>, datapathType: '', stp: false, portUuids: all.map((n) => `uuid-${n}`) }]]), ports, otherConfig: {} };
  };
  it("deletes brick's bridge with its uplink in one del-br", () => {
    assert.deepEqual(planOvsRemoveBridge(ovs('bridge', ['eth0']), 'br0').cmds.map((c) => c.args), [['--if-exists', 'del-br', 'br0']]);
    assert.equal(planOvsRemoveBridge(ovs('bridge'), 'other').exists, false);
  });
  it("refuses a person's bridge, guests, and VLAN bridges on it", () => {
    assert.throws(() => planOvsRemoveBridge(ovs(undefined), 'br0'), conflict(/brick did not make/));
    assert.throws(() => planOvsRemoveBridge(ovs('bridge', ['vif3.0']), 'br0'), conflict(/still has ports vif3.0/));
    assert.throws(() => planOvsRemoveBridge(ovs('bridge', [], true), 'br0'), conflict(/still has VLAN bridges br0.10/));
    assert.throws(() => planOvsRemoveBridge(ovs('bridge', [], true), 'br0.10'), conflict(/network_remove_vlan_bridge/));
  });
  // A vhost-user port (dpdk_add_port's csdpdk-N, or anyone's) is made for a guest: connected now or
  // not, it is a guest port. Before, only vif/vnet/tap names counted and del-br took it along.
  const vhost = (s: OvsState, name: string, type: string, extra: { bridge?: string; tag?: number; ids?: Record<string, string> } = {}): OvsState => {
    const bridge = extra.bridge ?? 'br0';
    const iface: OvsInterface = { name, type, options: {}, error: '', linkState: '', status: {} };
    s.ports.set(name, { name, bridge, fakeBridge: false, externalIds: extra.ids ?? {}, interfaces: [iface], ...(extra.tag !== undefined ? { tag: extra.tag } : {}) });
    s.bridges.get(bridge)!.ports = [...s.bridges.get(bridge)!.ports, name].sort();
    return s;
  };
  it("refuses a bridge with a DPDK vhost-user port (server or client, brick's or not, whatever its name) and says to use dpdk_del_port", () => {
    const brick = vhost(ovs('bridge', ['eth0']), 'csdpdk-1', 'dpdkvhostuser', { ids: { 'brick-owner': 'dpdk', 'brick-dpdk-mode': 'server' } });
    assert.throws(() => planOvsRemoveBridge(brick, 'br0'), conflict(/^br0 still has ports csdpdk-1; .*csdpdk-1 is a vhost-user port made for a guest: remove it with dpdk_del_port$/));
    const theirs = vhost(ovs('bridge'), 'vhu7', 'dpdkvhostuserclient');
    assert.throws(() => planOvsRemoveBridge(theirs, 'br0'), conflict(/still has ports vhu7;.*vhu7 is a vhost-user port/));
    const both = vhost(vhost(ovs('bridge', ['vnet0']), 'csdpdk-2', 'dpdkvhostuser'), 'csdpdk-3', 'dpdkvhostuserclient');
    assert.throws(() => planOvsRemoveBridge(both, 'br0'), conflict(/still has ports csdpdk-2, csdpdk-3, vnet0;.*csdpdk-2, csdpdk-3 are vhost-user ports made for a guest: remove them with dpdk_del_port$/));
    // A port of another type named like none of those (the uplink, a DPDK NIC) still goes with the bridge.
    assert.equal(planOvsRemoveBridge(vhost(ovs('bridge'), 'dpdk0', 'dpdk'), 'br0').exists, true);
  });
  it("network_state's guest_ports names the vhost-user ports network_remove_bridge refuses for (real and fake bridges)", () => {
    const s = vhost(vhost(ovs('bridge', ['eth0', 'vnet0'], true), 'csdpdk-1', 'dpdkvhostuser', { ids: { 'brick-owner': 'dpdk' } }), 'csdpdk-2', 'dpdkvhostuserclient', { tag: 10 });
    const byName = new Map(ovsReport(s).map((b) => [(b as { name: string }).name, b as { guest_ports: string[] }]));
    assert.deepEqual(byName.get('br0')!.guest_ports, ['csdpdk-1', 'csdpdk-2', 'vnet0']);
    assert.deepEqual(byName.get('br0.10')!.guest_ports, ['csdpdk-2']);
  });
  it('a fake bridge with a vhost-user port on its VLAN is refused (and kept by network_gc) with the same hint', () => {
    const s = vhost(ovs('bridge', [], true), 'csdpdk-4', 'dpdkvhostuser', { tag: 10, ids: { 'brick-owner': 'dpdk' } });
    assert.throws(() => planOvsRemoveVlanBridge(s, 'br0.10'), conflict(/still has ports csdpdk-4;.*remove it with dpdk_del_port$/));
    assert.deepEqual(planOvsGc(s).remove, []);
    assert.deepEqual(planOvsGc(ovs('bridge', [], true)).remove, ['br0.10']);
  });
  it("network_gc holds each fake bridge's parent too: a port joins the VLAN by being added to the parent, and del-br takes it", () => {
    const g = planOvsGc(ovs('bridge', [], true));
    assert.deepEqual([g.names, g.parents], [['br0.10', 'br0'], { 'br0.10': 'br0' }]);
  });
  // The removal's del-br runs in one ovs-vsctl transaction with these: wait-until (ovs-vsctl's copy
  // of the database) and get (verified by ovsdb-server at commit), on the uuids brick read.
  it("ovsPortsGuard: wait-until and get on each judged bridge's port uuids as read, once per bridge", () => {
    const s = parseOvs(
      [
        { headings: ['name', 'ports', 'external_ids', 'datapath_type', 'stp_enable'], data: [['br0', ['set', [['uuid', 'u2'], ['uuid', 'u1']]], ['map', []], '', false]] },
        { headings: ['_uuid', 'name', 'interfaces', 'tag', 'external_ids', 'fake_bridge'], data: [[['uuid', 'u1'], 'br0', ['set', []], ['set', []], ['map', []], false], [['uuid', 'u2'], 'eth0', ['set', []], ['set', []], ['map', []], false]] },
        { headings: ['_uuid', 'name', 'type', 'ofport', 'mtu_request'], data: [] },
        { headings: ['other_config'], data: [[['map', []]]] },
      ]
        .map((t) => JSON.stringify(t))
        .join('\n'),
    );
    assert.deepEqual(s.bridges.get('br0')!.portUuids, ['u1', 'u2']);
    const guard = [['wait-until', 'Bridge', 'br0', 'ports=[u1,u2]'], ['get', 'Bridge', 'br0', 'ports']];
    assert.deepEqual(ovsPortsGuard(s, ['br0', 'br0']), guard);
    assert.deepEqual(ovsPortsGuard(s, []), []);
    assert.throws(() => ovsPortsGuard(s, ['nope']), /not a bridge/);
  });
  it('portSetChanges names the ports added and removed (and a port replaced under the same name, or the bridge gone)', () => {
    const before = ovs('bridge', ['eth0', 'vnet1']);
    const now = ovs('bridge', ['eth0', 'vnet2']);
    assert.deepEqual(portSetChanges(before, now, ['br0']), ['vnet2 added', 'vnet1 removed']);
    assert.deepEqual(portSetChanges(before, ovs('bridge', ['eth0', 'vnet1']), ['br0']), []);
    const replaced = ovs('bridge', ['eth0', 'vnet1']);
    replaced.bridges.get('br0')!.portUuids = ['uuid-br0', 'uuid-eth0', 'uuid-vnet1-again'];
    assert.deepEqual(portSetChanges(before, replaced, ['br0']), ["br0's ports were replaced"]);
    assert.deepEqual(portSetChanges(before, { bridges: new Map() }, ['br0']), ['br0 removed']);
  });
});
