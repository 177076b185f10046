// dpdk_add_port / dpdk_del_port / dpdk_list_ports against a REAL OVS-DPDK this test starts
// (test/fixtures/ovs-dpdk.ts): hugepages, dpdk-init=true, --no-pci, a netdev bridge.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { stat, writeFile, mkdtemp, rm, readFile, mkdir } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { defaultConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import type { CallContext } from '../../src/rpc/catalogue.js';
import { KeyedLock } from '../../src/shared/keyed-lock.js';
import { run, type Runner } from '../../src/shared/run.js';
import { BrickError } from '../../src/shared/errors.js';
import { methods } from '../../src/network/dpdk/methods.js';
import { methods as netMethods } from '../../src/network/methods.js';
import { detectDpdk } from '../../src/network/dpdk/operations.js';
import { linkKey } from '../../src/network/host/context.js';
import { startOvsDpdk, type OvsDpdk } from '../fixtures/ovs-dpdk.js';
import { startTestServer } from '../fixtures/server.js';
import { XmlRpcFault } from '../../src/agent-extension/codec.js';
import { callContext, invoke } from '../fixtures/call-context.js';

const CI = process.env.CI === 'true';

function configFor(rundir: string): Config {
  const c = defaultConfig();
  c.network.ovs_rundir = rundir;
  return c;
}

function ctxFor(config: Config, locks = new KeyedLock()): CallContext {
  // One context serves the whole suite (longer than 60 s on a loaded machine): each call gets 60 s.
  return callContext(config, { locks, perCall: true });
}

const method = (name: string) => {
  const m = methods.find((x) => x.name === name);
  if (!m) throw new Error(`no method ${name}`);
  return m;
};
// As the dispatcher calls them: arguments checked against the methods' schemas first.
const add = (ctx: CallContext, bridge: unknown, opts?: unknown) => invoke(method('dpdk_add_port'), [bridge, opts], ctx) as Promise<Record<string, any>>;
const del = (ctx: CallContext, port: unknown) => invoke(method('dpdk_del_port'), [port], ctx) as Promise<Record<string, any>>;
const list = (ctx: CallContext) => invoke(method('dpdk_list_ports'), [], ctx) as Promise<Array<Record<string, any>>>;

async function isSocket(p: string): Promise<boolean> {
  return stat(p).then((s) => s.isSocket(), () => false);
}

/** A promise and its resolve. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

/** A lock table that tells the test which keys each caller asks for, and which of them are held then. */
class WatchedLock extends KeyedLock {
  onAsk?: (keys: string[], held: string[]) => void;
  private readonly holding = new Set<string>();
  override with<T>(keys: string | readonly string[], fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const ks = typeof keys === 'string' ? [keys] : [...keys];
    this.onAsk?.(ks, ks.filter((k) => this.holding.has(k)));
    return super.with(
      keys,
      async () => {
        for (const k of ks) this.holding.add(k);
        try {
          return await fn();
        } finally {
          for (const k of ks) this.holding.delete(k);
        }
      },
      signal,
    );
  }
}

function faultOf(fault: string, re?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof BrickError, `expected a BrickError, got ${String(e)}`);
    assert.equal(e.fault, fault, e.message);
    if (re) assert.match(e.message, re);
    return true;
  };
}

