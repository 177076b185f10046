// Linux VXLAN bridges on the real kernel: two network namespaces (two "hosts") joined by a veth
// underlay, each given VXLAN bridges by brick (config.network.namespace = that namespace); a ping
// between addresses on the two overlay bridges succeeds over the derived multicast group and over a
// unicast remote, and fails once one side's VXLAN bridge is removed. Bad input changes no link.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { delNs, ipn, linksJson, networkConfig, prerequisite, randomNs, testCtx, call, rejects } from '../fixtures/network-ctx.js';
import { run } from '../../src/shared/run.js';

const rootOk = process.getuid?.() === 0;
let ipOk = false;
try {
  execFileSync('ip', ['-V'], { stdio: 'ignore' });
  execFileSync('ping', ['-V'], { stdio: 'ignore' });
  ipOk = true;
} catch {}
let vxlanOk = false;
if (rootOk && ipOk) {
  // Does this kernel do VXLAN? Try in a throwaway namespace.
  const ns = `brick-vxp-${randomBytes(3).toString('hex')}`;
  try {
    execFileSync('ip', ['netns', 'add', ns], { stdio: 'ignore' });
    execFileSync('ip', ['-n', ns, 'link', 'add', 'vxlan1', 'type', 'vxlan', 'id', '1', 'dstport', '4789'], { stdio: 'ignore' });
    vxlanOk = true;
  } catch {
  } finally {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {}
  }
}
const skip = prerequisite(rootOk && ipOk && vxlanOk, 'needs root, iproute2, ping and a kernel with VXLAN');


async function ping(ns: string, addr: string): Promise<boolean> {
  const r = await run('ip', ['netns', 'exec', ns, 'ping', '-c', '2', '-i', '0.2', '-W', '1', addr], { timeoutMs: 15_000, allowFailure: true });
  return r.code === 0;
}

