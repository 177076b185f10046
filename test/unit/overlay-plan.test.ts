// Overlay planners with no host: tunnel names, keys/VNIs/remotes, OVS plans, drop flows, VXLAN bridge
// batches, GC of VXLAN bridges, and the edge's verify/rollback with a recording NetHost.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  KEY_MAX,
  canonicalIp,
  GreKey,
  Remote,
  TunnelTypeName,
  VxlanKey,
  dropFlows,
  flowsPresent,
  parseOverlayState,
  planOverlayBridge,
  planRemoveOverlayBridge,
  planRemoveTunnel,
  planTunnel,
  tunnelCookie,
  tunnelPortName,
  tunnelReport,
} from '../../src/network/overlay/plan.js';
import { Vni, planRemoveVxlanBridge, planVxlanBridge, vxlanBridges, vxlanGroup } from '../../src/network/overlay/vxlan-bridge.js';
import { parseLinks, type LinuxState } from '../../src/network/host/link-state.js';
import { planLinuxGc } from '../../src/network/bridge/gc.js';
import { ensureTunnel } from '../../src/network/overlay/operations.js';
import type { NetHost } from '../../src/network/host/netns.js';
import type { NetContext } from '../../src/network/host/context.js';
import { KeyedLock } from '../../src/shared/keyed-lock.js';
import { Multicast, Unicast } from '../../src/rpc/formats.js';
import { createLogger } from '../../src/shared/log.js';
import { defaultConfig } from '../../src/config/load.js';
import { check } from '../../src/rpc/params.js';

const checkKey = (v: unknown, type: 'gre' | 'vxlan') => check(type === 'vxlan' ? VxlanKey : GreKey, v, 'key');
const checkVni = (v: unknown) => check(Vni, v, 'vni');
const checkRemote = (v: unknown) => check(Remote, v, 'remote_ip');
import { BrickError } from '../../src/shared/errors.js';

const fault = (fn: () => unknown, f: string, re: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof BrickError && e.fault === f && re.test(e.message));

// ------------------------------------------------------------------ OVS JSON as ovs-vsctl prints it
interface PortSpec {
  name: string;
  ids?: Record<string, string>;
  type?: string;
  options?: Record<string, string>;
  ofport?: number;
  error?: string;
  link?: string;
}
const map = (o: Record<string, string> = {}) => ['map', Object.entries(o)];
function ovsText(bridges: { name: string; ids?: Record<string, string>; stp?: boolean; ports: PortSpec[] }[]): string {
  let n = 0;
  const br: unknown[][] = [];
  const pt: unknown[][] = [];
  const it: unknown[][] = [];
  for (const b of bridges) {
    const pu: unknown[] = [];
    for (const p of [{ name: b.name, type: 'internal', ofport: 65534 } as PortSpec, ...b.ports]) {
      const iu = `i${n++}`;
      const u = `p${n++}`;
      it.push([['uuid', iu], p.name, p.type ?? '', map(p.options), p.ofport ?? ['set', []], p.error ?? ['set', []], p.link ?? 'up']);
      pt.push([['uuid', u], p.name, ['uuid', iu], map(p.ids)]);
      pu.push(['uuid', u]);
    }
    br.push([b.name, ['set', pu], map(b.ids), b.stp ?? false, 'netdev']);
  }
  return [
    { headings: ['name', 'ports', 'external_ids', 'stp_enable', 'datapath_type'], data: br },
    { headings: ['_uuid', 'name', 'interfaces', 'external_ids'], data: pt },
    { headings: ['_uuid', 'name', 'type', 'options', 'ofport', 'error', 'link_state'], data: it },
    { headings: ['other_config'], data: [[map({})]] },
  ]
    .map((t) => JSON.stringify(t))
    .join('\n');
}

const OVERLAY = { 'brick-owner': 'overlay-bridge', 'brick-overlay-key': '42' };
const tunnel = (name: string, remote: string, key: number, extra: Partial<PortSpec> = {}): PortSpec => ({
  name,
  type: 'gre',
  options: { remote_ip: remote, key: String(key) },
  ofport: 5,
  ids: { 'brick-owner': 'tunnel', 'brick-remote': remote, 'brick-key': String(key) },
  ...extra,
});