describe('DPDK vhost-user ports on a real OVS-DPDK', () => {
  let ovs: OvsDpdk | undefined;
  let skip = '';
  let bridge = '';
  let ctx: CallContext;

  // A snapshot of everything the ports could touch, to prove a refused call changed nothing.
  const dbSnapshot = async () =>
    (await ovs!.vsctl(['--format=json', '--', '--columns=name,ports', 'list', 'Bridge', '--', '--columns=name,tag,external_ids,interfaces', 'list', 'Port', '--', '--columns=name,type,options', 'list', 'Interface'])).stdout;
  const get = async (...args: string[]) => (await ovs!.vsctl(['get', ...args])).stdout.trim();
  const portRow = async (name: string) => (await ovs!.vsctl(['--if-exists', 'get', 'Port', name, 'name'])).stdout.trim();

  before(async () => {
    try {
      ovs = await startOvsDpdk();
    } catch (e) {
      if (CI) throw e; // in CI a missing prerequisite fails
      skip = `OVS-DPDK could not start here: ${(e as Error).message}`;
      return;
    }
    bridge = await ovs.addBridge('bdk');
    ctx = ctxFor(configFor(ovs.rundir));
  });

  after(async () => {
    await ovs?.stop();
  });

  test('detectDpdk reports DPDK initialised with the netdev datapath and vhost-user types', async (t) => {
    if (skip) return t.skip(skip);
    const d = await detectDpdk(ctx);
    assert.equal(d.dpdk, true, d.reason);
    assert.equal(d.initialized, true);
    assert.ok(d.datapath_types.includes('netdev'), String(d.datapath_types));
    assert.ok(d.iface_types.includes('dpdkvhostuser') && d.iface_types.includes('dpdkvhostuserclient'));
    assert.equal(d.reason, undefined);
  });

  test('server mode: OVS creates the socket, status says mode=server, VLAN tag and brick marks are set', async (t) => {
    if (skip) return t.skip(skip);
    const r = await add(ctx, bridge, { mode: 'server', vlan: 100 });
    assert.match(r.port, /^csdpdk-\d+$/);
    assert.equal(r.socket, `${ovs!.rundir}/${r.port}`);
    assert.equal(r.ovs_mode, 'server');
    assert.equal(r.guest_mode, 'client');
    assert.equal(r.vlan, 100);
    assert.equal(r.changed, true);
    assert.ok(await isSocket(r.socket), `${r.socket} should be a Unix socket`);
    assert.equal(await get('Interface', r.port, 'type'), 'dpdkvhostuser');
    assert.equal(await get('Interface', r.port, 'status:mode'), 'server');
    assert.equal(await get('Interface', r.port, 'error'), '[]');
    assert.equal(await get('Port', r.port, 'tag'), '100');
    assert.equal(await get('Port', r.port, 'vlan_mode'), 'access');
    assert.equal(await get('Port', r.port, 'external_ids:brick-owner'), 'dpdk');
    assert.equal(await get('Port', r.port, 'external_ids:brick-dpdk-mode'), 'server');
    assert.equal(await get('Port', r.port, '_uuid').then(() => ovs!.vsctl(['port-to-br', r.port])).then((x) => x.stdout.trim()), bridge);
  });

  test('client mode: vhost-server-path points at <rundir>/<port>, status mode=client, and OVS connects to a guest-side server', async (t) => {
    if (skip) return t.skip(skip);
    const r = await add(ctx, bridge, { mode: 'CLIENT' });
    assert.equal(r.ovs_mode, 'client');
    assert.equal(r.guest_mode, 'server');
    assert.equal(r.vlan, 0);
    assert.equal(r.socket, `${ovs!.rundir}/${r.port}`);
    assert.equal(await get('Interface', r.port, 'type'), 'dpdkvhostuserclient');
    assert.equal(await get('Interface', r.port, 'options:vhost-server-path'), JSON.stringify(r.socket));
    assert.equal(await get('Interface', r.port, 'status:mode'), 'client');
    assert.equal(await get('Port', r.port, 'tag'), '[]');
    // Play the guest (QEMU in server mode): listen on the socket; OVS must connect to it.
    const conns: Socket[] = [];
    const srv: Server = createServer((s) => conns.push(s));
    await new Promise<void>((res) => srv.listen(r.socket, res));
    try {
      const until = Date.now() + 15_000;
      while (conns.length === 0 && Date.now() < until) await new Promise((res) => setTimeout(res, 100));
      assert.ok(conns.length > 0, 'OVS (vhost-user client) never connected to the guest-side socket');
    } finally {
      for (const c of conns) c.destroy();
      await new Promise<void>((res) => srv.close(() => res()));
      await rm(r.socket, { force: true });
    }
  });

  test('dpdk_list_ports shows name, bridge, mode, tag, socket and OVS status', async (t) => {
    if (skip) return t.skip(skip);
    const s = await add(ctx, bridge, { vlan: 7 });
    const c = await add(ctx, bridge, { mode: 'client' });
    const ports = await list(ctx);
    const ps = ports.find((p) => p.name === s.port);
    const pc = ports.find((p) => p.name === c.port);
    assert.ok(ps && pc, JSON.stringify(ports));
    assert.deepEqual(
      { name: ps.name, bridge: ps.bridge, mode: ps.mode, guest_mode: ps.guest_mode, tag: ps.tag, socket: ps.socket, statusMode: ps.status.mode, error: ps.error, brick_owned: ps.brick_owned },
      { name: s.port, bridge, mode: 'server', guest_mode: 'client', tag: 7, socket: s.socket, statusMode: 'server', error: '', brick_owned: true },
    );
    assert.deepEqual(
      { mode: pc.mode, guest_mode: pc.guest_mode, tag: pc.tag, socket: pc.socket, statusMode: pc.status.mode },
      { mode: 'client', guest_mode: 'server', tag: 0, socket: c.socket, statusMode: 'client' },
    );
    assert.ok(['disconnected', 'connected'].includes(ps.status.status), JSON.stringify(ps.status));
  });

  test('20 concurrent adds give 20 distinct ports, all in OVS with their sockets', async (t) => {
    if (skip) return t.skip(skip);
    const before = new Set((await list(ctx)).map((p) => p.name));
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => add(ctx, bridge, { mode: i % 2 ? 'client' : 'server' })));
    const ms = performance.now() - started;
    const names = results.map((r) => r.port);
    assert.equal(new Set(names).size, 20, `names collided: ${names.join(' ')}`);
    for (const n of names) assert.ok(!before.has(n), `${n} existed before`);
    const after = await list(ctx);
    for (const r of results) {
      const p = after.find((x) => x.name === r.port);
      assert.ok(p, `${r.port} missing from OVS`);
      assert.equal(p.mode, r.ovs_mode);
      assert.equal(p.status.mode, r.ovs_mode);
      if (r.ovs_mode === 'server') assert.ok(await isSocket(r.socket), `${r.socket} missing`);
    }
    t.diagnostic(`20 concurrent dpdk_add_port calls: ${ms.toFixed(0)} ms`);
    // Concurrent deletes: all removed, server sockets gone.
    const dels = await Promise.all(names.map((n) => del(ctx, n)));
    assert.ok(dels.every((d) => d.removed === true));
    const left = new Set((await list(ctx)).map((p) => p.name));
    for (const r of results) {
      assert.ok(!left.has(r.port), `${r.port} still listed`);
      if (r.ovs_mode === 'server') assert.equal(await isSocket(r.socket), false, `${r.socket} left behind`);
    }
  });

  test('another process adding csdpdk-N ports at the same time: OVS refuses taken names, both sides retry, no collision', async (t) => {
    if (skip) return t.skip(skip);
    // A second brick process shares no lock and no reservations with this one: only the OVS
    // transaction (add-port without --may-exist) keeps the two apart.
    const modUrl = new URL('../../src/network/dpdk/operations.ts', import.meta.url).href;
    const cfgUrl = new URL('../../src/config/load.ts', import.meta.url).href;
    const child = `
      const { addDpdkPort } = await import(${JSON.stringify(modUrl)});
      const { defaultConfig } = await import(${JSON.stringify(cfgUrl)});
      const { KeyedLock } = await import(${JSON.stringify(new URL('../../src/shared/keyed-lock.ts', import.meta.url).href)});
      const { run } = await import(${JSON.stringify(new URL('../../src/shared/run.ts', import.meta.url).href)});
      const config = defaultConfig(); config.network.ovs_rundir = ${JSON.stringify(ovs!.rundir)};
      const ctx = { run, config, locks: new KeyedLock() };
      await new Promise((r) => setTimeout(r, START_AT - Date.now()));
      const rs = await Promise.all(Array.from({ length: 8 }, () => addDpdkPort(ctx, { bridge: ${JSON.stringify(bridge)}, mode: 'server' })));
      console.log(JSON.stringify(rs.map((r) => r.port)));
    `;
    // Both sides start their adds at the same wall-clock moment (the child needs time to load).
    const startAt = Date.now() + 4000;
    const [theirs, ours] = await Promise.all([
      run(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', child.replace('START_AT', String(startAt))], {
        timeoutMs: 120_000,
        cwd: process.cwd(),
        env: process.env,
      }),
      new Promise((r) => setTimeout(r, startAt - Date.now())).then(() => Promise.all(Array.from({ length: 8 }, () => add(ctx, bridge, {})))),
    ]);
    const theirNames: string[] = JSON.parse(theirs.stdout.trim().split('\n').pop()!);
    const all = [...theirNames, ...ours.map((r) => r.port)];
    assert.equal(new Set(all).size, 16, `collision: ${all.join(' ')}`);
    const listed = new Set((await list(ctx)).map((p) => p.name));
    for (const n of all) assert.ok(listed.has(n), `${n} not in OVS`);
    await Promise.all(all.map((n) => del(ctx, n)));
  });

  test('explicit name: honoured, idempotent with the same settings, CONFLICT with different ones', async (t) => {
    if (skip) return t.skip(skip);
    const r = await add(ctx, bridge, { name: 'vhu-guest1', vlan: 42 });
    assert.equal(r.port, 'vhu-guest1');
    assert.equal(r.changed, true);
    assert.ok(await isSocket(`${ovs!.rundir}/vhu-guest1`));
    const again = await add(ctx, bridge, { name: 'vhu-guest1', vlan: '42', mode: 'server' });
    assert.deepEqual({ ...again }, { ...r, changed: false });
    const snap = await dbSnapshot();
    await assert.rejects(add(ctx, bridge, { name: 'vhu-guest1', vlan: 43 }), faultOf('CONFLICT', /VLAN tag is 42, not 43/));
    await assert.rejects(add(ctx, bridge, { name: 'vhu-guest1', vlan: 42, mode: 'client' }), faultOf('CONFLICT', /dpdkvhostuserclient/));
    // Concurrent identical explicit adds of a new name: one creates, the others find it.
    const many = await Promise.all([1, 2, 3].map(() => add(ctx, bridge, { name: 'vhu-guest2' })));
    assert.deepEqual(many.map((m) => m.changed).sort(), [false, false, true]);
    await del(ctx, 'vhu-guest2');
    assert.equal(await dbSnapshot(), snap);
  });

  test('bad bridge names, VLAN 0/4095, unknown modes and options are INVALID_PARAMS with no change', async (t) => {
    if (skip) return t.skip(skip);
    const snap = await dbSnapshot();
    const bad: Array<[unknown, unknown, RegExp]> = [
      ['sixteen-chars-xx', {}, /^bridge: .*16 characters/],
      ['br/0', {}, /^bridge: /],
      ['br;reboot', {}, /^bridge: /],
      ['-br', {}, /^bridge: /],
      ['', {}, /^bridge: .*empty/],
      [bridge, { vlan: 0 }, /^opts\.vlan: 0 /],
      [bridge, { vlan: 4095 }, /^opts\.vlan: 4095 /],
      [bridge, { vlan: -3 }, /^opts\.vlan: /],
      [bridge, { vlan: 'ten' }, /^opts\.vlan: /],
      [bridge, { mode: 'dpdk' }, /^opts\.mode: must be "server" or "client", got "dpdk"/],
      [bridge, { mode: '' }, /^opts\.mode: /],
      [bridge, { name: 'x'.repeat(16) }, /^opts\.name: /],
      [bridge, { name: '../db.sock' }, /^opts\.name: /],
      [bridge, { tag: 5 }, /^opts\.tag: unknown option/],
    ];
    for (const [b, o, re] of bad) {
      await assert.rejects(add(ctx, b, o), faultOf('INVALID_PARAMS', re), `${JSON.stringify(b)} ${JSON.stringify(o)}`);
    }
    await assert.rejects(add(ctx, 'nosuchbr0', {}), faultOf('NOT_FOUND', /nosuchbr0/));
    await assert.rejects(del(ctx, 'bad/port'), faultOf('INVALID_PARAMS', /^port: /));
    assert.equal(await dbSnapshot(), snap, 'the OVS database changed');
  });

  test('dpdk_del_port is idempotent and leaves ports that are not brick\'s alone', async (t) => {
    if (skip) return t.skip(skip);
    const r = await add(ctx, bridge, {});
    assert.ok(await isSocket(r.socket));
    assert.deepEqual({ ...(await del(ctx, r.port)) }, { port: r.port, removed: true });
    assert.equal(await isSocket(r.socket), false, 'OVS should remove the server socket');
    assert.equal((await ovs!.vsctl(['--if-exists', 'get', 'Port', r.port, 'name'])).stdout.trim(), '');
    assert.deepEqual({ ...(await del(ctx, r.port)) }, { port: r.port, removed: false });
    // A vhost-user port someone else made (no brick-owner mark): refused, untouched.
    await ovs!.vsctl(['add-port', bridge, 'foreign1', '--', 'set', 'Interface', 'foreign1', 'type=dpdkvhostuser']);
    await assert.rejects(del(ctx, 'foreign1'), faultOf('CONFLICT', /not a brick DPDK port/));
    assert.equal(await get('Port', 'foreign1', 'name'), 'foreign1');
    const listed = (await list(ctx)).find((p) => p.name === 'foreign1');
    assert.equal(listed?.brick_owned, false);
    await assert.rejects(add(ctx, bridge, { name: 'foreign1' }), faultOf('CONFLICT', /not brick's/));
    await ovs!.vsctl(['del-port', 'foreign1']);
  });

  test('OVS refusing the port (socket path taken by a file) → VERIFY_FAILED quoting OVS, port removed again', async (t) => {
    if (skip) return t.skip(skip);
    const snap = await dbSnapshot();
    await writeFile(`${ovs!.rundir}/vhu-blocked`, 'not a socket');
    await assert.rejects(add(ctx, bridge, { name: 'vhu-blocked' }), faultOf('VERIFY_FAILED', /could not open network device vhu-blocked.*removed again/));
    assert.equal((await ovs!.vsctl(['--if-exists', 'get', 'Port', 'vhu-blocked', 'name'])).stdout.trim(), '');
    assert.equal(await dbSnapshot(), snap);
    await rm(`${ovs!.rundir}/vhu-blocked`, { force: true });
  });

  test('vhost-sock-dir set after ovs-vswitchd started (it reads it only at start): the reply and the list give the socket where it listens', async (t) => {
    if (skip) return t.skip(skip);
    await mkdir(`${ovs!.rundir}/late`, { recursive: true });
    await ovs!.vsctl(['set', 'Open_vSwitch', '.', 'other_config:vhost-sock-dir=late']);
    const made: string[] = [];
    try {
      const r = await add(ctx, bridge, { name: 'vhu-late1' });
      made.push(r.port);
      assert.equal(r.socket, `${ovs!.rundir}/vhu-late1`, 'the reply must name the socket ovs-vswitchd made, not <rundir>/late/');
      assert.ok(await isSocket(r.socket));
      assert.equal(await isSocket(`${ovs!.rundir}/late/vhu-late1`), false);
      assert.equal((await list(ctx)).find((p) => p.name === 'vhu-late1')?.socket, r.socket);
      // Asked again: the same working port, nothing repaired.
      assert.deepEqual({ ...(await add(ctx, bridge, { name: 'vhu-late1' })) }, { ...r, changed: false });
      // A client port: OVS connects wherever vhost-server-path says, and the reply says the same.
      const c = await add(ctx, bridge, { mode: 'client', name: 'vhu-late2' });
      made.push(c.port);
      assert.equal(await get('Interface', c.port, 'options:vhost-server-path'), JSON.stringify(c.socket));
    } finally {
      await ovs!.vsctl(['remove', 'Open_vSwitch', '.', 'other_config', 'vhost-sock-dir']);
      for (const n of made) await del(ctx, n);
    }
    // Made while vhost-sock-dir said "late", asked again after it was unset: still the same port.
    const c2 = await add(ctx, bridge, { mode: 'client', name: 'vhu-late3' });
    await ovs!.vsctl(['set', 'Open_vSwitch', '.', 'other_config:vhost-sock-dir=late']);
    try {
      assert.deepEqual({ ...(await add(ctx, bridge, { mode: 'client', name: 'vhu-late3' })) }, { ...c2, changed: false });
    } finally {
      await ovs!.vsctl(['remove', 'Open_vSwitch', '.', 'other_config', 'vhost-sock-dir']);
      await del(ctx, c2.port);
    }
  });

  test('a server port whose socket file was removed is added again by dpdk_add_port: changed true, the socket back', async (t) => {
    if (skip) return t.skip(skip);
    const r = await add(ctx, bridge, { name: 'vhu-gone1', vlan: 30 });
    await rm(r.socket);
    try {
      const again = await add(ctx, bridge, { name: 'vhu-gone1', vlan: 30 });
      assert.deepEqual({ ...again }, { ...r, changed: true });
      assert.ok(await isSocket(again.socket), 'the socket is not back');
      assert.equal(await get('Interface', 'vhu-gone1', 'error'), '[]');
      assert.equal(await get('Port', 'vhu-gone1', 'tag'), '30');
      assert.equal(await get('Port', 'vhu-gone1', 'external_ids:brick-owner'), 'dpdk');
      assert.deepEqual({ ...(await add(ctx, bridge, { name: 'vhu-gone1', vlan: 30 })) }, { ...r, changed: false });
    } finally {
      await del(ctx, 'vhu-gone1');
    }
  });

  test('a brick port OVS reports an error on (its socket path was blocked) is added again once the path is free', async (t) => {
    if (skip) return t.skip(skip);
    // As brick would have made it, but OVS could not create the socket: the interface has an error.
    const path = `${ovs!.rundir}/vhu-err1`;
    await writeFile(path, 'in the way');
    await ovs!.vsctl(['add-port', bridge, 'vhu-err1', 'external_ids:brick-owner=dpdk', 'external_ids:brick-dpdk-mode=server', '--', 'set', 'Interface', 'vhu-err1', 'type=dpdkvhostuser']);
    try {
      assert.notEqual(await get('Interface', 'vhu-err1', 'error'), '[]');
      // Still in the way: added again, refused again, and the fault says no port is left.
      await assert.rejects(add(ctx, bridge, { name: 'vhu-err1' }), faultOf('VERIFY_FAILED', /^port vhu-err1 existed but OVS reports.*no port vhu-err1 now.*new port was removed again/));
      assert.equal(await portRow('vhu-err1'), '');
      await ovs!.vsctl(['add-port', bridge, 'vhu-err1', 'external_ids:brick-owner=dpdk', 'external_ids:brick-dpdk-mode=server', '--', 'set', 'Interface', 'vhu-err1', 'type=dpdkvhostuser']);
      await rm(path);
      const r = await add(ctx, bridge, { name: 'vhu-err1' });
      assert.equal(r.changed, true);
      assert.ok(await isSocket(r.socket));
      assert.equal(await get('Interface', 'vhu-err1', 'error'), '[]');
    } finally {
      await ovs!.vsctl(['--if-exists', 'del-port', 'vhu-err1']);
      await rm(path, { force: true });
    }
  });

  test('a stale socket file (left by a killed ovs-vswitchd) is removed before the add; a port that failed on one is added again', async (t) => {
    if (skip) return t.skip(skip);
    // A socket file nobody listens on: what an ovs-vswitchd killed with SIGKILL leaves behind.
    const stale = (path: string) => run('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', path], { timeoutMs: 10_000 });
    await stale(`${ovs!.rundir}/vhu-stale1`);
    try {
      const r = await add(ctx, bridge, { name: 'vhu-stale1' });
      assert.equal(r.changed, true);
      assert.equal(await get('Interface', 'vhu-stale1', 'error'), '[]');
      assert.ok(await isSocket(r.socket));
      // The port as the killed switch's successor has it: made on a stale socket, so OVS reports an error.
      await stale(`${ovs!.rundir}/vhu-stale2`);
      await ovs!.vsctl(['add-port', bridge, 'vhu-stale2', 'external_ids:brick-owner=dpdk', 'external_ids:brick-dpdk-mode=server', '--', 'set', 'Interface', 'vhu-stale2', 'type=dpdkvhostuser']);
      assert.match(await get('Interface', 'vhu-stale2', 'error'), /could not open network device vhu-stale2/);
      const r2 = await add(ctx, bridge, { name: 'vhu-stale2' });
      assert.equal(r2.changed, true);
      assert.equal(await get('Interface', 'vhu-stale2', 'error'), '[]');
      assert.ok(await isSocket(r2.socket));
    } finally {
      for (const n of ['vhu-stale1', 'vhu-stale2']) {
        await ovs!.vsctl(['--if-exists', 'del-port', n]);
        await rm(`${ovs!.rundir}/${n}`, { force: true });
      }
    }
  });

  test('dpdk_add_port waits for a change on the same bridge (one lock scheme: net:link:<bridge>)', async (t) => {
    if (skip) return t.skip(skip);
    const locks = new KeyedLock();
    const c = ctxFor(configFor(ovs!.rundir), locks);
    const ports = async () => (await ovs!.vsctl(['list-ports', bridge])).stdout.split('\n').filter(Boolean).sort();
    const before = await ports();
    // A bridge change in progress: it holds the bridge's key, as network_ensure_bridge and every
    // other change to that bridge do, in the same lock table.
    let release!: () => void;
    const change = locks.with(linkKey(bridge), () => new Promise<void>((r) => (release = r)));
    let settled = 0;
    const adds = [add(c, bridge, {}), add(c, bridge, { name: 'vhu-wait1', mode: 'client' })];
    for (const a of adds) a.then(() => settled++, () => settled++);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(settled, 0, 'dpdk_add_port finished while the bridge was being changed');
    assert.deepEqual(await ports(), before, 'OVS got a port while the bridge was being changed');
    release();
    await change;
    const added = await Promise.all(adds);
    assert.deepEqual(await ports(), [...before, ...added.map((r) => r.port)].sort());
    for (const r of added) await del(c, r.port);
    assert.deepEqual(await ports(), before);
  });

  test('dpdk_del_port holding its port: a removal of its bridge and an add of the same name wait for it (the port key), each then sees the port gone', async (t) => {
    if (skip) return t.skip(skip);
    // dpdk_del_port locks only the port's key. dpdk_add_port holds [bridge, port]; network_remove_bridge
    // holds the bridge and every port it has (read again inside the locks): both include the port's
    // key, so neither can run between the delete's read and its del-port. The delete is held at its
    // del-port (holding the key) until the other call has asked for its locks: no waiting on time.
    const config = configFor(ovs!.rundir);
    config.network.backend = 'openvswitch';
    config.network.namespace = ovs!.netns;
    const locks = new WatchedLock();
    const changes: string[] = [];
    let hold: { at: ReturnType<typeof gate>; go: ReturnType<typeof gate> } | undefined;
    const runner: Runner = async (cmd, args, opts) => {
      const verb = ['del-port', 'del-br', 'add-port'].find((v) => args.includes(v));
      if (cmd === 'ovs-vsctl' && verb === 'del-port' && hold) {
        hold.at.open();
        await hold.go.promise;
      }
      const r = await run(cmd, args, opts);
      if (cmd === 'ovs-vsctl' && verb) changes.push(`${verb} ${args[args.indexOf(verb) + (verb === 'add-port' ? 2 : 1)]}`);
      return r;
    };
    const c = callContext(config, { runner, locks, perCall: true });
    const br = `bdr${Math.random().toString(16).slice(2, 8)}`;
    const net = (name: string, ...args: unknown[]) => invoke(netMethods.find((m) => m.name === name)!, args, c) as Promise<Record<string, any>>;
    await net('network_ensure_bridge', br, { datapath_type: 'netdev' });
    try {
      // Each other call against a delete held at its del-port.
      const race = async (other: () => Promise<Record<string, any>>) => {
        await add(c, br, { name: 'vhu-race', mode: 'client' });
        changes.length = 0;
        hold = { at: gate(), go: gate() };
        const deleting = del(c, 'vhu-race');
        await Promise.race([hold.at.promise, deleting]);
        // Until the other call waits for a key the delete holds, or (if it does not wait) has ended.
        const waits = gate();
        locks.onAsk = (_keys, held) => held.includes(linkKey('vhu-race')) && waits.open();
        const running = other();
        await Promise.race([waits.promise, running.catch(() => {})]);
        locks.onAsk = undefined;
        assert.deepEqual(changes, [], 'a change ran while the delete held the port');
        const go = hold.go;
        hold = undefined;
        go.open();
        return Promise.all([deleting, running]);
      };
      // An add of the same name: wholly after the delete, so it adds a new port (changed true), not
      // "exists already, changed false" for a port the delete then removes.
      const [d1, a1] = await race(() => add(c, br, { name: 'vhu-race', mode: 'client' }));
      assert.deepEqual({ ...d1 }, { port: 'vhu-race', removed: true });
      assert.equal(a1.changed, true, JSON.stringify(a1));
      assert.deepEqual(changes, ['del-port vhu-race', 'add-port vhu-race']);
      assert.equal(await portRow('vhu-race'), 'vhu-race');
      await del(c, 'vhu-race');
      // The bridge's removal: wholly after the delete, it finds the bridge without the port.
      const [d2, r2] = await race(() => net('network_remove_bridge', br));
      assert.deepEqual({ ...d2 }, { port: 'vhu-race', removed: true });
      assert.equal(r2.removed, true, JSON.stringify(r2));
      assert.deepEqual(changes, ['del-port vhu-race', `del-br ${br}`]);
      assert.equal(await portRow('vhu-race'), '');
    } finally {
      await ovs!.vsctl(['--if-exists', 'del-port', 'vhu-race']);
      await ovs!.vsctl(['--if-exists', 'del-br', br]);
    }
  });

  test("network_remove_bridge refuses a bridge with a vhost-user port, connected or not, and leaves both (before: del-br took the guest's port along)", async (t) => {
    if (skip) return t.skip(skip);
    const config = configFor(ovs!.rundir);
    config.network.backend = 'openvswitch';
    config.network.namespace = ovs!.netns;
    const c = ctxFor(config);
    const net = (name: string, ...args: unknown[]) => invoke(netMethods.find((m) => m.name === name)!, args, c) as Promise<Record<string, any>>;
    const br = `bdg${Math.random().toString(16).slice(2, 8)}`;
    await net('network_ensure_bridge', br, { datapath_type: 'netdev' });
    try {
      const server = await add(c, br, { mode: 'server' }); // csdpdk-N, no guest connected
      await add(c, br, { name: 'vhu-keep', mode: 'client', vlan: 30 });
      const snap = await dbSnapshot();
      await assert.rejects(
        net('network_remove_bridge', br),
        faultOf('CONFLICT', new RegExp(`still has ports ${server.port}, vhu-keep;.*are vhost-user ports made for a guest: remove them with dpdk_del_port`)),
      );
      assert.equal(await dbSnapshot(), snap, 'the refused removal changed something');
      assert.ok(await isSocket(server.socket), 'the server port lost its socket');
      await del(c, server.port);
      await assert.rejects(net('network_remove_bridge', br), faultOf('CONFLICT', /still has ports vhu-keep;/));
      await del(c, 'vhu-keep');
      assert.equal((await net('network_remove_bridge', br)).removed, true);
    } finally {
      await ovs!.vsctl(['--if-exists', 'del-port', 'vhu-keep']);
      await ovs!.vsctl(['--if-exists', 'del-br', br]);
    }
  });

  test("network_remove_vlan_bridge / network_gc and a dpdk_add_port on that VLAN at the same time: the removal wholly first (before: the fake bridge's del-br took the new port along)", async (t) => {
    if (skip) return t.skip(skip);
    // A port joins a fake bridge by being added to its parent with its tag (dpdk_add_port holds the
    // parent's key and the port's), and ovs-vsctl del-br of a fake bridge deletes every port on its
    // VLAN. The removal is held at its del-br (holding its locks) until the add has asked for a key
    // the removal holds, or (if it does not wait) has ended: no waiting on time.
    const config = configFor(ovs!.rundir);
    config.network.backend = 'openvswitch';
    config.network.namespace = ovs!.netns;
    const locks = new WatchedLock();
    let hold: { fake: string; at: ReturnType<typeof gate>; go: ReturnType<typeof gate> } | undefined;
    const runner: Runner = async (cmd, args, opts) => {
      if (cmd === 'ovs-vsctl' && hold && args.includes('del-br') && args.includes(hold.fake)) {
        hold.at.open();
        await hold.go.promise;
      }
      return run(cmd, args, opts);
    };
    const c = callContext(config, { runner, locks, perCall: true });
    const net = (name: string, ...args: unknown[]) => invoke(netMethods.find((m) => m.name === name)!, args, c) as Promise<any>;
    const br = `bdv${Math.random().toString(16).slice(2, 8)}`;
    const fake = `${br}.41`;
    const bridges = async () => (await ovs!.vsctl(['list-br'])).stdout.split('\n').filter(Boolean);
    await net('network_ensure_bridge', br, { datapath_type: 'netdev' });
    try {
      for (const removal of [() => net('network_remove_vlan_bridge', fake), () => net('network_gc', {})]) {
        await net('network_ensure_vlan_bridge', br, 41, { name: fake });
        hold = { fake, at: gate(), go: gate() };
        const removing = removal();
        await Promise.race([hold.at.promise, removing]);
        const waits = gate();
        locks.onAsk = (_keys, held) => held.length > 0 && waits.open();
        const adding = add(c, br, { name: 'vhu-vrace', mode: 'client', vlan: 41 });
        await Promise.race([waits.promise, adding.catch(() => {})]);
        locks.onAsk = undefined;
        const go = hold.go;
        hold = undefined;
        go.open();
        const [removed, added] = await Promise.all([removing, adding]);
        assert.ok(removed.removed === true || (Array.isArray(removed) && removed.includes(fake)), JSON.stringify(removed));
        assert.equal(added.changed, true, JSON.stringify(added));
        // Before: both said they succeeded, and the port the add reported was gone with the fake bridge.
        assert.equal(await portRow('vhu-vrace'), 'vhu-vrace', 'the port dpdk_add_port reported is not in Open vSwitch');
        assert.equal(await get('Port', 'vhu-vrace', 'tag'), '41');
        assert.ok(!(await bridges()).includes(fake), 'the fake bridge is still there');
        await del(c, 'vhu-vrace');
      }
    } finally {
      hold?.go.open();
      await ovs!.vsctl(['--if-exists', 'del-port', 'vhu-vrace']);
      await ovs!.vsctl(['--if-exists', 'del-br', fake]);
      await ovs!.vsctl(['--if-exists', 'del-br', br]);
    }
  });

  test('over XML-RPC: add/list/del round trip; a bad VLAN is fault -32602 naming opts.vlan', async (t) => {
    if (skip) return t.skip(skip);
    const srv = await startTestServer({ network: { ovs_rundir: ovs!.rundir } }, methods);
    try {
      await assert.rejects(srv.call('dpdk_add_port', bridge, { vlan: 4095 }), (e: unknown) => {
        assert.ok(e instanceof XmlRpcFault, String(e));
        assert.equal(e.faultCode, -32602);
        assert.match(e.faultString, /opts\.vlan: 4095/);
        return true;
      });
      const r = (await srv.call('dpdk_add_port', bridge, { mode: 'server', vlan: 12 })) as Record<string, unknown>;
      assert.equal(r.ovs_mode, 'server');
      assert.equal(r.guest_mode, 'client');
      assert.ok(await isSocket(String(r.socket)));
      const ls = (await srv.call('dpdk_list_ports')) as Array<Record<string, unknown>>;
      const mine = ls.find((p) => p.name === r.port);
      assert.equal(mine?.tag, 12);
      assert.equal((mine?.status as Record<string, string>).mode, 'server');
      assert.deepEqual({ ...((await srv.call('dpdk_del_port', r.port)) as object) }, { port: r.port, removed: true });
      assert.deepEqual({ ...((await srv.call('dpdk_del_port', r.port)) as object) }, { port: r.port, removed: false });
    } finally {
      await srv.close();
    }
  });

  // ovs-vswitchd stopped (SIGSTOP): ovsdb-server commits the add, but ovs-vsctl waits for the switch
  // to confirm until a deadline ends it. Deterministic: the switch cannot answer until SIGCONT.
  const withSwitchStopped = async <T>(fn: () => Promise<T>): Promise<T> => {
    const pid = Number((await readFile(`${ovs!.rundir}/ovs-vswitchd.pid`, 'utf8')).trim());
    process.kill(pid, 'SIGSTOP');
    try {
      return await fn();
    } finally {
      process.kill(pid, 'SIGCONT');
      // A transaction that waits for ovs-vswitchd: it has caught up with the database when it returns.
      await ovs!.vsctl(['set', 'Open_vSwitch', '.', `external_ids:hovs-sync=${Date.now()}`]);
    }
  };

  test("ovs-vsctl's own --timeout (ovs-vswitchd not answering) is TIMEOUT: an add is removed again, a delete says whole or not at all", async (t) => {
    if (skip) return t.skip(skip);
    await add(ctx, bridge, { name: 'vhu-alrm2' });
    // The premise: with ovs-vswitchd stopped only the transactions that wait for it (the add, the
    // delete) run into --timeout; the reads before them are answered by ovsdb-server. On a loaded
    // machine (load 8) a read took longer than --timeout=1 and was killed before the add was
    // reached: that tests nothing, so the scenario runs again with a longer timeout (a run whose
    // premise failed changed nothing: the add and the delete were not sent).
    const missed: string[] = [];
    for (const commandTimeoutS of [2, 4, 8]) {
      const config = configFor(ovs!.rundir);
      config.network.command_timeout_s = commandTimeoutS;
      const c = ctxFor(config);
      const vsctlTimeout = commandTimeoutS - 1; // ovs-vsctl --timeout: whole seconds, 0.5 s before the runner's
      // Which ovs-vsctl ran out of time, from the fault's words (a read's timeout may come wrapped:
      // detectDpdk's says it could not tell whether OVS does DPDK).
      const killed = (e: unknown, what: string) => {
        const m = /(\S*ovs-vsctl .*?): (?:killed by SIGALRM|no answer within)/.exec(e instanceof Error ? e.message : '');
        if (!m || m[1].includes(` ${what} `)) return false;
        missed.push(`--timeout=${vsctlTimeout}: ${(e as Error).message}`);
        return true;
      };
      const r = await withSwitchStopped(async () => {
        const e = await add(c, bridge, { name: 'vhu-alrm1' }).then(() => assert.fail('added with ovs-vswitchd stopped'), (x: unknown) => x);
        assert.equal(await portRow('vhu-alrm1'), '', 'the committed port was not removed again');
        if (killed(e, 'add-port')) return undefined;
        const d = await del(c, 'vhu-alrm2').then(() => assert.fail('deleted with ovs-vswitchd stopped'), (x: unknown) => x);
        if (killed(d, 'del-port')) return undefined;
        return { e, d };
      });
      if (!r) continue;
      faultOf('TIMEOUT', new RegExp(`--timeout=${vsctlTimeout}.*whole or not at all.*vhu-alrm2 was either removed or left`))(r.d);
      faultOf('TIMEOUT', new RegExp(`--timeout=${vsctlTimeout} s.*removed again.*nothing was changed`))(r.e);
      assert.equal(await portRow('vhu-alrm1'), '');
      assert.equal(await isSocket(`${ovs!.rundir}/vhu-alrm1`), false, 'the socket of a removed port is left');
      assert.deepEqual(await del(c, 'vhu-alrm2'), { port: 'vhu-alrm2', removed: false }, 'asking again says which');
      return;
    }
    assert.fail(`the scenario did not happen: a read before the add or the delete outlasted --timeout each time:\n${missed.join('\n')}`);
  });

  test('ovsdb-server not answering: the DPDK detection read is TIMEOUT (--timeout and the deadline), never "DPDK is not available"', async (t) => {
    if (skip) return t.skip(skip);
    // Deterministic: a stopped ovsdb-server accepts the connection (the kernel does) and cannot
    // answer until SIGCONT, so every read runs into its timeout however loaded the machine is.
    const pid = Number((await readFile(`${ovs!.rundir}/ovsdb-server.pid`, 'utf8')).trim());
    const snap = await dbSnapshot();
    const timedOut = (re: RegExp) => faultOf('TIMEOUT', new RegExp(`^could not tell whether Open vSwitch does DPDK: .*${re.source}`));
    process.kill(pid, 'SIGSTOP');
    try {
      // 2 s: ovs-vsctl --timeout=1 ends it (SIGALRM); 1.4 s: no --timeout of its own, the runner's deadline does.
      const alarm = configFor(ovs!.rundir);
      alarm.network.command_timeout_s = 2;
      const deadline = configFor(ovs!.rundir);
      deadline.network.command_timeout_s = 1.4;
      await assert.rejects(detectDpdk(ctxFor(alarm)), timedOut(/killed by SIGALRM: Open vSwitch did not finish within ovs-vsctl's --timeout=1 s/));
      await assert.rejects(detectDpdk(ctxFor(deadline)), timedOut(/no answer within 1400 ms; killed/));
      await assert.rejects(add(ctxFor(alarm), bridge, { name: 'vhu-slowdb' }), timedOut(/--timeout=1 s.*nothing was changed/));
      await assert.rejects(list(ctxFor(deadline)), timedOut(/no answer within 1400 ms/));
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    assert.equal(await dbSnapshot(), snap, 'a call whose detection did not answer changed something');
    assert.equal((await detectDpdk(ctx)).dpdk, true, 'OVS answering again: DPDK is there');
  });

  test("the call's deadline while ovs-vswitchd has not confirmed the add: the port is removed again and the fault says so", async (t) => {
    if (skip) return t.skip(skip);
    // 1.4 s: under 1.5 s ovs-vsctl gets no --timeout of its own, so the call's deadline stops it.
    const srv = await startTestServer({ network: { ovs_rundir: ovs!.rundir }, server: { call_timeout_s: 1.4 } }, netMethods);
    const ports = async () => (await ovs!.vsctl(['list-ports', bridge])).stdout.split('\n').filter(Boolean).sort();
    const before = await ports();
    try {
      const faults = await withSwitchStopped(async () => {
        const out: XmlRpcFault[] = [];
        for (const opts of [{ name: 'vhu-dl1' }, {}]) {
          await srv.call('dpdk_add_port', bridge, opts).then(
            (r) => assert.fail(`added with ovs-vswitchd stopped: ${JSON.stringify(r)}`),
            (e: unknown) => {
              assert.ok(e instanceof XmlRpcFault, String(e));
              out.push(e);
            },
          );
        }
        assert.equal(await portRow('vhu-dl1'), '', 'the port stayed in OVS after the stopped call');
        return out;
      });
      for (const f of faults) {
        assert.equal(f.faultCode, 1004, f.faultString);
        assert.match(f.faultString, /nothing was changed/);
      }
      assert.deepEqual(await ports(), before, 'ports left behind by the stopped calls');
      assert.equal(await isSocket(`${ovs!.rundir}/vhu-dl1`), false);
    } finally {
      await srv.close();
    }
  });

  test('names of interfaces inside a bond are taken too: the default name skips them, an explicit one is CONFLICT', async (t) => {
    if (skip) return t.skip(skip);
    // A bond port's interfaces have names of their own, which OVS refuses for a new port.
    await ovs!.vsctl(['add-bond', bridge, 'vhu-bond', 'csdpdk-900', 'vhu-bondif', '--', 'set', 'Interface', 'csdpdk-900', 'type=internal', '--', 'set', 'Interface', 'vhu-bondif', 'type=internal']);
    try {
      const snap = await dbSnapshot();
      await assert.rejects(add(ctx, bridge, { name: 'vhu-bondif' }), faultOf('CONFLICT', /vhu-bondif is an interface of port vhu-bond/));
      assert.equal(await dbSnapshot(), snap);
      const r = await add(ctx, bridge, {});
      assert.equal(r.port, 'csdpdk-901');
      assert.equal(r.changed, true);
      await del(ctx, r.port);
    } finally {
      await ovs!.vsctl(['del-port', 'vhu-bond']);
    }
  });

  test('a bridge on the system datapath is refused before anything changes', async (t) => {
    if (skip) return t.skip(skip);
    // --no-wait: ovs-vswitchd cannot open a kernel datapath here, but the record is enough.
    const sys = `bds${Math.random().toString(16).slice(2, 8)}`;
    await ovs!.vsctl(['--no-wait', 'add-br', sys]);
    try {
      const snap = await dbSnapshot();
      await assert.rejects(add(ctx, sys, {}), faultOf('CONFLICT', /datapath_type=system.*netdev/));
      assert.equal(await dbSnapshot(), snap);
    } finally {
      await ovs!.vsctl(['--no-wait', 'del-br', sys]);
    }
  });
});

describe('DPDK calls on a host without a (DPDK) Open vSwitch', () => {
  test('no OVS running: detectDpdk says why, DPDK calls fault UNSUPPORTED (not an OVS error string)', async () => {
    const empty = await mkdtemp('/tmp/bd-none-');
    try {
      const ctx = ctxFor(configFor(empty));
      const d = await detectDpdk(ctx);
      assert.equal(d.dpdk, false);
      assert.equal(d.initialized, false);
      assert.match(d.reason ?? '', /Open vSwitch is not running here: ovs-vsctl could not reach .*db\.sock/);
      await assert.rejects(add(ctx, 'br0', {}), faultOf('UNSUPPORTED', /^DPDK is not available on this host: Open vSwitch is not running/));
      await assert.rejects(del(ctx, 'csdpdk-1'), faultOf('UNSUPPORTED'));
      await assert.rejects(list(ctx), faultOf('UNSUPPORTED'));
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
