// The network planners, parsers and apply logic, with no host: state in, plan out.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddrs, parseLinks, parseRoutes, type LinuxState } from '../../src/network/host/link-state.js';
import { planLinuxVlanBridge, planLinuxRemoveVlanBridge, planOvsVlanBridge } from '../../src/network/bridge/vlan-bridge.js';
import { planLinuxBridge, planOvsBridge } from '../../src/network/bridge/bridge.js';
import { planLinuxGc } from '../../src/network/bridge/gc.js';
import { controlAddress, planControl, withNozeroconf } from '../../src/network/bridge/control0.js';
import { vlanBridgeName, vlanDeviceName } from '../../src/network/host/names.js';
import { check } from '../../src/rpc/params.js';
import { IfName, LinuxIfName, Mtu, Vlan } from '../../src/rpc/formats.js';

const checkIfName = (v: unknown, name: string) => check(IfName, v, name);
const checkVlan = (v: unknown) => check(Vlan, v, 'vlan');
const checkMtu = (v: unknown) => check(Mtu, v, 'mtu');
import { applyOvs, applySteps, forgetUndone, ovsTransactionArgs, undoLines } from '../../src/network/host/plan.js';
import { netHost } from '../../src/network/host/netns.js';
import { parseOvs, OVS_READ_ARGS } from '../../src/network/host/ovs.js';
import { SafeApply } from '../../src/network/host/safe-apply.js';
import { recordingRunner } from '../../src/shared/run.js';
import { CHILD_PATH } from '../../src/shared/host-tools.js';
import { BrickError } from '../../src/shared/errors.js';
import { networkConfig } from '../fixtures/network-ctx.js';
import { createLogger } from '../../src/shared/log.js';

type L = Record<string, unknown>;
const link = (ifindex: number, ifname: string, extra: L = {}): L => ({ ifindex, ifname, flags: ['BROADCAST', 'MULTICAST', 'UP'], mtu: 1500, address: `02:00:00:00:00:0${ifindex}`, ...extra });
const bridge = (i: number, n: string, extra: L = {}) => link(i, n, { linkinfo: { info_kind: 'bridge', info_data: { stp_state: 0 } }, ...extra });
function state(links: L[], addrs: L[] = [], routes4: L[] = []): LinuxState {
  return { links: parseLinks(JSON.stringify(links)), addrs: parseAddrs(JSON.stringify(addrs)), routes: parseRoutes(JSON.stringify(routes4), 4) };
}

// A KVM host: eth1 (MTU 9000) under cloudbr1; an Ovm3 host: eth0 under xenbr0.
const host = state([
  link(1, 'lo', { flags: ['LOOPBACK', 'UP'], mtu: 65536 }),
  link(2, 'eth1', { mtu: 9000, master: 'cloudbr1' }),
  bridge(3, 'cloudbr1', { mtu: 9000 }),
  link(4, 'vnet0', { master: 'cloudbr1', linkinfo: { info_kind: 'tun' } }),
]);