describe('tunnel names, keys and remotes', () => {
  it('names are ≤ 15 characters for the largest keys and IPv6 remotes, stable, and distinct per bridge/remote/key/type', () => {
    const v6 = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
    const names = new Set<string>();
    for (const type of ['gre', 'vxlan'] as const)
      for (const bridge of ['b', 'abcdefghijklmno'])
        for (const remote of ['255.255.255.254', v6, '10.0.0.1'])
          for (const key of [0, 1, 16777215, KEY_MAX]) {
            const n = tunnelPortName(type, bridge, remote, key);
            assert.ok(n.length <= 15, n);
            assert.match(n, type === 'gre' ? /^gre-[0-9a-f]{10}$/ : /^vxl-[0-9a-f]{10}$/);
            assert.equal(tunnelPortName(type, bridge, remote, key), n, 'stable');
            names.add(n);
          }
    assert.equal(names.size, 2 * 2 * 3 * 4);
    // The same IPv6 address written differently is the same tunnel.
    assert.equal(tunnelPortName('gre', 'b', '2001:DB8:0:0:0:0:0:1', 7), tunnelPortName('gre', 'b', '2001:db8::1', 7));
    assert.equal(canonicalIp('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
  });

  it('cookies are per port, 60 bits', () => {
    assert.match(tunnelCookie('gre-0123456789'), /^0x[0-9a-f]{15}$/);
    assert.notEqual(tunnelCookie('gre-0123456789'), tunnelCookie('gre-0123456788'));
  });

  it('keys: GRE 0-4294967295, VXLAN 1-16777215, integers or decimal strings; anything else names the parameter', () => {
    assert.equal(checkKey(0, 'gre'), 0);
    assert.equal(checkKey('4294967295', 'gre'), KEY_MAX);
    assert.equal(checkKey(16777215, 'vxlan'), 16777215);
    for (const bad of [-1, 4294967296, 1.5, '1e3', '0x10', '', null, undefined, true, [1], 2n ** 40n, ' 5'])
      fault(() => checkKey(bad, 'gre'), 'INVALID_PARAMS', /^key: must be an integer GRE key 0-4294967295/);
    for (const bad of [0, 16777216]) fault(() => checkKey(bad, 'vxlan'), 'INVALID_PARAMS', /^key: .*1-16777215/);
    for (const bad of [0, 16777216, -1, 'x']) fault(() => checkVni(bad), 'INVALID_PARAMS', /^vni: .*1-16777215/);
    assert.equal(checkVni('16777215'), 16777215);
  });

  it('remotes must be unicast IP addresses; types gre or vxlan', () => {
    assert.equal(checkRemote('192.0.2.1'), '192.0.2.1');
    assert.equal(checkRemote('2001:0db8::0001'), '2001:db8::1');
    for (const bad of ['host.example', '192.0.2.1/24', '224.0.0.1', 'ff02::1', '0.0.0.0', '', 5, '1.2.3.4 ', '$(reboot)'])
      fault(() => checkRemote(bad), 'INVALID_PARAMS', /^remote_ip:/);
    assert.equal(check(TunnelTypeName, 'vxlan', 'opts.type'), 'vxlan');
    fault(() => check(TunnelTypeName, 'geneve', 'opts.type'), 'INVALID_PARAMS', /^opts.type:/);
  });
});

describe('OVS overlay plans', () => {
  it('a new overlay bridge: add-br and its marks in one transaction; the same again: nothing; another key or a person\'s bridge: CONFLICT', () => {
    const empty = parseOverlayState(ovsText([]));
    assert.deepEqual(
      planOverlayBridge(empty, { bridge: 'ovb', key: 42, stp: true, datapathType: 'netdev' }).map((c) => c.args),
      [
        ['--may-exist', 'add-br', 'ovb'],
        ['set', 'Bridge', 'ovb', 'external_ids:brick-owner=overlay-bridge', 'external_ids:brick-overlay-key=42', 'stp_enable=true', 'datapath_type=netdev'],
      ],
    );
    const s = parseOverlayState(ovsText([{ name: 'ovb', ids: OVERLAY, stp: true, ports: [] }, { name: 'mine', ports: [] }]));
    assert.deepEqual(planOverlayBridge(s, { bridge: 'ovb', key: 42, stp: true }), []);
    assert.deepEqual(planOverlayBridge(s, { bridge: 'ovb', key: 42, stp: false }).map((c) => c.args), [['set', 'Bridge', 'ovb', 'stp_enable=false']]);
    fault(() => planOverlayBridge(s, { bridge: 'ovb', key: 43 }), 'CONFLICT', /key 42, not 43/);
    fault(() => planOverlayBridge(s, { bridge: 'mine', key: 42 }), 'CONFLICT', /not an overlay bridge brick made/);
  });

  it('a new tunnel: add-port, interface options and marks in one transaction; the same again: nothing', () => {
    const s = parseOverlayState(ovsText([{ name: 'ovb', ids: OVERLAY, ports: [] }]));
    const p = planTunnel(s, { bridge: 'ovb', remote: '192.0.2.9', key: 42, type: 'vxlan' });
    const name = tunnelPortName('vxlan', 'ovb', '192.0.2.9', 42);
    assert.equal(p.port, name);
    assert.deepEqual(
      p.cmds.map((c) => c.args),
      [
        ['add-port', 'ovb', name],
        ['set', 'Interface', name, 'type=vxlan', 'options:remote_ip=192.0.2.9', 'options:key=42'],
        ['set', 'Port', name, 'external_ids:brick-owner=tunnel', 'external_ids:brick-remote=192.0.2.9', 'external_ids:brick-key=42'],
      ],
    );
    const s2 = parseOverlayState(ovsText([{ name: 'ovb', ids: OVERLAY, ports: [tunnel(name, '192.0.2.9', 42, { type: 'vxlan' })] }]));
    assert.deepEqual(planTunnel(s2, { bridge: 'ovb', remote: '192.0.2.9', key: 42, type: 'vxlan' }), { port: name, exists: true, cmds: [] });
  });

  it('refuses a name taken by something else, a twin tunnel under another name, and a missing bridge', () => {
    const s = parseOverlayState(
      ovsText([
        { name: 'ovb', ids: OVERLAY, ports: [tunnel('t1', '192.0.2.9', 42), { name: 'eth1' }] },
        { name: 'other', ports: [] },
      ]),
    );
    fault(() => planTunnel(s, { bridge: 'ovb', remote: '192.0.2.9', key: 43, type: 'gre', name: 't1' }), 'CONFLICT', /t1 exists as brick's gre port to 192.0.2.9 key 42 on ovb/);
    fault(() => planTunnel(s, { bridge: 'ovb', remote: '192.0.2.9', key: 42, type: 'gre', name: 'eth1' }), 'CONFLICT', /eth1 exists/);
    fault(() => planTunnel(s, { bridge: 'ovb', remote: '192.0.2.9', key: 42, type: 'gre' }), 'CONFLICT', /t1 on ovb is already a gre tunnel to 192.0.2.9 with key 42/);
    fault(() => planTunnel(s, { bridge: 'nob', remote: '192.0.2.9', key: 42, type: 'gre' }), 'NOT_FOUND', /nob/);
    fault(() => planTunnel(s, { bridge: 'ovb', remote: '192.0.2.9', key: 1, type: 'gre', name: 'other' }), 'CONFLICT', /other is an OVS bridge/);
  });

  it('removal: only brick\'s tunnels and overlay bridges; absent is {exists: false}; guest ports keep the bridge', () => {
    const s = parseOverlayState(
      ovsText([
        { name: 'ovb', ids: OVERLAY, ports: [tunnel('t1', '192.0.2.9', 42), { name: 'pgre', type: 'gre', options: { remote_ip: '192.0.2.8' } }] },
        { name: 'ovg', ids: OVERLAY, ports: [tunnel('t2', '192.0.2.9', 43), { name: 'vif3.0' }] },
        { name: 'ovc', ids: OVERLAY, ports: [tunnel('t3', '192.0.2.9', 44)] },
      ]),
    );
    assert.deepEqual(planRemoveTunnel(s, 'ovb', 't1').cmds.map((c) => c.args), [['--if-exists', 'del-port', 'ovb', 't1']]);
    assert.deepEqual(planRemoveTunnel(s, 'ovb', 'gone'), { exists: false, cmds: [] });
    fault(() => planRemoveTunnel(s, 'ovb', 'pgre'), 'CONFLICT', /not a tunnel brick made/);
    fault(() => planRemoveTunnel(s, 'ovc', 't1'), 'CONFLICT', /port of ovb, not ovc/);
    fault(() => planRemoveOverlayBridge(s, 'ovg'), 'CONFLICT', /guest ports vif3.0/);
    fault(() => planRemoveOverlayBridge(s, 'ovb'), 'CONFLICT', /ports pgre/);
    assert.deepEqual(planRemoveOverlayBridge(s, 'ovc').cmds.map((c) => c.args), [['--if-exists', 'del-br', 'ovc']]);
    assert.deepEqual(planRemoveOverlayBridge(s, 'nob'), { exists: false, cmds: [] });
  });

  it('network_state lists tunnels with remote, key, type, ofport and status', () => {
    const s = parseOverlayState(ovsText([{ name: 'ovb', ids: OVERLAY, ports: [tunnel('t1', '192.0.2.9', 42), tunnel('t2', '192.0.2.8', 42, { error: 'could not add', ofport: -1 }), { name: 'eth1' }] }]));
    assert.deepEqual(tunnelReport(s), [
      { port: 't1', bridge: 'ovb', type: 'gre', remote: '192.0.2.9', key: '42', ofport: 5, status: 'up', error: '', brick_owned: true },
      { port: 't2', bridge: 'ovb', type: 'gre', remote: '192.0.2.8', key: '42', ofport: -1, status: 'error', error: 'could not add', brick_owned: true },
    ]);
  });

  it('drop flows: broadcast and 224.0.0.0/24 from the tunnel\'s ofport, with its cookie; dump-flows recognises them', () => {
    const f = dropFlows('gre-abc', 7);
    const c = tunnelCookie('gre-abc');
    assert.deepEqual(f, [
      `cookie=${c},priority=1000,in_port=7,dl_dst=ff:ff:ff:ff:ff:ff,actions=drop`,
      `cookie=${c},priority=1000,ip,in_port=7,nw_dst=224.0.0.0/24,actions=drop`,
    ]);
    const dump =
      'NXST_FLOW reply (xid=0x4):\n' +
      ` cookie=${c}, duration=1.2s, table=0, n_packets=0, n_bytes=0, idle_age=1, priority=1000,in_port=7,dl_dst=ff:ff:ff:ff:ff:ff actions=drop\n` +
      ` cookie=${c}, duration=1.2s, table=0, n_packets=0, n_bytes=0, idle_age=1, priority=1000,ip,in_port=7,nw_dst=224.0.0.0/24 actions=drop\n`;
    assert.equal(flowsPresent(dump, 7), true);
    assert.equal(flowsPresent(dump, 8), false, 'ofport changed: reinstall');
    assert.equal(flowsPresent(dump.split('\n').slice(0, 2).join('\n'), 7), false, 'one missing');
    assert.equal(flowsPresent('NXST_FLOW reply (xid=0x4):\n', 7), false);
  });
});

// ------------------------------------------------------------------ Linux VXLAN
function linuxState(links: object[]): LinuxState {
  return { links: parseLinks(JSON.stringify(links)), addrs: [], routes: [] };
}
const eth = (name: string, index: number, extra: object = {}) => ({ ifname: name, ifindex: index, mtu: 1500, flags: ['UP'], address: '52:54:00:00:00:01', ...extra });

describe('VXLAN bridge plans', () => {
  it('the group is derived from the VNI as modifyvxlan.sh does', () => {
    assert.equal(vxlanGroup(1), '239.0.0.1');
    assert.equal(vxlanGroup(100), '239.0.0.100');
    assert.equal(vxlanGroup(70000), '239.1.17.112');
    assert.equal(vxlanGroup(16777215), '239.255.255.255');
  });

  it('a new VXLAN bridge is one exact batch: device on the pif, marks, MTU − 50, enslaved, up', () => {
    const s = linuxState([eth('eth1', 2)]);
    const p = planVxlanBridge(s, { pif: 'eth1', vni: 5000 });
    assert.equal(p.underlay, 'eth1');
    assert.deepEqual(
      p.steps.map((x) => x.do),
      [
        'link add vxlan5000 type vxlan id 5000 group 239.0.19.136 dev eth1 dstport 4789 ttl 10',
        'link set dev vxlan5000 alias brick:vxlan-device',
        'link set dev vxlan5000 mtu 1450',
        'link add name brvx-5000 type bridge',
        'link set dev brvx-5000 alias brick:vxlan-bridge',
        'link set dev brvx-5000 mtu 1450',
        'link set dev vxlan5000 master brvx-5000',
        'link set dev vxlan5000 up',
        'link set dev brvx-5000 up',
      ],
    );
    const v6 = planVxlanBridge(s, { pif: 'eth1', vni: 7, remote: '2001:db8::2', name: 'ovl7' });
    assert.equal(v6.steps[0].do, 'link add vxlan7 type vxlan id 7 remote 2001:db8::2 dev eth1 dstport 4789 ttl 10');
    assert.ok(v6.steps.some((x) => x.do === 'link set dev ovl7 mtu 1430'), 'MTU − 70 over IPv6');
  });

  it('a pif that is a bridge port: the VXLAN device is bound to that bridge (where the address is)', () => {
    const s = linuxState([eth('cloudbr0', 2, { mtu: 9000, linkinfo: { info_kind: 'bridge' } }), eth('eth0', 3, { mtu: 9000, master: 'cloudbr0' })]);
    const p = planVxlanBridge(s, { pif: 'eth0', vni: 9 });
    assert.equal(p.underlay, 'cloudbr0');
    assert.match(p.steps[0].do, / dev cloudbr0 /);
    assert.ok(p.steps.some((x) => x.do === 'link set dev brvx-9 mtu 8950'));
  });

  const made = [
    eth('eth1', 2),
    { ...eth('vxlan9', 3, { mtu: 1450, master: 'brvx-9', ifalias: 'brick:vxlan-device' }), linkinfo: { info_kind: 'vxlan', info_data: { id: 9, group: '239.0.0.9', link: 'eth1', port: 4789 } } },
    { ...eth('brvx-9', 4, { mtu: 1450, ifalias: 'brick:vxlan-bridge' }), linkinfo: { info_kind: 'bridge', info_data: { stp_state: 0 } } },
  ];

  it('asking again changes nothing; a device with another group, underlay or bridge is refused', () => {
    const s = linuxState(made);
    assert.deepEqual(planVxlanBridge(s, { pif: 'eth1', vni: 9 }).steps, []);
    fault(() => planVxlanBridge(s, { pif: 'eth1', vni: 9, group: '239.1.1.1' }), 'CONFLICT', /vxlan9 exists with group 239.0.0.9, not 239.1.1.1/);
    fault(() => planVxlanBridge(s, { pif: 'eth1', vni: 9, remote: '192.0.2.1' }), 'CONFLICT', /remote none, not 192.0.2.1/);
    fault(() => planVxlanBridge(s, { pif: 'eth1', vni: 9, name: 'other9' }), 'CONFLICT', /already a port of brvx-9/);
    fault(() => planVxlanBridge(s, { pif: 'eth1', vni: 10, name: 'eth1' }), 'INVALID_PARAMS', /cannot be named eth1/);
    fault(() => planVxlanBridge(s, { pif: 'nope', vni: 9 }), 'NOT_FOUND', /pif nope/);
    fault(() => planVxlanBridge(s, { pif: 'eth1', vni: 10, name: 'brvx-9' }), 'CONFLICT', /brvx-9 already carries VXLAN device vxlan9 \(VNI 9\)/);
    fault(() => planVxlanBridge(linuxState([eth('eth1', 2), eth('vxlan9', 3)]), { pif: 'eth1', vni: 9 }), 'CONFLICT', /vxlan9 exists but is not VXLAN 9/);
  });

  it('an IPv6 group or remote is compared as an address: ip prints it compressed and lower case, the caller may not have', () => {
    const v6 = (id: number, data: Record<string, unknown>) => [
      eth('eth1', 2),
      { ...eth(`vxlan${id}`, 3, { mtu: 1430, master: `brvx-${id}`, ifalias: 'brick:vxlan-device' }), linkinfo: { info_kind: 'vxlan', info_data: { id, link: 'eth1', port: 4789, ...data } } },
      { ...eth(`brvx-${id}`, 4, { mtu: 1430, ifalias: 'brick:vxlan-bridge' }), linkinfo: { info_kind: 'bridge', info_data: { stp_state: 0 } } },
    ];
    assert.deepEqual(planVxlanBridge(linuxState(v6(7, { group6: 'ff05::1' })), { pif: 'eth1', vni: 7, group: 'FF05:0:0::0001' }).steps, []);
    assert.deepEqual(planVxlanBridge(linuxState(v6(8, { remote6: '2001:db8::1' })), { pif: 'eth1', vni: 8, remote: '2001:0DB8::1' }).steps, []);
    fault(() => planVxlanBridge(linuxState(v6(8, { remote6: '2001:db8::1' })), { pif: 'eth1', vni: 8, remote: '2001:db8::2' }), 'CONFLICT', /remote 2001:db8::1, not 2001:db8::2/);
  });

  it('a group or remote with a zone (fe80::1%eth0) is refused, as the tunnel remote is', () => {
    fault(() => check(Unicast, 'fe80::1%eth1', 'opts.remote'), 'INVALID_PARAMS', /^opts\.remote: "fe80::1%eth1" carries a zone \("%eth1"\); give the address alone/);
    fault(() => check(Multicast, 'ff02::1%eth1', 'opts.group'), 'INVALID_PARAMS', /^opts\.group: "ff02::1%eth1" carries a zone/);
    fault(() => checkRemote('fe80::1%eth1'), 'INVALID_PARAMS', /^remote_ip: "fe80::1%eth1" carries a zone/);
  });

  it('removal and GC: brick\'s unused VXLAN bridge goes with its device; a guest port keeps it; a person\'s is never touched', () => {
    const s = linuxState(made);
    assert.deepEqual(planRemoveVxlanBridge(s, 'brvx-9').steps.map((x) => x.do), ['link del dev vxlan9', 'link del dev brvx-9']);
    assert.deepEqual(planLinuxGc(s).remove, ['brvx-9']);
    assert.deepEqual(planLinuxGc(s).names.sort(), ['brvx-9', 'vxlan9']);
    const inUse = linuxState([...made, eth('vnet0', 5, { master: 'brvx-9' })]);
    assert.deepEqual(planLinuxGc(inUse).remove, []);
    fault(() => planRemoveVxlanBridge(inUse, 'brvx-9'), 'CONFLICT', /still has ports vnet0/);
    const persons = linuxState([eth('eth1', 2), { ...eth('br9', 4), linkinfo: { info_kind: 'bridge' } }]);
    assert.deepEqual(planLinuxGc(persons).remove, []);
    fault(() => planRemoveVxlanBridge(persons, 'br9'), 'CONFLICT', /not a VXLAN bridge brick made/);
    assert.deepEqual(vxlanBridges(s), [
      { name: 'brvx-9', vxlan_device: 'vxlan9', vni: 9, group: '239.0.0.9', remote: '', dev: 'eth1', mtu: 1450, up: true, ports: ['vxlan9'], brick_owned: true },
    ]);
  });
});

// ------------------------------------------------------------------ the edge: verify and roll back
function fakeHost(opts: { error?: string; ofctlFails?: boolean }) {
  const calls: string[] = [];
  let added = false;
  const state = () =>
    ovsText([
      {
        name: 'ovb',
        ids: OVERLAY,
        ports: added ? [{ ...tunnel(tunnelPortName('gre', 'ovb', '192.0.2.9', 42), '192.0.2.9', 42), ...(opts.error ? { error: opts.error, ofport: -1 } : {}) }] : [],
      },
    ]);
  const ok = (stdout = '') => ({ code: 0, stdout, stderr: '' });
  const host: NetHost = {
    namespace: '',
    backend: 'openvswitch',
    timeoutMs: 1000,
    changed: [],
    ip: async () => ok(),
    ipBatch: async () => ok(),
    vsctl: async (args) => {
      if (args.includes('list')) return ok(state());
      calls.push('vsctl ' + args.join(' '));
      if (args.includes('add-port')) added = true;
      if (args.includes('del-port')) added = false;
      return ok();
    },
    ofctl: async (args, o) => {
      calls.push('ofctl ' + args.join(' ') + (o?.input ? ` <<${o.input.trim().split('\n').length} lines` : ''));
      if (opts.ofctlFails && args[0] === 'add-flows') throw new BrickError('COMMAND_FAILED', 'ovs-ofctl: add-flows: connection refused');
      return ok('NXST_FLOW reply (xid=0x4):\n');
    },
  };
  const locks = new KeyedLock();
  const nc: NetContext = { host, locks, keyedLock: locks, config: defaultConfig(), log: createLogger({ svc: 'test', level: 'silent' }) };
  return { nc, calls, isAdded: () => added };
}

describe('ensureTunnel at the edge', () => {
  it('OVS refusing the interface: the port is removed again and VERIFY_FAILED carries OVS\'s words', async () => {
    const { nc, calls, isAdded } = fakeHost({ error: 'could not add network device gre-x to ofproto (File exists)' });
    await assert.rejects(ensureTunnel(nc, { bridge: 'ovb', remote: '192.0.2.9', key: 42, type: 'gre' }), (e: unknown) => {
      assert.ok(e instanceof BrickError);
      assert.equal(e.fault, 'VERIFY_FAILED');
      assert.match(e.message, /did not accept gre tunnel gre-[0-9a-f]{10} on ovb to 192\.0\.2\.9: could not add network device gre-x to ofproto \(File exists\); brick removed it again/);
      return true;
    });
    assert.equal(isAdded(), false);
    assert.ok(calls.some((c) => c.startsWith('vsctl --no-wait --if-exists del-port ovb gre-')), calls.join('\n'));
    assert.ok(!calls.some((c) => c.startsWith('ofctl add-flows')), 'no flows for a refused port');
  });

  it('flows failing: the new port is removed again; success installs exactly two flows from stdin', async () => {
    const bad = fakeHost({ ofctlFails: true });
    await assert.rejects(ensureTunnel(bad.nc, { bridge: 'ovb', remote: '192.0.2.9', key: 42, type: 'gre' }), /connection refused; tunnel gre-[0-9a-f]{10} was removed again/);
    assert.equal(bad.isAdded(), false);
    assert.deepEqual(bad.nc.host.changed, [], 'the call\'s journal still lists the tunnel removed again as left in place');
    const good = fakeHost({});
    const r = await ensureTunnel(good.nc, { bridge: 'ovb', remote: '192.0.2.9', key: 42, type: 'gre' });
    assert.equal(r.ofport, 5);
    assert.equal(r.changed, true);
    assert.ok(good.calls.includes('ofctl add-flows ovb - <<2 lines'), good.calls.join('\n'));
    assert.equal(good.calls.filter((c) => c.startsWith('vsctl')).length, 1, 'one ovs-vsctl transaction');
  });
});
