// GRE/VXLAN tunnels and overlay bridges against a private userspace Open vSwitch (test/fixtures/ovs.ts):
// tunnels and their flows created, listed in network_state, removed; names within 15 characters for the
// largest keys and IPv6 remotes; bad input refused with the OVS database unchanged; OVS refusing an
// interface rolled back with its words.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { haveUserspaceOvs, startOvs, type Ovs } from '../fixtures/ovs.js';
import { networkConfig, prerequisite, testCtx, call, rejects } from '../fixtures/network-ctx.js';
import { methods as networkMethods } from '../../src/network/methods.js';
import { tunnelCookie } from '../../src/network/overlay/plan.js';
import { run, type Runner } from '../../src/shared/run.js';
import { BrickError } from '../../src/shared/errors.js';
import type { CallContext } from '../../src/rpc/catalogue.js';
import { startTestServer } from '../fixtures/server.js';
import { XmlRpcFault } from '../../src/agent-extension/codec.js';

const skip = prerequisite(haveUserspaceOvs(['ovsdb-server', 'ovs-vswitchd', 'ovs-ofctl']), 'needs root, ovsdb-server, ovs-vswitchd and ovs-ofctl (openvswitch-switch)');


describe('overlay tunnels on userspace Open vSwitch', { skip }, () => {
  let ovs: Ovs;
  let ctx: CallContext;
  const ofctl = async (...args: string[]) => (await run('ovs-ofctl', args, { timeoutMs: 10_000, env: ovs.env })).stdout;
  const flowsOf = async (bridge: string, port: string) =>
    (await ofctl('--no-names', 'dump-flows', bridge, `cookie=${tunnelCookie(port)}/-1`)).split('\n').filter((l) => l.includes('cookie='));
  /** The whole OVS database's Bridge/Port/Interface rows (for "nothing changed"). */
  const db = async () =>
    (
      await ovs.vsctl(['--format=json', '--', '--columns=name,ports,external_ids,stp_enable', 'list', 'Bridge', '--', '--columns=name,external_ids', 'list', 'Port', '--', '--columns=name,type,options', 'list', 'Interface'])
    ).stdout;
  const iface = async (name: string) => {
    const t = JSON.parse((await ovs.vsctl(['--format=json', '--columns=type,options,error', 'list', 'Interface', name])).stdout);
    const [type, options, error] = t.data[0];
    return { type, options: Object.fromEntries(options[1]), error: Array.isArray(error) ? '' : error };
  };

  before(async () => {
    ovs = await startOvs();
    ctx = testCtx(networkConfig({ backend: 'openvswitch', namespace: ovs.netns, ovs_rundir: ovs.rundir }));
  });
  after(async () => {
    await ovs?.stop();
  });

  it('makes the overlay bridge with its key and STP, marked as brick\'s; asking again changes nothing; another key is refused', async () => {
    const r = await call(ctx, 'network_ensure_overlay_bridge', 'ovbr0', 4294967295, { stp: true, datapath_type: 'netdev' });
    assert.equal(r.changed, true);
    const t = JSON.parse((await ovs.vsctl(['--format=json', '--columns=external_ids,stp_enable,datapath_type', 'list', 'Bridge', 'ovbr0'])).stdout);
    const [ids, stp, dp] = t.data[0];
    assert.deepEqual(Object.fromEntries(ids[1]), { 'brick-owner': 'overlay-bridge', 'brick-overlay-key': '4294967295' });
    assert.deepEqual([stp, dp], [true, 'netdev']);
    const again = await call(ctx, 'network_ensure_overlay_bridge', 'ovbr0', '4294967295', { stp: true });
    assert.deepEqual([again.changed, again.changes], [false, []]);
    const before = await db();
    await rejects(call(ctx, 'network_ensure_overlay_bridge', 'ovbr0', 7, {}), 'CONFLICT', /key 4294967295, not 7/);
    assert.equal(await db(), before);
    // STP off when asked.
    const off = await call(ctx, 'network_ensure_overlay_bridge', 'ovbr0', 4294967295, { stp: false });
    assert.equal(off.changed, true);
    // Another datapath is refused; datapath_type "" is the system datapath, not "any".
    await rejects(call(ctx, 'network_ensure_overlay_bridge', 'ovbr0', 4294967295, { datapath_type: 'system' }), 'CONFLICT', /^ovbr0 has datapath_type netdev, not system/);
    assert.equal((await call(ctx, 'network_ensure_overlay_bridge', 'ovsys0', 5, {})).changed, true);
    const sys = await db();
    await rejects(call(ctx, 'network_ensure_overlay_bridge', 'ovsys0', 5, { datapath_type: 'netdev' }), 'CONFLICT', /^ovsys0 has datapath_type system, not netdev/);
    assert.equal(await db(), sys);
    assert.deepEqual((await call(ctx, 'network_ensure_overlay_bridge', 'ovsys0', 5, { datapath_type: 'system' })).changes, []);
    await call(ctx, 'network_remove_overlay_bridge', 'ovsys0');
  });

  it('GRE tunnels with the largest key and IPv4/IPv6 remotes: names ≤ 15 characters, interface options, drop flows, shown in network_state', async () => {
    const a = await call(ctx, 'network_ensure_tunnel', 'ovbr0', '192.0.2.250', '4294967295', {});
    const b = await call(ctx, 'network_ensure_tunnel', 'ovbr0', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', 4294967295, { type: 'gre' });
    const c = await call(ctx, 'network_ensure_tunnel', 'ovbr0', '198.51.100.7', 16777215, { type: 'vxlan' });
    for (const r of [a, b, c]) {
      assert.ok(r.port.length <= 15, `${r.port} is ${r.port.length} characters`);
      assert.equal(r.changed, true);
      assert.ok(r.ofport > 0, `ofport ${r.ofport}`);
    }
    assert.match(a.port, /^gre-[0-9a-f]{10}$/);
    assert.match(c.port, /^vxl-[0-9a-f]{10}$/);
    assert.equal(new Set([a.port, b.port, c.port]).size, 3);
    assert.deepEqual(await iface(a.port), { type: 'gre', options: { key: '4294967295', remote_ip: '192.0.2.250' }, error: '' });
    assert.deepEqual(await iface(c.port), { type: 'vxlan', options: { key: '16777215', remote_ip: '198.51.100.7' }, error: '' });
    // Exactly two drop flows per tunnel, on its ofport.
    for (const r of [a, b, c]) {
      const f = await flowsOf('ovbr0', r.port);
      assert.equal(f.length, 2, f.join('\n'));
      assert.ok(f.every((l) => l.includes(`in_port=${r.ofport}`) && l.includes('actions=drop') && l.includes('priority=1000')), f.join('\n'));
      assert.ok(f.some((l) => l.includes('dl_dst=ff:ff:ff:ff:ff:ff')));
      assert.ok(f.some((l) => l.includes('nw_dst=224.0.0.0/24')));
    }
    // Same call again: same name, nothing changed (stable).
    const again = await call(ctx, 'network_ensure_tunnel', 'ovbr0', '192.0.2.250', 4294967295, {});
    assert.deepEqual([again.port, again.ofport, again.changed], [a.port, a.ofport, false]);
    // Flows lost (as after an ovs-vswitchd restart) are put back.
    await ofctl('del-flows', 'ovbr0', `cookie=${tunnelCookie(a.port)}/-1`);
    const healed = await call(ctx, 'network_ensure_tunnel', 'ovbr0', '192.0.2.250', 4294967295, {});
    assert.equal(healed.changed, true);
    assert.equal((await flowsOf('ovbr0', a.port)).length, 2);
    // network_state lists them.
    const st = await call(ctx, 'network_state');
    const tun = st.tunnels.find((t: any) => t.port === b.port);
    assert.deepEqual(
      { remote: tun.remote, key: tun.key, type: tun.type, ofport: tun.ofport, bridge: tun.bridge, brick_owned: tun.brick_owned, error: tun.error },
      { remote: '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', key: '4294967295', type: 'gre', ofport: b.ofport, bridge: 'ovbr0', brick_owned: true, error: '' },
    );
    assert.ok(typeof tun.status === 'string' && tun.status !== 'error');
    assert.equal(st.tunnels.filter((t: any) => t.bridge === 'ovbr0').length, 3);
  });

  it('50 concurrent ensures of the same tunnel make one port and one pair of flows', async () => {
    const replies = await Promise.all(Array.from({ length: 50 }, () => call(ctx, 'network_ensure_tunnel', 'ovbr0', '203.0.113.9', 77, {})));
    assert.equal(new Set(replies.map((r) => r.port)).size, 1);
    assert.equal(replies.filter((r) => r.changed).length, 1);
    assert.equal((await flowsOf('ovbr0', replies[0].port)).length, 2);
    const r = await call(ctx, 'network_remove_tunnel', 'ovbr0', replies[0].port);
    assert.equal(r.removed, true);
  });

  it('refuses bad keys, VNIs, remotes, types and names with the OVS database unchanged', async () => {
    const before = await db();
    const cases: [string, unknown[], RegExp][] = [
      ['network_ensure_tunnel', ['ovbr0', '192.0.2.1', 4294967296, {}], /^key: .*0-4294967295/],
      ['network_ensure_tunnel', ['ovbr0', '192.0.2.1', -1, {}], /^key:/],
      ['network_ensure_tunnel', ['ovbr0', '192.0.2.1', 1.5, {}], /^key:/],
      ['network_ensure_tunnel', ['ovbr0', '192.0.2.1', '12abc', {}], /^key:/],
      ['network_ensure_tunnel', ['ovbr0', '192.0.2.1', 16777216, { type: 'vxlan' }], /^key: .*1-16777215/],
      ['network_ensure_tunnel', ['ovbr0', '192.0.2.1', 0, { type: 'vxlan' }], /^key:/],
      ['network_ensure_tunnel', ['ovbr0', 'peer.example.com', 5, {}], /^remote_ip:/],
      ['network_ensure_tunnel', ['ovbr0', '192.0.2.1; reboot', 5, {}], /^remote_ip:/],
      ['network_ensure_tunnel', ['ovbr0', '239.1.1.1', 5, {}], /^remote_ip:/],
      ['network_ensure_tunnel', ['ovbr0', '192.0.2.1', 5, { type: 'geneve' }], /^opts.type:/],
      ['network_ensure_tunnel', ['ovbr0', '192.0.2.1', 5, { name: 'a-name-that-is-too-long' }], /^opts.name:/],
      ['network_ensure_tunnel', ['ovbr0', '192.0.2.1', 5, { name: 'x y' }], /^opts.name:/],
      ['network_ensure_tunnel', ['ovbr0', '192.0.2.1', 5, { colour: 'red' }], /^opts.colour:/],
      ['network_ensure_tunnel', ['bad/br', '192.0.2.1', 5, {}], /^bridge:/],
      ['network_ensure_overlay_bridge', ['ovbr9', 4294967296, {}], /^key:/],
      ['network_ensure_overlay_bridge', ['ovbr9', 'ten', {}], /^key:/],
      ['network_ensure_overlay_bridge', ['-ovbr9', 10, {}], /^bridge:/],
      ['network_remove_tunnel', ['ovbr0', '../x'], /^port:/],
    ];
    for (const [m, args, re] of cases) await rejects(call(ctx, m, ...args), 'INVALID_PARAMS', re);
    await rejects(call(ctx, 'network_ensure_tunnel', 'nobr0', '192.0.2.1', 5, {}), 'NOT_FOUND', /nobr0/);
    assert.equal(await db(), before);
  });

  it('OVS refusing the interface is rolled back and faults VERIFY_FAILED with OVS\'s words', async () => {
    // Two bridges may not hold tunnels with the same type, remote and key: OVS refuses the second.
    await call(ctx, 'network_ensure_overlay_bridge', 'ovbr1', 99, { datapath_type: 'netdev' });
    await call(ctx, 'network_ensure_overlay_bridge', 'ovbr2', 99, { datapath_type: 'netdev' });
    const first = await call(ctx, 'network_ensure_tunnel', 'ovbr1', '192.0.2.99', 99, {});
    assert.equal(first.changed, true);
    const before = await db();
    const e = await rejects(call(ctx, 'network_ensure_tunnel', 'ovbr2', '192.0.2.99', 99, {}), 'VERIFY_FAILED', /did not accept gre tunnel .*: .+; brick removed it again/);
    assert.ok(/exist|same config|could not/i.test(e.message), e.message);
    assert.equal(await db(), before, 'the refused port is gone again');
    const port = e.detail?.port as string;
    assert.equal((await flowsOf('ovbr2', port)).length, 0);
  });

  it('removes a tunnel and exactly its flows; removing again is {removed: false}; a person\'s port is refused', async () => {
    const a = await call(ctx, 'network_ensure_tunnel', 'ovbr0', '192.0.2.250', 4294967295, {});
    const c = await call(ctx, 'network_ensure_tunnel', 'ovbr0', '198.51.100.7', 16777215, { type: 'vxlan' });
    const r = await call(ctx, 'network_remove_tunnel', 'ovbr0', a.port);
    assert.equal(r.removed, true);
    assert.equal((await flowsOf('ovbr0', a.port)).length, 0);
    assert.equal((await flowsOf('ovbr0', c.port)).length, 2, 'the other tunnel keeps its flows');
    assert.doesNotMatch((await ovs.vsctl(['list-ports', 'ovbr0'])).stdout, new RegExp(a.port));
    const again = await call(ctx, 'network_remove_tunnel', 'ovbr0', a.port);
    assert.equal(again.removed, false);
    await ovs.vsctl(['add-port', 'ovbr0', 'pgre0', '--', 'set', 'Interface', 'pgre0', 'type=gre', 'options:remote_ip=192.0.2.77']);
    const before = await db();
    await rejects(call(ctx, 'network_remove_tunnel', 'ovbr0', 'pgre0'), 'CONFLICT', /not a tunnel brick made/);
    await rejects(call(ctx, 'network_ensure_tunnel', 'ovbr0', '192.0.2.77', 0, {}), 'CONFLICT', /pgre0/);
    assert.equal(await db(), before);
    await ovs.vsctl(['del-port', 'ovbr0', 'pgre0']);
  });

  it('over XML-RPC: a key past 2^31 as <i8>, the reply\'s ofport, a bad key as fault -32602', async () => {
    const srv = await startTestServer({ network: { backend: 'openvswitch', namespace: ovs.netns, ovs_rundir: ovs.rundir } }, networkMethods);
    try {
      const br = (await srv.call('network_ensure_overlay_bridge', 'ovwire', 3000000000, { datapath_type: 'netdev' })) as any;
      assert.deepEqual([br.key, br.changed], [3000000000, true]);
      const t = (await srv.call('network_ensure_tunnel', 'ovwire', '2001:db8::9', '3000000000', { type: 'gre' })) as any;
      assert.ok(t.port.length <= 15 && t.ofport > 0, JSON.stringify(t));
      await assert.rejects(srv.call('network_ensure_tunnel', 'ovwire', '2001:db8::9', 4294967296, {}), (e: unknown) => {
        assert.ok(e instanceof XmlRpcFault, String(e));
        assert.equal(e.faultCode, -32602);
        assert.match(e.faultString, /key/);
        return true;
      });
      assert.deepEqual({ ...((await srv.call('network_remove_tunnel', 'ovwire', t.port)) as object) }, { removed: true, changes: [`removed tunnel port ${t.port} from ovwire`] });
      assert.equal(((await srv.call('network_remove_overlay_bridge', 'ovwire')) as any).removed, true);
    } finally {
      await srv.close();
    }
  });

  it('removes the overlay bridge with its tunnels; a person\'s bridge or one with guest ports is refused; removing again is {removed: false}', async () => {
    await ovs.vsctl(['add-br', 'pbr7', '--', 'set', 'Bridge', 'pbr7', 'datapath_type=netdev']);
    await rejects(call(ctx, 'network_remove_overlay_bridge', 'pbr7'), 'CONFLICT', /not an overlay bridge brick made/);
    await rejects(call(ctx, 'network_ensure_overlay_bridge', 'pbr7', 5, {}), 'CONFLICT', /not an overlay bridge brick made/);
    await ovs.vsctl(['add-port', 'ovbr1', 'vnet7', '--', 'set', 'Interface', 'vnet7', 'type=internal']);
    await rejects(call(ctx, 'network_remove_overlay_bridge', 'ovbr1'), 'CONFLICT', /guest ports vnet7/);
    await ovs.vsctl(['del-port', 'ovbr1', 'vnet7']);
    for (const b of ['ovbr0', 'ovbr1', 'ovbr2']) assert.equal((await call(ctx, 'network_remove_overlay_bridge', b)).removed, true);
    assert.equal((await call(ctx, 'network_remove_overlay_bridge', 'ovbr0')).removed, false);
    assert.deepEqual((await ovs.vsctl(['list-br'])).stdout.trim().split('\n'), ['pbr7']);
    const st = await call(ctx, 'network_state');
    assert.deepEqual(st.tunnels, []);
  });

  it("a guest port another program adds after brick's check is not deleted with the overlay bridge: CONFLICT naming it (before: del-br took it and the call said removed)", async () => {
    await call(ctx, 'network_ensure_overlay_bridge', 'ovbr6', 6, { datapath_type: 'netdev' });
    // The removal is held at its del-br until the port is in (no waiting on time).
    let openAt!: () => void;
    let openGo!: () => void;
    const at = { promise: new Promise<void>((r) => (openAt = r)), open: () => openAt() };
    const go = { promise: new Promise<void>((r) => (openGo = r)), open: () => openGo() };
    let armed = true;
    const runner: Runner = async (cmd, args, opts) => {
      if (armed && cmd === 'ovs-vsctl' && args.includes('del-br') && args.includes('ovbr6')) {
        armed = false;
        at.open();
        await go.promise;
      }
      return run(cmd, args, opts);
    };
    try {
      const removing = call(testCtx(ctx.config, { runner }), 'network_remove_overlay_bridge', 'ovbr6');
      await Promise.race([at.promise, removing.catch(() => {})]);
      await ovs.vsctl(['add-port', 'ovbr6', 'vnet66', '--', 'set', 'Interface', 'vnet66', 'type=internal']);
      go.open();
      const r = await removing.then((v) => ({ v }), (e: unknown) => ({ e }));
      const left = (await ovs.vsctl(['--format=json', '--columns=name', 'list', 'Port'])).stdout;
      assert.ok(left.includes('"vnet66"'), `vnet66 was deleted with ovbr6; the call said ${JSON.stringify(r)}`);
      assert.ok('e' in r, JSON.stringify(r));
      assert.ok(r.e instanceof BrickError && r.e.fault === 'CONFLICT' && /^ovbr6 still has guest ports vnet66; .*changed while brick was removing ovbr6: vnet66 added; nothing was changed/.test(r.e.message), String(r.e));
    } finally {
      go.open();
      await ovs.vsctl(['--if-exists', 'del-br', 'ovbr6']);
    }
  });
  it("the call's deadline after the tunnel's transaction (ovs-vswitchd stops answering before its flows): the tunnel is removed again and the fault says so", async () => {
    await call(ctx, 'network_ensure_overlay_bridge', 'ovbr8', 8, { datapath_type: 'netdev' });
    const pid = Number(readFileSync(`${ovs.rundir}/ovs-vswitchd.pid`, 'utf8').trim());
    // The runner stops ovs-vswitchd just before the first ovs-ofctl (the port is committed by then),
    // so the flows step cannot finish and the call's deadline stops it: deterministic.
    let armed = true;
    const runner: Runner = Object.assign(
      async (cmd: string, args: readonly string[], o: Parameters<Runner>[2]) => {
        if (armed && cmd === 'ovs-ofctl') {
          armed = false;
          process.kill(pid, 'SIGSTOP');
        }
        return run(cmd, args, o);
      },
      { session: run.session },
    );
    const srv = await startTestServer({ network: { backend: 'openvswitch', namespace: ovs.netns, ovs_rundir: ovs.rundir }, server: { call_timeout_s: 3 } }, networkMethods, { run: runner });
    const before = await db();
    try {
      const e = await srv.call('network_ensure_tunnel', 'ovbr8', '192.0.2.8', 8, { type: 'vxlan', name: 'vx-dl8' }).then(
        (r) => assert.fail(`the tunnel call answered: ${JSON.stringify(r)}`),
        (x: unknown) => x,
      );
      assert.equal(armed, false, 'ovs-ofctl never ran');
      assert.ok(e instanceof XmlRpcFault, String(e));
      assert.equal(e.faultCode, 1004, e.faultString);
      assert.match(e.faultString, /tunnel vx-dl8 was removed again; nothing was changed$/);
      assert.equal(await db(), before, 'the tunnel stayed in OVS after the stopped call');
    } finally {
      process.kill(pid, 'SIGCONT');
      await srv.close();
    }
  });
});