describe('VXLAN bridges between two namespaces over a veth underlay', { skip }, () => {
  const nsA = randomNs('brick-vxa');
  const nsB = randomNs('brick-vxb');
  const sfx = randomBytes(3).toString('hex');
  const [ulA, ulB] = [`vxu${sfx}a`, `vxu${sfx}b`];
  const ctxA = testCtx(networkConfig({ namespace: nsA, backend: 'linuxbridge' }));
  const ctxB = testCtx(networkConfig({ namespace: nsB, backend: 'linuxbridge' }));
  const link = async (ns: string, name: string) => (await linksJson(ns)).find((l) => l.ifname === name);
  /** Every link with the attributes a change would touch (for "nothing changed"). */
  const snapshot = async (ns: string) =>
    JSON.stringify(
      (await linksJson(ns)).map((l) => [
        l.ifname,
        l.mtu,
        l.master,
        // Carrier is the kernel's operational state (a bridge gains it when a port starts forwarding,
        // a moment after the call): not something a call changes. UP (administrative) stays compared.
        l.flags.filter((f: string) => f !== 'NO-CARRIER' && f !== 'LOWER_UP'),
        l.ifalias,
        l.linkinfo?.info_kind,
        // Bridge timers tick by themselves.
        Object.entries(l.linkinfo?.info_data ?? {}).filter(([k]) => !k.endsWith('_timer')),
      ]),
    );

  before(async () => {
    for (const ns of [nsA, nsB]) await run('ip', ['netns', 'add', ns], { timeoutMs: 10_000 });
    await run('ip', ['link', 'add', ulA, 'mtu', '9000', 'type', 'veth', 'peer', 'name', ulB, 'mtu', '9000'], { timeoutMs: 10_000 });
    await run('ip', ['link', 'set', ulA, 'netns', nsA], { timeoutMs: 10_000 });
    await run('ip', ['link', 'set', ulB, 'netns', nsB], { timeoutMs: 10_000 });
    await ipn(nsA, 'addr', 'add', '192.168.250.1/24', 'dev', ulA);
    await ipn(nsB, 'addr', 'add', '192.168.250.2/24', 'dev', ulB);
    await ipn(nsA, 'link', 'set', ulA, 'up');
    await ipn(nsB, 'link', 'set', ulB, 'up');
  });
  after(async () => {
    await delNs(nsA);
    await delNs(nsB);
  });

  it('makes vxlan<vni> in brvx-<vni> with the group from the VNI, MTU underlay - 50, marked as brick\'s; asking again changes nothing', async () => {
    const vni = 16777215;
    const r = await call(ctxA, 'network_ensure_vxlan_bridge', ulA, vni, {});
    assert.deepEqual([r.bridge, r.vxlan_device, r.changed], ['brvx-16777215', 'vxlan16777215', true]);
    const vx = await link(nsA, 'vxlan16777215');
    assert.equal(vx.linkinfo.info_kind, 'vxlan');
    assert.deepEqual(
      [vx.linkinfo.info_data.id, vx.linkinfo.info_data.group, vx.linkinfo.info_data.link, vx.linkinfo.info_data.port, vx.mtu, vx.master, vx.ifalias],
      [vni, '239.255.255.255', ulA, 4789, 8950, 'brvx-16777215', 'brick:vxlan-device'],
    );
    const br = await link(nsA, 'brvx-16777215');
    assert.deepEqual([br.linkinfo.info_kind, br.mtu, br.ifalias, br.flags.includes('UP')], ['bridge', 8950, 'brick:vxlan-bridge', true]);
    const before = await snapshot(nsA);
    const again = await call(ctxA, 'network_ensure_vxlan_bridge', ulA, String(vni), { group: '239.255.255.255' });
    assert.deepEqual([again.changed, again.changes], [false, []]);
    assert.equal(await snapshot(nsA), before);
    // Shown in network_state.
    const st = await call(ctxA, 'network_state');
    const v = st.vxlan_bridges.find((b: any) => b.name === 'brvx-16777215');
    assert.deepEqual([v.vxlan_device, v.vni, v.group, v.dev, v.mtu, v.brick_owned], ['vxlan16777215', vni, '239.255.255.255', ulA, 8950, true]);
    assert.equal(await call(ctxA, 'network_remove_vxlan_bridge', 'brvx-16777215').then((x) => x.removed), true);
    assert.equal(await link(nsA, 'vxlan16777215'), undefined);
  });

  it('a ping between the two overlay bridges succeeds (multicast group from the VNI), and fails once one side is removed', async () => {
    const a = await call(ctxA, 'network_ensure_vxlan_bridge', ulA, 100, {});
    const b = await call(ctxB, 'network_ensure_vxlan_bridge', ulB, 100, {});
    assert.equal(a.bridge, 'brvx-100');
    assert.equal(b.bridge, 'brvx-100');
    assert.equal((await link(nsA, 'vxlan100')).linkinfo.info_data.group, '239.0.0.100');
    await ipn(nsA, 'addr', 'add', '10.100.0.1/24', 'dev', 'brvx-100');
    await ipn(nsB, 'addr', 'add', '10.100.0.2/24', 'dev', 'brvx-100');
    assert.equal(await ping(nsA, '10.100.0.2'), true, 'ping over VXLAN 100');
    const r = await call(ctxB, 'network_remove_vxlan_bridge', 'brvx-100');
    assert.equal(r.removed, true);
    assert.deepEqual(r.changes, ['removed VXLAN device vxlan100', 'removed bridge brvx-100']);
    assert.equal(await link(nsB, 'brvx-100'), undefined);
    assert.equal(await ping(nsA, '10.100.0.2'), false, 'no path once B\'s VXLAN bridge is gone');
    assert.equal((await call(ctxB, 'network_remove_vxlan_bridge', 'brvx-100')).removed, false);
  });

  it('works with a unicast remote instead of a group, and a named bridge', async () => {
    await call(ctxA, 'network_ensure_vxlan_bridge', ulA, 200, { remote: '192.168.250.2', name: 'ovl200' });
    await call(ctxB, 'network_ensure_vxlan_bridge', ulB, 200, { remote: '192.168.250.1', name: 'ovl200' });
    assert.equal((await link(nsA, 'vxlan200')).linkinfo.info_data.remote, '192.168.250.2');
    assert.equal((await link(nsA, 'vxlan200')).master, 'ovl200');
    await ipn(nsA, 'addr', 'add', '10.200.0.1/24', 'dev', 'ovl200');
    await ipn(nsB, 'addr', 'add', '10.200.0.2/24', 'dev', 'ovl200');
    assert.equal(await ping(nsB, '10.200.0.1'), true, 'ping over unicast VXLAN 200');
    // Removing A's side (through network_gc: no guest port left) breaks it.
    const gc = await call(ctxA, 'network_gc', {});
    assert.ok(gc.includes('ovl200'), JSON.stringify(gc));
    assert.equal(await ping(nsB, '10.200.0.1'), false);
  });

  it('an IPv6 remote or group written another way than ip prints it: asking again changes nothing; one with a zone is refused, nothing changed', async () => {
    // ip prints 2001:db8::1 and ff05::1; the caller wrote them with capitals and leading zeros.
    for (const [vni, opts] of [[250, { remote: '2001:0DB8::0001' }], [251, { group: 'FF05::0001' }]] as const) {
      assert.equal((await call(ctxA, 'network_ensure_vxlan_bridge', ulA, vni, opts)).changed, true);
      const again = await call(ctxA, 'network_ensure_vxlan_bridge', ulA, vni, opts);
      assert.deepEqual([again.changed, again.changes], [false, []], JSON.stringify(opts));
      assert.equal((await call(ctxA, 'network_remove_vxlan_bridge', `brvx-${vni}`)).removed, true);
    }
    const before = await snapshot(nsA);
    await rejects(call(ctxA, 'network_ensure_vxlan_bridge', ulA, 252, { remote: `fe80::1%${ulA}` }), 'INVALID_PARAMS', /^opts\.remote: .*a zone/);
    await rejects(call(ctxA, 'network_ensure_vxlan_bridge', ulA, 252, { group: `ff02::1%${ulA}` }), 'INVALID_PARAMS', /^opts\.group: .*a zone/);
    assert.equal(await snapshot(nsA), before);
  });

  it('network_gc keeps a VXLAN bridge with a guest port and never touches a person\'s bridge', async () => {
    await call(ctxA, 'network_ensure_vxlan_bridge', ulA, 300, {});
    await ipn(nsA, 'link', 'add', 'vnet3', 'type', 'veth', 'peer', 'name', 'vnet3p');
    await ipn(nsA, 'link', 'set', 'vnet3', 'master', 'brvx-300');
    await ipn(nsA, 'link', 'add', 'pbrvx', 'type', 'bridge');
    await ipn(nsA, 'link', 'add', 'vxlan301', 'type', 'vxlan', 'id', '301', 'dstport', '4789', 'dev', ulA, 'group', '239.0.1.45');
    await ipn(nsA, 'link', 'set', 'vxlan301', 'master', 'pbrvx');
    const dry = await call(ctxA, 'network_gc', { dry_run: true });
    assert.ok(!dry.includes('brvx-300') && !dry.includes('pbrvx'), JSON.stringify(dry));
    await call(ctxA, 'network_gc', {});
    assert.ok(await link(nsA, 'brvx-300'));
    assert.ok(await link(nsA, 'pbrvx'));
    await rejects(call(ctxA, 'network_remove_vxlan_bridge', 'brvx-300'), 'CONFLICT', /still has ports vnet3/);
    await rejects(call(ctxA, 'network_remove_vxlan_bridge', 'pbrvx'), 'CONFLICT', /not a VXLAN bridge brick made/);
    // A person's vxlan301 in their bridge is refused, not moved; one with another group too.
    await rejects(call(ctxA, 'network_ensure_vxlan_bridge', ulA, 301, {}), 'CONFLICT', /vxlan301 is already a port of pbrvx/);
    await rejects(call(ctxA, 'network_ensure_vxlan_bridge', ulA, 301, { group: '239.9.9.9', name: 'pbrvx' }), 'CONFLICT', /vxlan301 exists with group 239\.0\.1\.45, not 239\.9\.9\.9/);
    await ipn(nsA, 'link', 'del', 'vnet3');
    assert.deepEqual(await call(ctxA, 'network_gc', {}), ['brvx-300']);
  });

  it('reads only the devices the plan needs: a pif that is a bridge port puts the device on that bridge (read after the pif); a bridge carrying another VNI is refused', async () => {
    await ipn(nsA, 'link', 'add', 'ulbr', 'type', 'bridge');
    await ipn(nsA, 'link', 'add', 'pv0', 'mtu', '1400', 'type', 'veth', 'peer', 'name', 'pv1');
    await ipn(nsA, 'link', 'set', 'pv0', 'master', 'ulbr');
    const r = await call(ctxA, 'network_ensure_vxlan_bridge', 'pv0', 400, {});
    assert.deepEqual([r.underlay, r.changed], ['ulbr', true]);
    const vx = await link(nsA, 'vxlan400');
    assert.deepEqual([vx.linkinfo.info_data.link, vx.mtu], ['ulbr', 1350]);
    assert.deepEqual((await call(ctxA, 'network_ensure_vxlan_bridge', 'pv0', 400, {})).changes, []);
    const before = await snapshot(nsA);
    await rejects(call(ctxA, 'network_ensure_vxlan_bridge', 'pv0', 401, { name: 'brvx-400' }), 'CONFLICT', /brvx-400 already carries VXLAN device vxlan400 \(VNI 400\)/);
    await rejects(call(ctxA, 'network_ensure_vxlan_bridge', 'nopif0', 402, {}), 'NOT_FOUND', /pif nopif0 does not exist/);
    assert.equal(await snapshot(nsA), before);
    assert.deepEqual((await call(ctxA, 'network_remove_vxlan_bridge', 'brvx-400')).changes, ['removed VXLAN device vxlan400', 'removed bridge brvx-400']);
    await ipn(nsA, 'link', 'del', 'pv0');
    await ipn(nsA, 'link', 'del', 'ulbr');
  });

  it('past net.ipv4.igmp_max_memberships the group cannot be joined: the fault says so and what to do, and nothing is left', async () => {
    const ns = randomNs('brick-vxg');
    await run('ip', ['netns', 'add', ns], { timeoutMs: 10_000 });
    try {
      await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.igmp_max_memberships=2'], { timeoutMs: 10_000 });
      await ipn(ns, 'link', 'add', 'gu0', 'type', 'veth', 'peer', 'name', 'gu1');
      await ipn(ns, 'addr', 'add', '192.168.251.1/24', 'dev', 'gu0');
      await ipn(ns, 'link', 'set', 'gu0', 'up');
      const ctx = testCtx(networkConfig({ namespace: ns, backend: 'linuxbridge' }));
      for (const vni of [501, 502]) assert.equal((await call(ctx, 'network_ensure_vxlan_bridge', 'gu0', vni, {})).changed, true);
      const before = await snapshot(ns);
      await rejects(
        call(ctx, 'network_ensure_vxlan_bridge', 'gu0', 503, {}),
        'COMMAND_FAILED',
        /No buffer space available.*the kernel would not join multicast group 239\.0\.1\.247 on gu0.*net\.ipv4\.igmp_max_memberships.*unicast remote/is,
      );
      assert.equal(await snapshot(ns), before, 'the batch was undone');
      // A unicast remote joins no group.
      assert.equal((await call(ctx, 'network_ensure_vxlan_bridge', 'gu0', 503, { remote: '192.168.251.2' })).changed, true);
    } finally {
      await delNs(ns);
    }
  });

  it('20 concurrent ensures of one VXLAN bridge make it once; the MTU follows the underlay when asked again', async () => {
    const replies = await Promise.all(Array.from({ length: 20 }, () => call(ctxB, 'network_ensure_vxlan_bridge', ulB, 400, {})));
    assert.equal(replies.filter((r) => r.changed).length, 1);
    assert.equal((await linksJson(nsB)).filter((l) => l.ifname === 'vxlan400' || l.ifname === 'brvx-400').length, 2);
    await ipn(nsB, 'link', 'set', ulB, 'mtu', '1500');
    const r = await call(ctxB, 'network_ensure_vxlan_bridge', ulB, 400, {});
    assert.deepEqual(r.changes, ['set vxlan400 mtu 1450', 'set brvx-400 mtu 1450']);
    assert.equal((await link(nsB, 'brvx-400')).mtu, 1450);
    await ipn(nsB, 'link', 'set', ulB, 'mtu', '9000');
    assert.equal((await call(ctxB, 'network_remove_vxlan_bridge', 'brvx-400')).removed, true);
  });

  it('refuses VNIs outside 1-16777215, bad groups, remotes and names with no link changed', async () => {
    const before = await snapshot(nsA);
    const cases: [unknown[], RegExp][] = [
      [[ulA, 0, {}], /^vni: .*1-16777215/],
      [[ulA, 16777216, {}], /^vni: .*1-16777215/],
      [[ulA, -5, {}], /^vni:/],
      [[ulA, 2.5, {}], /^vni:/],
      [[ulA, '100; reboot', {}], /^vni:/],
      [[ulA, 100, { group: '10.0.0.1' }], /^opts.group:/],
      [[ulA, 100, { group: 'not-an-ip' }], /^opts.group:/],
      [[ulA, 100, { remote: '239.1.1.1' }], /^opts.remote:/],
      [[ulA, 100, { remote: 'host.example' }], /^opts.remote:/],
      [[ulA, 100, { remote: '192.168.250.2', group: '239.0.0.100' }], /^opts: give group or remote/],
      [[ulA, 100, { name: 'a-very-long-bridge-name' }], /^opts.name:/],
      [[ulA, 100, { ttl: 5 }], /^opts.ttl:/],
      [['bad name', 100, {}], /^pif:/],
    ];
    for (const [args, re] of cases) await rejects(call(ctxA, 'network_ensure_vxlan_bridge', ...args), 'INVALID_PARAMS', re);
    await rejects(call(ctxA, 'network_ensure_vxlan_bridge', 'nosuch0', 100, {}), 'NOT_FOUND', /pif nosuch0/);
    assert.equal(await snapshot(nsA), before);
  });
});
