// brick's Linux bridge networking against the real kernel, in a namespace brick itself creates.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { call, delNs, ipn, linksJson, networkConfig, needsRootAndIp, randomNs, testCtx } from '../fixtures/network-ctx.js';
import { setupControl } from '../../src/network/bridge/control0.js';
import { safeApply } from '../../src/network/host/safe-apply.js';
import { BrickError } from '../../src/shared/errors.js';
import { KeyedLock } from '../../src/shared/keyed-lock.js';
import { run, type Runner } from '../../src/shared/run.js';
import { linkKey } from '../../src/network/host/context.js';

const skip = needsRootAndIp();

describe('network on the real kernel (linuxbridge)', { skip }, () => {
  const ns = randomNs();
  const ctx = testCtx(networkConfig({ namespace: ns, backend: 'linuxbridge', vlan_bridge_name: 'br{pif}-{vlan}' }));
  const tmp = mkdtempSync(join(tmpdir(), 'brick-net-'));

  before(async () => {
    assert.equal(existsSync(`/run/netns/${ns}`), false);
  });
  after(async () => {
    await delNs(ns);
    rmSync(tmp, { recursive: true, force: true });
  });

  const link = async (name: string) => (await linksJson(ns)).find((l) => l.ifname === name);

  it('creates the configured namespace and a bridge, marked as brick\'s; asking again changes nothing', async () => {
    const r1 = await call(ctx, 'network_ensure_bridge', 'brt0', {});
    assert.equal(existsSync(`/run/netns/${ns}`), true, 'brick created network.namespace');
    assert.equal(r1.changed, true);
    assert.ok(r1.changes.includes('created bridge brt0'));
    const l = await link('brt0');
    assert.equal(l.linkinfo.info_kind, 'bridge');
    assert.equal(l.ifalias, 'brick:bridge');
    assert.ok(l.flags.includes('UP'));
    const r2 = await call(ctx, 'network_ensure_bridge', 'brt0', {});
    assert.deepEqual([r2.changed, r2.changes], [false, []]);
  });

  it('enslaves a veth uplink, copies its MTU, and reports ports in network_state', async () => {
    await ipn(ns, 'link', 'add', 'upa0', 'mtu', '1400', 'type', 'veth', 'peer', 'name', 'upa1');
    const r = await call(ctx, 'network_ensure_bridge', 'brt1', { uplink: 'upa0', stp: false });
    assert.equal(r.changed, true);
    assert.equal((await link('upa0')).master, 'brt1');
    assert.equal((await link('brt1')).mtu, 1400);
    assert.ok((await link('upa0')).flags.includes('UP'));
    const again = await call(ctx, 'network_ensure_bridge', 'brt1', { uplink: 'upa0', stp: false });
    assert.equal(again.changed, false);
    // A changed MTU is a change, reported with old and new.
    const mtu = await call(ctx, 'network_ensure_bridge', 'brt1', { mtu: 1300 });
    assert.deepEqual(mtu.changes, ['set brt1 mtu 1400 → 1300']);
    const st = await call(ctx, 'network_state');
    const b = st.bridges.find((x: any) => x.name === 'brt1');
    assert.deepEqual(b.ports, ['upa0']);
    assert.equal(b.brick_owned, true);
    assert.equal(st.namespace, ns);
  });

  it('refuses bad names, VLANs, options and conflicts with a clear fault and no change', async () => {
    const before = JSON.stringify((await linksJson(ns)).map((l) => [l.ifname, l.master, l.mtu, l.flags]));
    const bad: Array<[string, unknown[], string, RegExp]> = [
      ['network_ensure_bridge', ['waytoolongbridg0', {}], 'INVALID_PARAMS', /16 characters; the kernel allows 15/],
      ['network_ensure_bridge', ['br;rm -rf /', {}], 'INVALID_PARAMS', /not a valid interface name/],
      ['network_ensure_bridge', ['-br', {}], 'INVALID_PARAMS', /not a valid interface name/],
      ['network_ensure_bridge', ['brt2', { mtu: 10 }], 'INVALID_PARAMS', /opts.mtu/],
      ['network_ensure_bridge', ['brt2', { uplnk: 'x' }], 'INVALID_PARAMS', /opts.uplnk: unknown option/],
      ['network_ensure_bridge', ['brt2', { uplink: 'nosuch0' }], 'NOT_FOUND', /uplink nosuch0 does not exist/],
      ['network_ensure_bridge', ['brt2', { uplink: 'upa0' }], 'CONFLICT', /already a port of brt1/],
      ['network_ensure_bridge', ['upa1', {}], 'CONFLICT', /not a bridge/],
      ['network_ensure_vlan_bridge', ['brt1', 0, {}], 'INVALID_PARAMS', /1-4094/],
      ['network_ensure_vlan_bridge', ['brt1', 4095, {}], 'INVALID_PARAMS', /1-4094/],
      ['network_ensure_vlan_bridge', ['brt1', '12a', {}], 'INVALID_PARAMS', /1-4094/],
      ['network_ensure_vlan_bridge', ['nosuch0', 10, {}], 'NOT_FOUND', /parent nosuch0/],
      ['network_ensure_vlan_bridge', ['brt0', 10, {}], 'CONFLICT', /no physical uplink/],
      ['network_remove_vlan_bridge', ['brt1'], 'CONFLICT', /not a VLAN bridge brick made/],
      ['network_setup_control', ['control0', '169.254.0.1/33'], 'INVALID_PARAMS', /cidr/],
      ['network_setup_control', ['control0', 'fe80::1/64'], 'INVALID_PARAMS', /IPv4/],
      // The kernel refuses these two names for any device ("Invalid argument"): refused up front.
      ['network_ensure_bridge', ['all', {}], 'INVALID_PARAMS', /name: "all" is reserved by the kernel/],
      ['network_ensure_bridge', ['default', {}], 'INVALID_PARAMS', /name: "default" is reserved by the kernel/],
      ['network_setup_control', ['default', '169.254.0.1/16'], 'INVALID_PARAMS', /dev: "default" is reserved/],
      ['network_ensure_vlan_bridge', ['brt1', 10, { name: 'all' }], 'INVALID_PARAMS', /opts.name: "all" is reserved/],
      ['network_ensure_vxlan_bridge', ['upa0', 10, { name: 'default' }], 'INVALID_PARAMS', /opts.name: "default" is reserved/],
    ];
    for (const [m, args, fault, msg] of bad) {
      await assert.rejects(call(ctx, m, ...args), (e: unknown) => {
        assert.ok(e instanceof BrickError, `${m} ${JSON.stringify(args)}: ${e}`);
        assert.equal(e.fault, fault, `${m} ${JSON.stringify(args)}: ${e.message}`);
        assert.match(e.message, msg);
        return true;
      });
    }
    const afterState = JSON.stringify((await linksJson(ns)).map((l) => [l.ifname, l.master, l.mtu, l.flags]));
    assert.equal(afterState, before);
  });

  it('a name that is another link\'s altname is refused as taken (CONFLICT naming the link), not read as absent; nothing changes', async () => {
    await ipn(ns, 'link', 'add', 'alt0', 'type', 'veth', 'peer', 'name', 'alt1');
    await ipn(ns, 'link', 'property', 'add', 'dev', 'alt0', 'altname', 'altup');
    const before = JSON.stringify((await linksJson(ns)).map((l) => [l.ifname, l.master, l.mtu, l.flags, l.ifalias]));
    const cases: Array<[string, unknown[]]> = [
      ['network_ensure_bridge', ['altup', {}]], // was COMMAND_FAILED "File exists"
      ['network_ensure_bridge', ['brt3', { uplink: 'altup' }]], // was NOT_FOUND "uplink altup does not exist"
      ['network_setup_control', ['altup', '169.254.0.1/16']], // was COMMAND_FAILED "File exists"
      ['network_ensure_vxlan_bridge', ['altup', 10, {}]], // was NOT_FOUND "pif altup does not exist"
      ['network_remove_bridge', ['altup']], // was {removed: false}
    ];
    for (const [m, args] of cases)
      await assert.rejects(call(ctx, m, ...args), (e: unknown) => {
        assert.ok(e instanceof BrickError, `${m}: ${e}`);
        assert.equal(e.fault, 'CONFLICT', `${m} ${JSON.stringify(args)}: ${e.message}`);
        assert.match(e.message, /altup is an alternative name \(altname\) of alt0/);
        return true;
      });
    assert.equal(JSON.stringify((await linksJson(ns)).map((l) => [l.ifname, l.master, l.mtu, l.flags, l.ifalias])), before);
    await ipn(ns, 'link', 'del', 'alt0');
  });

  it('network_remove_bridge releases a port added after its first read only under that port\'s lock', async () => {
    // brrm0 has port rma0. Right after remove's first read (no lock held yet), another call makes
    // rmb0 a port of brrm0; then a third party holds rmb0's lock (as a call changing rmb0 would).
    // Remove must not change rmb0 until it has rmb0's lock: its rollback ("master brrm0") or its
    // release could otherwise undo what the holder of rmb0 did.
    await ipn(ns, 'link', 'add', 'rma0', 'type', 'veth', 'peer', 'name', 'rma1');
    await ipn(ns, 'link', 'add', 'rmb0', 'type', 'veth', 'peer', 'name', 'rmb1');
    const asked: string[][] = [];
    let onAsk = () => {};
    class SpyLock extends KeyedLock {
      override with<T>(keys: string | readonly string[], fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
        asked.push(typeof keys === 'string' ? [keys] : [...keys]);
        onAsk();
        return super.with(keys, fn, signal);
      }
    }
    const locks = new SpyLock();
    const plain = testCtx(ctx.config, { locks });
    await call(plain, 'network_ensure_bridge', 'brrm0', { uplink: 'rma0' });
    let holding = false;
    let releasedUnlocked = false;
    let letGo!: () => void;
    const held = new Promise<void>((r) => (letGo = r));
    let hooked = false;
    const runner: Runner = async (cmd, args, opts) => {
      const input = typeof opts.input === 'string' ? opts.input : '';
      if (holding && /link set dev rmb0 nomaster/.test(input)) releasedUnlocked = true;
      const r = await run(cmd, args, opts);
      if (!hooked && /link show master brrm0/.test(input)) {
        hooked = true; // remove's first read: add a port, then take that port's lock
        await call(plain, 'network_ensure_bridge', 'brrm0', { uplink: 'rmb0' });
        let got!: () => void;
        const gotIt = new Promise<void>((g) => (got = g));
        void locks.with(linkKey('rmb0'), async () => {
          holding = true;
          got();
          await held;
          holding = false;
        });
        await gotIt;
        asked.length = 0;
        onAsk = () => {
          if (asked.some((k) => k.includes(linkKey('rmb0')))) letGo(); // remove waits for rmb0 now
        };
      }
      return r;
    };
    const rm = call(testCtx(ctx.config, { locks, runner }), 'network_remove_bridge', 'brrm0');
    const settled = await Promise.race([rm.then(() => 'done', () => 'done'), held.then(() => 'asked')]);
    letGo();
    const r = await rm;
    assert.equal(releasedUnlocked, false, `remove released rmb0 while another held its lock (${settled})`);
    assert.equal(r.removed, true);
    assert.deepEqual([...r.changes].sort(), ['released rma0 from brrm0', 'released rmb0 from brrm0', 'removed bridge brrm0']);
    await ipn(ns, 'link', 'del', 'rma0');
    await ipn(ns, 'link', 'del', 'rmb0');
  });

  it('a VLAN bridge on this kernel (no 8021q) fails cleanly and leaves nothing behind', async () => {
    const before = (await linksJson(ns)).map((l) => l.ifname).sort();
    await assert.rejects(call(ctx, 'network_ensure_vlan_bridge', 'brt1', 20, {}), (e: unknown) => {
      assert.ok(e instanceof BrickError);
      assert.equal(e.fault, 'COMMAND_FAILED');
      assert.match(e.message, /link add link upa0 name upa0\.20 type vlan id 20/);
      return true;
    });
    assert.deepEqual((await linksJson(ns)).map((l) => l.ifname).sort(), before);
  });

  it('50 concurrent asks for the same bridge make exactly one', async () => {
    const replies = await Promise.all(Array.from({ length: 50 }, () => call(ctx, 'network_ensure_bridge', 'brcc0', {})));
    assert.equal(replies.filter((r) => r.changed).length, 1);
    assert.equal((await linksJson(ns)).filter((l) => l.ifname === 'brcc0').length, 1);
  });

  it('network_gc removes only brick-owned VLAN bridges without guest ports, never a person\'s bridge', async () => {
    // 8021q is missing here, so the "VLAN devices" are dummies/veths marked as brick made them.
    await ipn(ns, 'link', 'add', 'brgc1', 'type', 'bridge');
    await ipn(ns, 'link', 'set', 'brgc1', 'alias', 'brick:vlan-bridge');
    await ipn(ns, 'link', 'add', 'gcv1', 'type', 'veth', 'peer', 'name', 'gcv1p');
    await ipn(ns, 'link', 'set', 'gcv1', 'alias', 'brick:vlan-device');
    await ipn(ns, 'link', 'set', 'gcv1', 'master', 'brgc1');
    await ipn(ns, 'link', 'add', 'brgc2', 'type', 'bridge'); // brick's, a guest on it
    await ipn(ns, 'link', 'set', 'brgc2', 'alias', 'brick:vlan-bridge');
    await ipn(ns, 'link', 'add', 'vnet7', 'type', 'veth', 'peer', 'name', 'vnet7p');
    await ipn(ns, 'link', 'set', 'vnet7', 'master', 'brgc2');
    await ipn(ns, 'link', 'add', 'brperson', 'type', 'bridge'); // a person's: no alias, no ports
    await ipn(ns, 'link', 'add', 'brgc3', 'type', 'bridge'); // brick's, someone added a port
    await ipn(ns, 'link', 'set', 'brgc3', 'alias', 'brick:vlan-bridge');
    await ipn(ns, 'link', 'add', 'other3', 'type', 'veth', 'peer', 'name', 'other3p');
    await ipn(ns, 'link', 'set', 'other3', 'master', 'brgc3');

    assert.deepEqual(await call(ctx, 'network_gc', { dry_run: true }), ['brgc1']);
    assert.ok(await link('brgc1'), 'dry run removes nothing');
    assert.deepEqual(await call(ctx, 'network_gc', {}), ['brgc1']);
    assert.equal(await link('brgc1'), undefined);
    assert.equal(await link('gcv1'), undefined, "brick's VLAN device goes with it");
    for (const kept of ['brgc2', 'vnet7', 'brperson', 'brgc3', 'brt0', 'brt1']) assert.ok(await link(kept), `${kept} kept`);
    assert.deepEqual(await call(ctx, 'network_gc', {}), [], 'second run: nothing left to remove');
    // network_remove_vlan_bridge: in use → CONFLICT; gone → removed false
    await assert.rejects(call(ctx, 'network_remove_vlan_bridge', 'brgc2'), /still has ports vnet7/);
    assert.deepEqual((await call(ctx, 'network_remove_vlan_bridge', 'brgc1')).removed, false);
    await ipn(ns, 'link', 'del', 'vnet7');
    assert.equal((await call(ctx, 'network_remove_vlan_bridge', 'brgc2')).removed, true);
    assert.equal(await link('brgc2'), undefined);
  });

  it('control0: bridge, 169.254.0.1/16, ARP on, the only link-local route, NOZEROCONF, stale ifcfg — each step reported, idempotent', async () => {
    await ipn(ns, 'link', 'add', 'zc0', 'type', 'veth', 'peer', 'name', 'zc0p');
    await ipn(ns, 'link', 'set', 'zc0', 'up');
    await ipn(ns, 'route', 'add', '169.254.0.0/16', 'dev', 'zc0', 'metric', '1002'); // zeroconf's
    const sysconfig = join(tmp, 'network');
    writeFileSync(sysconfig, 'NETWORKING=yes\nNOZEROCONF=no\nHOSTNAME=h1\n');
    const scripts = join(tmp, 'network-scripts');
    execFileSync('mkdir', ['-p', scripts]);
    writeFileSync(join(scripts, 'ifcfg-control0'), 'DEVICE=control0\n');
    const paths = { sysconfigNetwork: sysconfig, ifcfgDir: scripts };

    const r = (await setupControl(ctx, 'control0', '169.254.0.1/16', paths)) as any;
    assert.equal(r.changed, true);
    assert.deepEqual(r.steps, {
      bridge: 'created',
      link_up: 'brought up',
      arp: 'already on',
      address: 'added',
      other_routes_removed: ['169.254.0.0/16 dev zc0 metric 1002'],
      route: 'added',
      nozeroconf: 'set',
      ifcfg: 'removed',
    });
    const l = await link('control0');
    assert.equal(l.linkinfo.info_kind, 'bridge');
    assert.ok(l.flags.includes('UP') && !l.flags.includes('NOARP'));
    const addrs = JSON.parse(await ipn(ns, '-json', 'addr', 'show', 'dev', 'control0'))[0].addr_info.filter((a: any) => a.family === 'inet');
    assert.deepEqual(addrs.map((a: any) => `${a.local}/${a.prefixlen}`), ['169.254.0.1/16']);
    const routes = JSON.parse(await ipn(ns, '-json', '-4', 'route', 'show', '169.254.0.0/16'));
    assert.deepEqual(routes.map((x: any) => x.dev), ['control0']);
    assert.equal(readFileSync(sysconfig, 'utf8'), 'NETWORKING=yes\nNOZEROCONF=yes\nHOSTNAME=h1\n');
    assert.equal(existsSync(join(scripts, 'ifcfg-control0')), false);

    // Again, and in Ovm3's form (the network, not the address): nothing to do.
    for (const cidr of ['169.254.0.1/16', '169.254.0.0/16']) {
      const again = (await call(ctx, 'network_setup_control', 'control0', cidr)) as any;
      assert.equal(again.changed, false, JSON.stringify(again.changes));
    }
    const again = (await setupControl(ctx, 'control0', '169.254.0.0/16', paths)) as any;
    assert.deepEqual([again.changed, again.steps.nozeroconf, again.steps.ifcfg], [false, 'already set', 'absent']);

    // ARP turned off and zeroconf back: both repaired, nothing else touched.
    await ipn(ns, 'link', 'set', 'control0', 'arp', 'off');
    await ipn(ns, 'route', 'add', '169.254.0.0/16', 'dev', 'zc0', 'metric', '1002');
    const fix = (await setupControl(ctx, 'control0', '169.254.0.0/16', paths)) as any;
    assert.deepEqual(fix.changes, ['turned ARP on for control0', 'removed route 169.254.0.0/16 via zc0']);
  });

  it('safe apply: a bridge taking over the uplink with the host\'s address and default route is refused without confirm_within_s, rolled back without network_confirm, kept with it', async () => {
    await ipn(ns, 'link', 'add', 'mgmt0', 'type', 'veth', 'peer', 'name', 'mgmt0p');
    await ipn(ns, 'link', 'set', 'mgmt0', 'up');
    await ipn(ns, 'link', 'set', 'mgmt0p', 'up');
    await ipn(ns, 'address', 'add', '10.77.0.2/24', 'dev', 'mgmt0');
    await ipn(ns, 'route', 'add', 'default', 'via', '10.77.0.1', 'dev', 'mgmt0');
    const snapshot = async () => ({
      addrs: JSON.parse(await ipn(ns, '-json', '-4', 'addr', 'show'))
        .filter((l: any) => l.ifname !== 'mgmt1')
        .flatMap((l: any) => l.addr_info.map((a: any) => `${l.ifname} ${a.local}/${a.prefixlen}`))
        .sort(),
      defaults: JSON.parse(await ipn(ns, '-json', '-4', 'route', 'show', 'default')).map((r: any) => `${r.gateway} ${r.dev}`),
      brmgmt: Boolean(await link('brmgmt')),
      master: (await link('mgmt0')).master ?? '',
    });
    const before = await snapshot();
    assert.deepEqual(before.defaults, ['10.77.0.1 mgmt0']);

    await assert.rejects(call(ctx, 'network_ensure_bridge', 'brmgmt', { uplink: 'mgmt0' }), /confirm_within_s/);
    assert.deepEqual(await snapshot(), before, 'refused: nothing changed');

    const rolledBack = safeApply.nextRollback();
    // 10 s: the checks below must see the change before the rollback, also on a loaded machine.
    const r = await call(ctx, 'network_ensure_bridge', 'brmgmt', { uplink: 'mgmt0', confirm_within_s: 10 });
    assert.equal(r.pending_confirmation, true);
    const during = await snapshot();
    assert.deepEqual(during.defaults, ['10.77.0.1 brmgmt']);
    assert.ok(during.addrs.includes('brmgmt 10.77.0.2/24') && !during.addrs.includes('mgmt0 10.77.0.2/24'));
    assert.equal(during.master, 'brmgmt');
    assert.equal((await link('brmgmt')).address, (await link('mgmt0')).address, 'the bridge took the uplink MAC');
    // A second risky change waits for the first to be settled.
    await ipn(ns, 'link', 'add', 'mgmt1', 'type', 'veth', 'peer', 'name', 'mgmt1p');
    await ipn(ns, 'address', 'add', '10.78.0.2/24', 'dev', 'mgmt1');
    await assert.rejects(call(ctx, 'network_ensure_bridge', 'brmgmt2', { uplink: 'mgmt1', confirm_within_s: 5 }), (e: any) => e.fault === 'NOT_READY' && /waiting for network_confirm/.test(e.message));
    assert.equal(await link('brmgmt2'), undefined);
    await rolledBack;
    assert.deepEqual(await snapshot(), before, 'rolled back to exactly what it was');
    await assert.rejects(call(ctx, 'network_confirm'), /rolled back at/);

    const r2 = await call(ctx, 'network_ensure_bridge', 'brmgmt', { uplink: 'mgmt0', confirm_within_s: 30 });
    assert.equal(r2.pending_confirmation, true);
    const kept = await call(ctx, 'network_confirm');
    assert.deepEqual(kept.kept, r2.changes);
    assert.deepEqual((await snapshot()).defaults, ['10.77.0.1 brmgmt']);
    await assert.rejects(call(ctx, 'network_confirm'), (e: any) => e.fault === 'NOT_READY');
  });
});