describe('names', () => {
  it('accepts kernel-sized, strict names and VLANs 1-4094 only', () => {
    assert.equal(checkIfName('xenbr0.4094', 'n'), 'xenbr0.4094');
    for (const bad of ['', 'a'.repeat(16), 'a b', 'a/b', 'a:b', '-x', '.x', '..', 'br$(x)', 'é0'])
      assert.throws(() => checkIfName(bad, 'name'), (e: unknown) => e instanceof BrickError && e.fault === 'INVALID_PARAMS' && /^name: /.test(e.message));
    assert.equal(checkVlan(1), 1);
    assert.equal(checkVlan('4094'), 4094);
    for (const bad of [0, 4095, -1, 1.5, '1e3', '', null, '0x10']) assert.throws(() => checkVlan(bad), /vlan: .+ is not a VLAN id: must be an integer 1-4094/);
  });
  it('refuses "all" and "default" for a Linux interface brick makes (the kernel refuses them), not for other ports', () => {
    for (const n of ['all', 'default'])
      assert.throws(() => check(LinuxIfName, n, 'name'), (e: unknown) => e instanceof BrickError && e.fault === 'INVALID_PARAMS' && new RegExp(`^name: "${n}" is reserved by the kernel`).test(e.message));
    for (const n of ['ALL', 'Default', 'all0', 'default.5', 'xenbr0']) assert.equal(check(LinuxIfName, n, 'name'), n);
    // A DPDK vhost-user or OVS tunnel port never becomes a kernel device: its name format is unchanged.
    assert.equal(checkIfName('all', 'port'), 'all');
    assert.throws(() => vlanBridgeName('{bridge}', { bridge: 'default', pif: 'eth0', vlan: 5 }), /"default" is reserved/);
  });
  it('refuses if<digits> for a Linux interface brick makes (iproute2 reads a missing one as an interface index), not for other ports', () => {
    for (const [n, index] of [['if3', 3], ['if12', 12], ['if3.10', 3], ['if0', 0], ['if-4294967293', 3], ['if007x', 7]] as const)
      assert.throws(
        () => check(LinuxIfName, n, 'name'),
        (e: unknown) => e instanceof BrickError && e.fault === 'INVALID_PARAMS' && e.message.startsWith(`name: "${n}" is read by iproute2 as interface index ${index} whenever no link has that name`),
      );
    for (const n of ['ifb0', 'iface0', 'IF3', 'if', 'if-x', 'xif3', 'wif3']) assert.equal(check(LinuxIfName, n, 'name'), n);
    assert.equal(checkIfName('if3', 'port'), 'if3');
    assert.throws(() => vlanDeviceName('if2', 10), (e: unknown) => e instanceof BrickError && /^vlan device \(pif\.vlan\): "if2\.10" is read by iproute2 as interface index 2/.test(e.message));
  });
  it('fills the vlan_bridge_name pattern and refuses a result over 15 characters', () => {
    assert.equal(vlanBridgeName('{bridge}.{vlan}', { bridge: 'xenbr0', pif: 'eth0', vlan: 200 }), 'xenbr0.200');
    assert.equal(vlanBridgeName('br{pif}-{vlan}', { bridge: 'cloudbr1', pif: 'eth1', vlan: 100 }), 'breth1-100');
    assert.throws(() => vlanBridgeName('{bridge}.{vlan}', { bridge: 'c0a80100abcd', pif: 'eth0', vlan: 4000 }), /17 characters/);
  });
});

