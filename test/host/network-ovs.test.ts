// brick's Open vSwitch networking against a private userspace OVS (test/fixtures/ovs.ts).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haveUserspaceOvs, startOvs, type Ovs } from '../fixtures/ovs.js';
import { call, ipn, networkConfig, prerequisite, testCtx } from '../fixtures/network-ctx.js';
import { run, type Runner } from '../../src/shared/run.js';
import { BrickError } from '../../src/shared/errors.js';
import { KeyedLock } from '../../src/shared/keyed-lock.js';
import { linkKey } from '../../src/network/host/context.js';
import { OVS_READ_ARGS } from '../../src/network/host/ovs.js';
import type { CallContext } from '../../src/rpc/catalogue.js';

const skip = prerequisite(haveUserspaceOvs(), 'needs root, ovsdb-server and ovs-vswitchd (openvswitch-switch)');

/** A lock table that tells the test which keys each caller asks for, before it waits for them. */
class WatchedLock extends KeyedLock {
  onAsk?: (keys: string[]) => void;
  override with<T>(keys: string | readonly string[], fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    this.onAsk?.(typeof keys === 'string' ? [keys] : [...keys]);
    return super.with(keys, fn, signal);
  }
}

/** A promise and its resolve. */
function gate<T = void>(): { promise: Promise<T>; open: (v: T) => void } {
  let open!: (v: T) => void;
  const promise = new Promise<T>((r) => (open = r));
  return { promise, open };
}