describe('VLAN bridge plan (linuxbridge)', () => {
  it('is exactly the batch modifyvlan.sh would run, plus ownership marks and the uplink MTU', () => {
    const { names, steps } = planLinuxVlanBridge(host, { parent: 'cloudbr1', vlan: 100, pattern: 'br{pif}-{vlan}' });
    assert.deepEqual(names, { bridge: 'breth1-100', pif: 'eth1', vlanDevice: 'eth1.100' });
    assert.deepEqual(
      steps.map((s) => s.do),
      [
        'link add link eth1 name eth1.100 type vlan id 100',
        'link set dev eth1.100 alias brick:vlan-device',
        'link set dev eth1.100 mtu 9000',
        'link add name breth1-100 type bridge',
        'link set dev breth1-100 alias brick:vlan-bridge',
        'link set dev breth1-100 mtu 9000',
        'link set dev eth1.100 master breth1-100',
        'link set dev eth1.100 up',
        'link set dev breth1-100 up',
      ],
    );
    // The undo of a half-applied batch removes what it made, last first.
    assert.deepEqual(undoLines(steps), ['link set dev eth1.100 nomaster', 'link del dev breth1-100', 'link del dev eth1.100']);
  });
  it('Ovm3 naming: {bridge}.{vlan} on the parent bridge; a pif as parent names itself', () => {
    assert.equal(planLinuxVlanBridge(host, { parent: 'cloudbr1', vlan: 7, pattern: '{bridge}.{vlan}' }).names.bridge, 'cloudbr1.7');
    assert.equal(planLinuxVlanBridge(host, { parent: 'eth1', vlan: 7, pattern: 'br{bridge}-{vlan}' }).names.bridge, 'breth1-7');
    // {bridge}.{vlan} on a pif would name the bridge like the VLAN device: refused before the kernel sees it.
    assert.throws(() => planLinuxVlanBridge(host, { parent: 'eth1', vlan: 7, pattern: '{bridge}.{vlan}' }), /is the VLAN device's own name/);
  });
  it('changes nothing when it all exists, and refuses a device that is something else', () => {
    const done = state([
      ...[...host.links.values()].map((l) => link(l.index, l.name, { mtu: l.mtu, ...(l.master ? { master: l.master } : {}), ...(l.kind ? { linkinfo: { info_kind: l.kind } } : {}) })),
      link(10, 'eth1.100', { mtu: 9000, master: 'breth1-100', ifalias: 'brick:vlan-device', link: 'eth1', linkinfo: { info_kind: 'vlan', info_data: { id: 100 } } }),
      bridge(11, 'breth1-100', { mtu: 9000, ifalias: 'brick:vlan-bridge' }),
    ]);
    assert.deepEqual(planLinuxVlanBridge(done, { parent: 'cloudbr1', vlan: 100, pattern: 'br{pif}-{vlan}' }).steps, []);
    assert.throws(() => planLinuxVlanBridge(done, { parent: 'cloudbr1', vlan: 100, pattern: 'br{pif}-{vlan}', name: 'lo' }), /already a port of breth1-100/);
    const wrong = state([...[host.links.get('eth1')!].map(() => link(2, 'eth1')), link(10, 'eth1.100', { link: 'eth1', linkinfo: { info_kind: 'vlan', info_data: { id: 101 } } })]);
    assert.throws(() => planLinuxVlanBridge(wrong, { parent: 'eth1', vlan: 100, pattern: 'br{pif}-{vlan}' }), (e: unknown) => e instanceof BrickError && e.fault === 'CONFLICT' && /id 101/.test(e.message));
  });
  it('OVS: one transaction, add-br NAME PARENT VLAN then the owner mark', () => {
    const ovs = parseOvs(
      [
        { headings: ['name', 'ports', 'external_ids', 'datapath_type', 'stp_enable'], data: [['xenbr0', ['set', [['uuid', 'p1'], ['uuid', 'p2']]], ['map', []], '', false]] },
        { headings: ['_uuid', 'name', 'interfaces', 'tag', 'external_ids', 'fake_bridge'], data: [[['uuid', 'p1'], 'xenbr0', ['uuid', 'i1'], ['set', []], ['map', []], false], [['uuid', 'p2'], 'eth0', ['uuid', 'i2'], ['set', []], ['map', []], false]] },
        { headings: ['_uuid', 'name', 'type', 'ofport', 'mtu_request'], data: [[['uuid', 'i1'], 'xenbr0', 'internal', 65534, ['set', []]], [['uuid', 'i2'], 'eth0', '', 1, ['set', []]]] },
        { headings: ['other_config'], data: [[['map', []]]] },
      ]
        .map((t) => JSON.stringify(t))
        .join('\n'),
    );
    const { names, cmds } = planOvsVlanBridge(ovs, { parent: 'xenbr0', vlan: 200, pattern: 'br{pif}-{vlan}' });
    assert.equal(names.bridge, 'breth0-200');
    assert.deepEqual(ovsTransactionArgs(cmds), ['--', '--may-exist', 'add-br', 'breth0-200', 'xenbr0', '200', '--', 'set', 'Port', 'breth0-200', 'external_ids:brick-owner=vlan-bridge']);
    assert.equal(OVS_READ_ARGS[0], '--format=json');
  });
  it('OVS: an existing bridge asked for another datapath_type is CONFLICT ("" is system), the same one changes nothing', () => {
    const ovs = (dp: string) =>
      parseOvs(
        [
          { headings: ['name', 'ports', 'external_ids', 'datapath_type', 'stp_enable'], data: [['xenbr0', ['set', [['uuid', 'p1']]], ['map', []], dp, false]] },
          { headings: ['_uuid', 'name', 'interfaces', 'tag', 'external_ids', 'fake_bridge'], data: [[['uuid', 'p1'], 'xenbr0', ['uuid', 'i1'], ['set', []], ['map', []], false]] },
          { headings: ['_uuid', 'name', 'type', 'ofport', 'mtu_request'], data: [[['uuid', 'i1'], 'xenbr0', 'internal', 65534, ['set', []]]] },
          { headings: ['other_config'], data: [[['map', []]]] },
        ]
          .map((t) => JSON.stringify(t))
          .join('\n'),
      );
    for (const [dp, want, have] of [['', 'netdev', 'system'], ['system', 'netdev', 'system'], ['netdev', 'system', 'netdev']])
      assert.throws(
        () => planOvsBridge(ovs(dp), { name: 'xenbr0', datapathType: want }),
        (e: unknown) => e instanceof BrickError && e.fault === 'CONFLICT' && e.message.startsWith(`xenbr0 has datapath_type ${have}, not ${want}`),
      );
    for (const [dp, want] of [['', 'system'], ['netdev', 'netdev'], ['', undefined]] as const) assert.deepEqual(planOvsBridge(ovs(dp), { name: 'xenbr0', datapathType: want }), []);
  });
});

describe('bridge plan', () => {
  it('moves the uplink\'s address, default route and MAC to the bridge, and says it is risky', () => {
    const s = state(
      [link(2, 'eth0', { mtu: 1500 })],
      [{ ifname: 'eth0', addr_info: [{ family: 'inet', local: '10.0.0.5', prefixlen: 24, scope: 'global' }, { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' }] }],
      [{ dst: 'default', gateway: '10.0.0.1', dev: 'eth0', protocol: 'static' }, { dst: '10.0.0.0/24', dev: 'eth0', protocol: 'kernel', scope: 'link', prefsrc: '10.0.0.5' }],
    );
    const p = planLinuxBridge(s, { name: 'cloudbr0', uplink: 'eth0' });
    assert.match(p.risky!, /eth0 carries 10.0.0.5\/24, route default/);
    assert.deepEqual(p.steps.map((x) => x.do), [
      'link add name cloudbr0 type bridge',
      'link set dev cloudbr0 alias brick:bridge',
      'link set dev cloudbr0 address 02:00:00:00:00:02',
      'link set dev cloudbr0 mtu 1500',
      'link set dev cloudbr0 up',
      'link set dev eth0 master cloudbr0',
      'route del 0.0.0.0/0 via 10.0.0.1 dev eth0 proto static',
      'address del 10.0.0.5/24 dev eth0',
      'address add 10.0.0.5/24 dev cloudbr0',
      'route add 0.0.0.0/0 via 10.0.0.1 dev cloudbr0 proto static',
    ]);
    assert.deepEqual(undoLines(p.steps), [
      'route del 0.0.0.0/0 via 10.0.0.1 dev cloudbr0 proto static',
      'address del 10.0.0.5/24 dev cloudbr0',
      'address add 10.0.0.5/24 dev eth0',
      'route add 0.0.0.0/0 via 10.0.0.1 dev eth0 proto static',
      'link set dev eth0 nomaster',
      'link del dev cloudbr0',
    ]);
  });
});

describe('GC plan', () => {
  it('removes brick\'s idle VLAN bridges with their VLAN devices, nothing else', () => {
    const s = state([
      bridge(1, 'breth1-10', { ifalias: 'brick:vlan-bridge' }),
      link(2, 'eth1.10', { master: 'breth1-10', ifalias: 'brick:vlan-device', link: 'eth1', linkinfo: { info_kind: 'vlan', info_data: { id: 10 } } }),
      bridge(3, 'breth1-20', { ifalias: 'brick:vlan-bridge' }),
      link(4, 'vif3.0', { master: 'breth1-20' }),
      bridge(5, 'mybridge'),
      bridge(6, 'breth1-30', { ifalias: 'brick:bridge' }),
    ]);
    const p = planLinuxGc(s);
    assert.deepEqual(p.remove, ['breth1-10']);
    assert.deepEqual(p.steps.map((x) => x.do), ['link del dev eth1.10', 'link del dev breth1-10']);
    assert.throws(() => planLinuxRemoveVlanBridge(s, 'mybridge'), /brick leaves it alone/);
  });
});

describe('control0 plan', () => {
  it('takes the Ovm3 network form and the address form alike', () => {
    assert.deepEqual(controlAddress('169.254.0.0/16'), { address: '169.254.0.1', prefix: 16, family: 4 });
    assert.deepEqual(controlAddress('169.254.0.1/16'), { address: '169.254.0.1', prefix: 16, family: 4 });
  });
  it('refuses /0 and a network overlapping another device\'s own address; a link-local address (avahi) is no obstacle', () => {
    assert.throws(() => controlAddress('169.254.0.1/0'), /\/0 is every address/);
    const s = state(
      [link(2, 'eth0'), link(3, 'eth1')],
      [
        { ifname: 'eth0', addr_info: [{ family: 'inet', local: '10.1.2.3', prefixlen: 8, scope: 'global' }] },
        { ifname: 'eth1', addr_info: [{ family: 'inet', local: '169.254.7.7', prefixlen: 16, scope: 'link' }] },
      ],
    );
    for (const cidr of ['10.1.0.0/16', '10.0.0.1/8', '8.0.0.1/5'])
      assert.throws(() => planControl(s, 'control0', controlAddress(cidr), true), /overlaps 10\.1\.2\.3\/8 on eth0; routing it through control0 could cut the host off/, cidr);
    assert.ok(planControl(s, 'control0', controlAddress('169.254.0.0/16'), true).steps.length);
    assert.ok(planControl(s, 'control0', controlAddress('11.0.0.1/8'), true).steps.length);
  });
  it('removes zeroconf\'s routes before adding the address, and routes through the bridge', () => {
    const s = state([link(2, 'eth0')], [], [{ dst: '169.254.0.0/16', dev: 'eth0', scope: 'link', metric: 1002 }]);
    const { steps, report } = planControl(s, 'control0', controlAddress('169.254.0.0/16'), true);
    assert.deepEqual(steps.map((x) => x.do), [
      'link add name control0 type bridge',
      'link set dev control0 alias brick:control',
      'link set dev control0 up',
      'route del 169.254.0.0/16 dev eth0 scope link metric 1002',
      'address add 169.254.0.1/16 dev control0',
      'route replace 169.254.0.0/16 dev control0 proto kernel scope link src 169.254.0.1',
    ]);
    assert.deepEqual(report.other_routes_removed, ['169.254.0.0/16 dev eth0 metric 1002']);
    // A batch stopped part-way is undone whole: every step on a device that stays has its inverse.
    assert.deepEqual(undoLines(steps), [
      'route del 169.254.0.0/16 dev control0 proto kernel scope link src 169.254.0.1',
      'address del 169.254.0.1/16 dev control0',
      'route add 169.254.0.0/16 dev eth0 scope link metric 1002',
      'link del dev control0',
    ]);
  });
  it('NOZEROCONF=yes: replaced, appended, or left alone', () => {
    assert.equal(withNozeroconf('NETWORKING=yes\nNOZEROCONF=no\n'), 'NETWORKING=yes\nNOZEROCONF=yes\n');
    assert.equal(withNozeroconf('NETWORKING=yes'), 'NETWORKING=yes\nNOZEROCONF=yes\n');
    assert.equal(withNozeroconf('NOZEROCONF="yes"\n'), null);
  });
});

describe('apply', () => {
  const log = createLogger({ svc: 'test', level: 'silent' });
  it('runs one ip -batch in the namespace; on a failing line undoes the ones before it', async () => {
    const r = recordingRunner((c) => (c.args.includes('-force') ? {} : { code: 1, stderr: 'RTNETLINK answers: File exists\nCommand failed -:2\n' }));
    const h = netHost(networkConfig({ namespace: '' }), r);
    const steps = [
      { do: 'link add name b0 type bridge', undo: 'link del dev b0', what: 'created b0' },
      { do: 'link set dev x0 master b0', undo: 'link set dev x0 nomaster', what: 'enslaved x0' },
    ];
    await assert.rejects(applySteps(h, steps), /"link set dev x0 master b0" failed: RTNETLINK answers: File exists; the 1 step\(s\) before it were undone/);
    assert.deepEqual(r.calls.map((c) => [c.cmd, c.args.join(' '), c.opts.input]), [
      ['ip', '-batch -', 'link add name b0 type bridge\nlink set dev x0 master b0\n'],
      ['ip', '-force -batch -', 'link del dev b0\n'],
    ]);
  });
  it("what an undo removed again leaves the call's journal: once per line, the latest so named", async () => {
    const h = netHost(networkConfig({ namespace: '' }), recordingRunner());
    await applyOvs(h, [{ args: ['add-br', 'b0'], what: 'created b0' }]);
    await applySteps(h, [{ do: 'link set dev b0 up', what: 'brought b0 up' }]);
    await applyOvs(h, [{ args: ['add-br', 'b0'], what: 'created b0' }, { args: ['add-port', 'b0', 'p0'], what: 'added p0' }]);
    assert.deepEqual(h.changed, ['created b0', 'brought b0 up', 'created b0', 'added p0']);
    forgetUndone(h, ['created b0', 'added p0', 'never applied']);
    assert.deepEqual(h.changed, ['created b0', 'brought b0 up']);
  });
  it('sets OVS_RUNDIR for ovs-vsctl when network.ovs_rundir is set', async () => {
    const r = recordingRunner();
    await netHost(networkConfig({ ovs_rundir: '/run/test-ovs' }), r).vsctl(['show']);
    assert.equal(r.calls[0].opts.env?.OVS_RUNDIR, '/run/test-ovs');
  });
  it("gives ovs-vsctl and ovs-ofctl a fixed environment: the agent's own PATH is not theirs (before: it was)", async () => {
    const saved = process.env.PATH;
    process.env.PATH = '/home/someone/bin:/usr/bin';
    try {
      const r = recordingRunner();
      const h = netHost(networkConfig({ ovs_rundir: '/run/test-ovs' }), r);
      await h.vsctl(['show']);
      await h.ofctl(['dump-flows', 'br0']);
      for (const c of r.calls) assert.deepEqual(c.opts.env, { PATH: CHILD_PATH, LANG: 'C', LC_ALL: 'C', OVS_RUNDIR: '/run/test-ovs' }, c.cmd);
    } finally {
      process.env.PATH = saved;
    }
  });
  it('safe apply rolls back when not confirmed, and a late confirm says so', async () => {
    const r = recordingRunner();
    const sa = new SafeApply();
    const h = netHost(networkConfig({}), r);
    const rolled = sa.nextRollback();
    sa.arm(h, log, ['made eth0 a port of br0'], ['link set dev eth0 nomaster'], 0.05);
    assert.throws(() => sa.arm(h, log, ['x'], [], 1), (e: unknown) => e instanceof BrickError && e.fault === 'NOT_READY');
    await rolled;
    assert.deepEqual(r.calls.map((c) => [c.args.join(' '), c.opts.input]), [['-force -batch -', 'link set dev eth0 nomaster\n']]);
    assert.throws(() => sa.confirm(), /rolled back at/);
    sa.arm(h, log, ['y'], ['z'], 10);
    assert.deepEqual(sa.confirm(), { kept: ['y'] });
  });
});

it('an <i8> VLAN or MTU beyond 2^53 (a bigint) is a clear INVALID_PARAMS, not an internal error', () => {
  assert.throws(() => checkVlan(2n ** 60n), (e: any) => e.fault === 'INVALID_PARAMS' && /1152921504606846976/.test(e.message));
  assert.throws(() => checkMtu(2n ** 60n), (e: any) => e.fault === 'INVALID_PARAMS' && /1152921504606846976/.test(e.message));
});