describe('network on userspace Open vSwitch', { skip }, () => {
  let ovs: Ovs;
  let ctx: CallContext;
  const ports = async (): Promise<Record<string, { tag?: number; fake: boolean; ids: Record<string, string> }>> => {
    const t = JSON.parse((await ovs.vsctl(['--format=json', '--columns=name,tag,fake_bridge,external_ids', 'list', 'Port'])).stdout);
    return Object.fromEntries(
      t.data.map((r: any[]) => [r[0], { ...(typeof r[1] === 'number' ? { tag: r[1] } : {}), fake: r[2], ids: Object.fromEntries(r[3][1]) }]),
    );
  };

  before(async () => {
    ovs = await startOvs();
    ctx = testCtx(networkConfig({ backend: 'openvswitch', namespace: ovs.netns, ovs_rundir: ovs.rundir, vlan_bridge_name: '{bridge}.{vlan}' }));
    // A person's bridge with an uplink, as an admin would make it.
    await ovs.vsctl(['add-br', 'pbr0', '--', 'set', 'Bridge', 'pbr0', 'datapath_type=netdev']);
    await ovs.vsctl(['add-port', 'pbr0', 'eth9', '--', 'set', 'Interface', 'eth9', 'type=internal']);
  });
  after(async () => {
    await ovs?.stop();
  });

  it('makes a fake VLAN bridge (add-br NAME PARENT VLAN) named {bridge}.{vlan}, marked in external_ids; asking again changes nothing', async () => {
    const r = await call(ctx, 'network_ensure_vlan_bridge', 'pbr0', 100, {});
    assert.deepEqual([r.bridge, r.vlan, r.changed], ['pbr0.100', 100, true]);
    const p = (await ports())['pbr0.100'];
    assert.deepEqual(p, { tag: 100, fake: true, ids: { 'brick-owner': 'vlan-bridge' } });
    assert.equal((await ovs.vsctl(['br-to-parent', 'pbr0.100'])).stdout.trim(), 'pbr0');
    assert.equal((await ovs.vsctl(['br-to-vlan', 'pbr0.100'])).stdout.trim(), '100');
    const again = await call(ctx, 'network_ensure_vlan_bridge', 'pbr0', '100', {});
    assert.deepEqual([again.changed, again.changes], [false, []]);
    // The uplink port as parent finds its bridge.
    const viaPort = await call(ctx, 'network_ensure_vlan_bridge', 'eth9', 100, { name: 'pbr0.100' });
    assert.equal(viaPort.changed, false);
  });

  it('50 concurrent asks for the same VLAN bridge make exactly one', async () => {
    const replies = await Promise.all(Array.from({ length: 50 }, () => call(ctx, 'network_ensure_vlan_bridge', 'pbr0', 200, {})));
    assert.equal(replies.filter((r) => r.changed).length, 1);
    const all = await ports();
    assert.equal(Object.keys(all).filter((n) => all[n].tag === 200).length, 1);
  });

  it('refuses conflicts and bad input with no change', async () => {
    const before = JSON.stringify(await ports());
    const cases: Array<[unknown[], string]> = [
      [['pbr0', 300, { name: 'pbr0.100' }], 'CONFLICT'], // exists as VLAN 100
      [['pbr0', 300, { name: 'pbr0' }], 'CONFLICT'], // a real bridge
      [['nosuch', 300, {}], 'NOT_FOUND'],
      [['pbr0.100', 300, {}], 'INVALID_PARAMS'], // a fake bridge as parent
      [['pbr0', 5000, {}], 'INVALID_PARAMS'],
    ];
    for (const [args, fault] of cases)
      await assert.rejects(call(ctx, 'network_ensure_vlan_bridge', ...args), (e: unknown) => e instanceof BrickError && e.fault === fault);
    assert.equal(JSON.stringify(await ports()), before);
  });

  it('network_ensure_bridge makes an OVS bridge marked brick-owner=bridge', async () => {
    const r = await call(ctx, 'network_ensure_bridge', 'bbr0', { datapath_type: 'netdev', stp: false });
    assert.equal(r.changed, true);
    const ids = (await ovs.vsctl(['br-get-external-id', 'bbr0', 'brick-owner'])).stdout.trim();
    assert.equal(ids, 'bridge');
    assert.equal((await call(ctx, 'network_ensure_bridge', 'bbr0', { datapath_type: 'netdev', stp: false })).changed, false);
  });

  it('network_ensure_bridge on an existing bridge with another datapath_type is refused, not reported as done; "" is system', async () => {
    const db = async () => (await ovs.vsctl(['--format=json', '--columns=name,datapath_type,external_ids', 'list', 'Bridge'])).stdout;
    assert.equal((await call(ctx, 'network_ensure_bridge', 'bbr1', {})).changed, true); // datapath_type "": the system datapath
    const before = await db();
    for (const [name, want, have] of [['bbr1', 'netdev', 'system'], ['bbr0', 'system', 'netdev']]) {
      await assert.rejects(call(ctx, 'network_ensure_bridge', name, { datapath_type: want }), (e: unknown) => {
        assert.ok(e instanceof BrickError, String(e));
        assert.equal(e.fault, 'CONFLICT', e.message);
        assert.match(e.message, new RegExp(`^${name} has datapath_type ${have}, not ${want}`));
        return true;
      });
    }
    assert.equal(await db(), before, 'nothing changed');
    assert.deepEqual((await call(ctx, 'network_ensure_bridge', 'bbr1', { datapath_type: 'system' })).changes, []);
    assert.deepEqual((await call(ctx, 'network_ensure_bridge', 'bbr0', { datapath_type: 'netdev' })).changes, []);
    await call(ctx, 'network_remove_bridge', 'bbr1');
  });

  it('network_setup_control leaves no OVS bridge behind when it refuses, or when its ip steps fail, and says so', async () => {
    const bridges = async () => (await ovs.vsctl(['list-br'])).stdout.split('\n').filter(Boolean);
    const before = await bridges();
    // Refused (the control network overlaps another device's address): before the bridge is made.
    await ipn(ovs.netns, 'link', 'add', 'zc0', 'type', 'veth', 'peer', 'name', 'zc1');
    await ipn(ovs.netns, 'address', 'add', '169.254.7.7/16', 'dev', 'zc0');
    await assert.rejects(call(ctx, 'network_setup_control', 'ctl9', '169.254.0.1/16'), (e: unknown) => {
      assert.ok(e instanceof BrickError);
      assert.equal(e.fault, 'CONFLICT');
      assert.match(e.message, /overlaps 169\.254\.7\.7\/16 on zc0/);
      return true;
    });
    assert.deepEqual(await bridges(), before, 'no OVS bridge ctl9 left behind');
    await ipn(ovs.netns, 'link', 'del', 'zc0');
    // The ip steps after the bridge was made fail: the bridge goes again. Where ovs-vswitchd has no
    // kernel datapath (this test's machine: no openvswitch module) the system-datapath bridge never
    // gets a Linux device and the steps are refused (NOT_FOUND); elsewhere the device is there and
    // the batch is made to fail as a kernel refusal would (COMMAND_FAILED). Either way: undone, and said.
    const failing: Runner = async (cmd, args, opts) =>
      cmd === 'ip' && typeof opts.input === 'string' && /address add 169\.254\.0\.1\/16 dev ctl9/.test(opts.input)
        ? { code: 1, stdout: '', stderr: 'RTNETLINK answers: Operation not permitted\nCommand failed -:1\n' }
        : run(cmd, args, opts);
    await assert.rejects(call(testCtx(ctx.config, { runner: failing }), 'network_setup_control', 'ctl9', '169.254.0.1/16'), (e: unknown) => {
      assert.ok(e instanceof BrickError);
      assert.ok(['COMMAND_FAILED', 'NOT_FOUND'].includes(e.fault), e.message);
      assert.match(e.message, /(Operation not permitted|ctl9 does not exist).*; the OVS bridge ctl9 this call had created was removed again$/s);
      return true;
    });
    assert.deepEqual(await bridges(), before, 'no OVS bridge ctl9 left behind');
  });

  it("ovs-vsctl's own --timeout (ovs-vswitchd not answering) is a TIMEOUT that says the transaction took effect whole or not at all", async () => {
    const c = testCtx(networkConfig({ backend: 'openvswitch', namespace: ovs.netns, ovs_rundir: ovs.rundir, command_timeout_s: 2 })); // --timeout=1
    const pid = Number(readFileSync(`${ovs.rundir}/ovs-vswitchd.pid`, 'utf8').trim());
    process.kill(pid, 'SIGSTOP');
    try {
      await assert.rejects(call(c, 'network_ensure_bridge', 'bbr9', { datapath_type: 'netdev' }), (e: unknown) => {
        assert.ok(e instanceof BrickError, String(e));
        assert.equal(e.fault, 'TIMEOUT', e.message);
        assert.match(e.message, /--timeout=1 s.*whole or not at all.*asking again is safe/);
        return true;
      });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // It had committed: asking again says so, and changes nothing more.
    assert.equal((await call(c, 'network_ensure_bridge', 'bbr9', { datapath_type: 'netdev' })).changed, false);
    await ovs.vsctl(['del-br', 'bbr9']);
  });

  it('network_gc removes only brick\'s fake bridges with no ports; a guest port or a person\'s fake bridge stays', async () => {
    await call(ctx, 'network_ensure_vlan_bridge', 'pbr0', 300, {});
    await ovs.vsctl(['add-port', 'pbr0', 'vnet0', 'tag=300', '--', 'set', 'Interface', 'vnet0', 'type=internal']); // a guest on VLAN 300
    await ovs.vsctl(['add-br', 'pers.400', 'pbr0', '400']); // a person's fake bridge
    const st = await call(ctx, 'network_state');
    const fb = st.bridges.find((b: any) => b.name === 'pbr0.300');
    assert.deepEqual([fb.type, fb.parent, fb.vlan, fb.ports, fb.guest_ports, fb.brick_owned], ['ovs-fake', 'pbr0', 300, ['vnet0'], ['vnet0'], true]);
    assert.equal(st.bridges.find((b: any) => b.name === 'pers.400').brick_owned, false);
    assert.equal(st.bridges.find((b: any) => b.name === 'pbr0').brick_owned, false);

    assert.deepEqual(await call(ctx, 'network_gc', { dry_run: true }), ['pbr0.100', 'pbr0.200']);
    assert.ok((await ports())['pbr0.100'], 'dry run removes nothing');
    assert.deepEqual(await call(ctx, 'network_gc', {}), ['pbr0.100', 'pbr0.200']);
    const left = await ports();
    assert.equal(left['pbr0.100'], undefined);
    assert.equal(left['pbr0.200'], undefined);
    for (const kept of ['pbr0', 'eth9', 'pbr0.300', 'vnet0', 'pers.400', 'bbr0']) assert.ok(left[kept], `${kept} kept`);
    assert.deepEqual(await call(ctx, 'network_gc', {}), []);

    await assert.rejects(call(ctx, 'network_remove_vlan_bridge', 'pers.400'), /brick did not make/);
    await assert.rejects(call(ctx, 'network_remove_vlan_bridge', 'pbr0.300'), /still has ports vnet0/);
    await ovs.vsctl(['del-port', 'vnet0']);
    assert.equal((await call(ctx, 'network_remove_vlan_bridge', 'pbr0.300')).removed, true);
    assert.equal((await call(ctx, 'network_remove_vlan_bridge', 'pbr0.300')).removed, false);
  });

  it('network_remove_bridge and a VLAN bridge ensured on it at the same time: one wholly before the other (before: the remove took the new fake bridge with it)', async () => {
    const bridges = async () => (await ovs.vsctl(['list-br'])).stdout.split('\n').filter(Boolean);
    await call(ctx, 'network_ensure_bridge', 'rbr1', { datapath_type: 'netdev' });
    // The remove is held just before its del-br (it holds its locks) until the ensure has either
    // made its fake bridge or is waiting for a lock on rbr1: no waiting on time either way.
    const locks = new WatchedLock();
    const atDelBr = gate();
    const delBrGo = gate();
    const ensureMadeOrWaits = gate();
    const runner: Runner = async (cmd, args, opts) => {
      if (cmd === 'ovs-vsctl' && args.includes('del-br') && args.includes('rbr1')) {
        atDelBr.open();
        await delBrGo.promise;
      }
      const r = run(cmd, args, opts);
      if (cmd === 'ovs-vsctl' && args.includes('add-br') && args.includes('rbr1.10')) r.then(() => ensureMadeOrWaits.open(), () => ensureMadeOrWaits.open());
      return r;
    };
    const c = testCtx(ctx.config, { runner, locks });
    const removing = call(c, 'network_remove_bridge', 'rbr1');
    await Promise.race([atDelBr.promise, removing]);
    locks.onAsk = (keys) => keys.includes(linkKey('rbr1')) && ensureMadeOrWaits.open();
    const ensuring = call(c, 'network_ensure_vlan_bridge', 'rbr1', 10, {});
    await Promise.race([ensureMadeOrWaits.promise, ensuring.catch(() => {})]);
    delBrGo.open();
    const [removed, ensured] = await Promise.allSettled([removing, ensuring]);
    // The remove held rbr1 first: it went first, and the ensure found no parent (a serial order).
    // Before, both said they succeeded: rbr1.10 was "made", and gone with its parent.
    assert.equal(removed.status, 'fulfilled', String((removed as PromiseRejectedResult).reason));
    assert.equal((removed as PromiseFulfilledResult<any>).value.removed, true);
    assert.equal(ensured.status, 'rejected', `the ensure said ${JSON.stringify((ensured as PromiseFulfilledResult<any>).value)}`);
    const e = (ensured as PromiseRejectedResult).reason;
    assert.ok(e instanceof BrickError && e.fault === 'NOT_FOUND' && /parent rbr1 is neither/.test(e.message), String(e));
    const left = await bridges();
    assert.ok(!left.includes('rbr1') && !left.includes('rbr1.10'), left.join(' '));
  });

  it('network_remove_bridge of a name not yet in Open vSwitch while an ensure makes it: the remove comes wholly after (before: refused as "not a bridge brick made", or "not there")', async () => {
    const bridges = async () => (await ovs.vsctl(['list-br'])).stdout.split('\n').filter(Boolean);
    // The remove's first look at Open vSwitch (before any lock) finds nothing; the ensure then runs
    // whole before the remove goes on.
    const firstRead = gate();
    const goOn = gate();
    let armed = true;
    const runner: Runner = async (cmd, args, opts) => {
      const r = await run(cmd, args, opts);
      if (armed && cmd === 'ovs-vsctl' && OVS_READ_ARGS.every((a) => args.includes(a))) {
        armed = false;
        firstRead.open();
        await goOn.promise;
      }
      return r;
    };
    const removing = call(testCtx(ctx.config, { runner }), 'network_remove_bridge', 'rbr2');
    await Promise.race([firstRead.promise, removing]);
    assert.equal((await call(ctx, 'network_ensure_bridge', 'rbr2', { datapath_type: 'netdev' })).changed, true);
    goOn.open();
    const r = await removing;
    assert.equal(r.removed, true, JSON.stringify(r));
    assert.ok(!(await bridges()).includes('rbr2'));
  });

  // Another program (libvirt, the vendor agent) adds a port between brick's read (its "no guest
  // ports" judgement) and its del-br: brick's locks cannot hold that back. The removal is held at its
  // del-br until the port is in; no waiting on time.
  const heldAtDelBr = (bridge: string) => {
    const at = gate();
    const go = gate();
    let armed = true;
    const runner: Runner = async (cmd, args, opts) => {
      if (armed && cmd === 'ovs-vsctl' && args.includes('del-br') && args.includes(bridge)) {
        armed = false;
        at.open();
        await go.promise;
      }
      return run(cmd, args, opts);
    };
    return { runner, at, go };
  };

  it("network_remove_bridge / network_remove_vlan_bridge / network_gc: a guest port another program adds after brick's check is not deleted with the bridge; the removal is CONFLICT naming it (before: del-br took it and the call said it succeeded)", async () => {
    const bridges = async () => (await ovs.vsctl(['list-br'])).stdout.split('\n').filter(Boolean);
    await call(ctx, 'network_ensure_bridge', 'gbr1', { datapath_type: 'netdev' });
    await call(ctx, 'network_ensure_vlan_bridge', 'gbr1', 20, {});
    await call(ctx, 'network_ensure_vlan_bridge', 'gbr1', 21, {});
    const cases: Array<{ removal: (c: CallContext) => Promise<any>; bridge: string; port: string; tag?: number; refused?: RegExp }> = [
      { removal: (c) => call(c, 'network_remove_vlan_bridge', 'gbr1.20'), bridge: 'gbr1.20', port: 'vnet32', tag: 20, refused: /^gbr1\.20 still has ports vnet32; .*changed while brick was removing gbr1\.20: vnet32 added; nothing was changed/ },
      { removal: (c) => call(c, 'network_gc', {}), bridge: 'gbr1.21', port: 'vnet33', tag: 21 },
      { removal: (c) => call(c, 'network_remove_bridge', 'gbr1'), bridge: 'gbr1', port: 'vnet31', refused: /^gbr1 still has ports vnet31; .*changed while brick was removing gbr1: vnet31 added; nothing was changed/ },
    ];
    try {
      for (const k of cases) {
        if (k.bridge === 'gbr1') for (const f of ['gbr1.20', 'gbr1.21']) await ovs.vsctl(['--if-exists', 'del-br', f]);
        const h = heldAtDelBr(k.bridge);
        const removing = k.removal(testCtx(ctx.config, { runner: h.runner }));
        await Promise.race([h.at.promise, removing.catch(() => {})]);
        await ovs.vsctl(['add-port', 'gbr1', k.port, ...(k.tag ? [`tag=${k.tag}`] : []), '--', 'set', 'Interface', k.port, 'type=internal']);
        h.go.open();
        const r = await removing.then((v) => ({ v }), (e: unknown) => ({ e }));
        // Before: the call said it removed the bridge, and the guest's port was gone with it.
        assert.ok((await ports())[k.port], `${k.port} was deleted with ${k.bridge}; the call said ${JSON.stringify(r)}`);
        assert.ok((await bridges()).includes(k.bridge), `${k.bridge} is gone`);
        if (k.refused) {
          assert.ok('e' in r, `said ${JSON.stringify((r as { v: unknown }).v)}`);
          assert.ok(r.e instanceof BrickError && r.e.fault === 'CONFLICT' && k.refused.test(r.e.message), String(r.e));
        } else {
          assert.ok('v' in r, String((r as { e: unknown }).e));
          assert.ok(!r.v.includes(k.bridge), `network_gc says it removed ${k.bridge}: ${JSON.stringify(r.v)}`);
        }
      }
    } finally {
      for (const p of ['vnet31', 'vnet32', 'vnet33']) await ovs.vsctl(['--if-exists', 'del-port', p]);
      for (const b of ['gbr1.20', 'gbr1.21', 'gbr1']) await ovs.vsctl(['--if-exists', 'del-br', b]);
    }
  });

  it('network_remove_bridge while ovs-vswitchd does not answer: the conditional del-br committed, so brick reads again and says removed (not a port conflict)', async () => {
    await call(ctx, 'network_ensure_bridge', 'gbr4', { datapath_type: 'netdev' });
    const pid = Number(readFileSync(`${ovs.rundir}/ovs-vswitchd.pid`, 'utf8').trim());
    process.kill(pid, 'SIGSTOP');
    let r;
    try {
      // ovs-vsctl commits, then waits for ovs-vswitchd until its --timeout ends it: the same signal
      // as a guard that never held. The read after it finds gbr4 gone from the database.
      r = await call(ctx, 'network_remove_bridge', 'gbr4');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    assert.deepEqual(r, { removed: true, changes: ['removed OVS bridge gbr4'] });
    assert.ok(!(await ovs.vsctl(['list-br'])).stdout.split('\n').includes('gbr4'));
  });

  it('network_remove_vlan_bridge: a port that came meanwhile but is no guest of its VLAN (another VLAN, untagged) is judged again and the fake bridge removed; the port stays', async () => {
    await call(ctx, 'network_ensure_bridge', 'gbr2', { datapath_type: 'netdev' });
    await call(ctx, 'network_ensure_vlan_bridge', 'gbr2', 20, {});
    try {
      const h = heldAtDelBr('gbr2.20');
      const removing = call(testCtx(ctx.config, { runner: h.runner }), 'network_remove_vlan_bridge', 'gbr2.20');
      await Promise.race([h.at.promise, removing.catch(() => {})]);
      await ovs.vsctl(['add-port', 'gbr2', 'vnet35', 'tag=22', '--', 'set', 'Interface', 'vnet35', 'type=internal']);
      await ovs.vsctl(['add-port', 'gbr2', 'eth35', '--', 'set', 'Interface', 'eth35', 'type=internal']);
      h.go.open();
      assert.deepEqual(await removing, { removed: true, changes: ['removed fake bridge gbr2.20'] });
      const p = await ports();
      assert.equal(p['gbr2.20'], undefined);
      assert.equal(p.vnet35?.tag, 22);
      assert.ok(p.eth35, 'eth35 kept');
    } finally {
      for (const b of ['gbr2.20', 'gbr2']) await ovs.vsctl(['--if-exists', 'del-br', b]);
    }
  });

  it("network_remove_bridge: a guest port added between ovs-vsctl's own read and its commit is not deleted either (Open vSwitch verifies the port set at commit)", async () => {
    // ovs-vsctl reads the database, runs its commands on that copy (wait-until is satisfied there),
    // then sends one transaction. A proxy in front of db.sock holds that transaction until the port
    // is in. wait-until alone checks only ovs-vsctl's copy: the bridge and the port went.
    await call(ctx, 'network_ensure_bridge', 'gbr3', { datapath_type: 'netdev' });
    const dir = mkdtempSync(join(tmpdir(), 'brick-ovs-proxy-'));
    const at = gate();
    const go = gate();
    let armed = true;
    const proxy = createServer((client) => {
      const up = connect(join(ovs.rundir, 'db.sock'));
      let chain = Promise.resolve();
      client.on('data', (d) => {
        const held = armed && d.includes('"transact"') && d.includes('del-br');
        if (held) armed = false;
        chain = chain.then(async () => {
          if (held) {
            at.open();
            await go.promise;
          }
          up.write(d);
        });
      });
      up.on('data', (d) => client.write(d));
      for (const [a, b] of [[client, up], [up, client]] as const) {
        a.on('close', () => b.destroy());
        a.on('error', () => b.destroy());
      }
    });
    await new Promise<void>((r) => proxy.listen(join(dir, 'db.sock'), r));
    const runner: Runner = (cmd, args, opts) =>
      run(cmd, args, cmd === 'ovs-vsctl' && args.includes('del-br') ? { ...opts, env: { ...opts.env, OVS_RUNDIR: dir } } : opts);
    try {
      const removing = call(testCtx(ctx.config, { runner }), 'network_remove_bridge', 'gbr3');
      await Promise.race([at.promise, removing.catch(() => {})]);
      await ovs.vsctl(['add-port', 'gbr3', 'vnet34', '--', 'set', 'Interface', 'vnet34', 'type=internal']);
      go.open();
      const r = await removing.then((v) => ({ v }), (e: unknown) => ({ e }));
      assert.ok((await ports()).vnet34, `vnet34 was deleted with gbr3; the call said ${JSON.stringify(r)}`);
      assert.ok('e' in r && r.e instanceof BrickError && r.e.fault === 'CONFLICT' && /^gbr3 still has ports vnet34; .*vnet34 added; nothing was changed/.test(r.e.message), String((r as { e?: unknown }).e ?? JSON.stringify(r)));
    } finally {
      go.open();
      proxy.close();
      rmSync(dir, { recursive: true, force: true });
      await ovs.vsctl(['--if-exists', 'del-port', 'vnet34']);
      await ovs.vsctl(['--if-exists', 'del-br', 'gbr3']);
    }
  });
});
