// dpdk.ts against a scripted Open vSwitch (a recording runner answering like ovs-vsctl does):
// detection and its reasons, the retry when another agent takes a name, verify-and-roll-back,
// and that refused calls run no changing command at all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig } from '../../src/config/load.js';
import { BrickError } from '../../src/shared/errors.js';
import { recordingRunner, type RecordedCall, type RunResult } from '../../src/shared/run.js';
import { detectDpdk, addDpdkPort, delDpdkPort, listPorts } from '../../src/network/dpdk/operations.js';
import { methods } from '../../src/network/dpdk/methods.js';
import { hostCapabilities } from '../../src/agent-extension/host-methods.js';
import { methods as networkMethods } from '../../src/network/methods.js';
import { linkKey } from '../../src/network/host/context.js';
import type { CallContext } from '../../src/rpc/catalogue.js';
import { callContext, invoke } from '../fixtures/call-context.js';

interface FakePort {
  name: string;
  bridge: string;
  tag?: number;
  ext: Record<string, string>;
  type: string;
  options: Record<string, string>;
  error?: string;
  /** Interface status:status (connected|disconnected); absent = not reported. */
  status?: string;
  /** ovs-vswitchd gives it an OpenFlow port only after this many reads (default at once). */
  pendingReads?: number;
}

const map = (o: Record<string, string>) => ['map', Object.entries(o)];

/** A tiny ovs-vsctl: enough of list/add-port/del-port for dpdk.ts. */
function fakeOvs(opts: { initialized?: boolean; dpdkInit?: string; onAdd?: (name: string, ports: FakePort[]) => Partial<RunResult> | void; errorOnAdd?: string; delFails?: string } = {}) {
  const ports: FakePort[] = [];
  const bridges: Record<string, string> = { br0: 'netdev', sys0: '' };
  const answer = (c: RecordedCall): Partial<RunResult> => {
    const a = c.args.filter((x) => !x.startsWith('--timeout='));
    const i = a.indexOf('add-port');
    if (a.includes('--columns=dpdk_initialized,iface_types,datapath_types,other_config')) {
      const init = opts.initialized ?? true;
      return {
        stdout: JSON.stringify({
          headings: ['dpdk_initialized', 'iface_types', 'datapath_types', 'other_config'],
          data: [[init, ['set', ['dpdk', 'dpdkvhostuser', 'dpdkvhostuserclient', 'internal']], ['set', ['netdev', 'system']], map(opts.dpdkInit ? { 'dpdk-init': opts.dpdkInit } : {})]],
        }),
      };
    }
    if (a.includes('list') && a.includes('Interface')) {
      const t = (headings: string[], data: unknown[][]) => JSON.stringify({ headings, data });
      return {
        stdout: [
          // The one reader's tables (host/ovs.ts OVS_READ_ARGS): Bridge, Port, Interface, Open_vSwitch.
          t(['name', 'ports', 'external_ids', 'datapath_type', 'stp_enable'], Object.entries(bridges).map(([b, dp]) => [b, ['set', ports.filter((p) => p.bridge === b).map((p) => ['uuid', `u-${p.name}`])], map({}), dp, false])),
          t(['_uuid', 'name', 'interfaces', 'tag', 'external_ids', 'fake_bridge'], ports.map((p) => [['uuid', `u-${p.name}`], p.name, ['uuid', `i-${p.name}`], p.tag ?? ['set', []], map(p.ext), false])),
          t(
            ['_uuid', 'name', 'type', 'options', 'ofport', 'mtu_request', 'error', 'link_state', 'status'],
            ports.map((p) => [['uuid', `i-${p.name}`], p.name, p.type, map(p.options), p.error ? -1 : p.pendingReads && p.pendingReads-- > 0 ? ['set', []] : 1, ['set', []], p.error ?? ['set', []], 'up', map({ mode: p.type.endsWith('client') ? 'client' : 'server', ...(p.status ? { status: p.status } : {}) })]),
          ),
          t(['other_config'], [[map({})]]),
        ].join('\n'),
      };
    }
    if (i >= 0) {
      const [bridge, name] = [a[i + 1], a[i + 2]];
      const pre = opts.onAdd?.(name, ports);
      if (pre) return pre;
      if (ports.some((p) => p.name === name)) {
        return { code: 1, stderr: `ovs-vsctl: cannot create a port named ${name} because a port named ${name} already exists on bridge ${bridge}` };
      }
      const p: FakePort = { name, bridge, ext: {}, type: '', options: {} };
      let k = i + 3;
      for (; k < a.length && a[k] !== '--'; k++) {
        const [col, val] = a[k].split('=');
        if (col === 'tag') p.tag = Number(val);
        else if (col.startsWith('external_ids:')) p.ext[col.slice(13)] = val;
      }
      for (k = k + 4; k < a.length; k++) {
        const [col, val] = [a[k].slice(0, a[k].indexOf('=')), a[k].slice(a[k].indexOf('=') + 1)];
        if (col === 'type') p.type = val;
        else if (col.startsWith('options:')) p.options[col.slice(8)] = val;
      }
      if (opts.errorOnAdd) p.error = opts.errorOnAdd;
      ports.push(p);
      return {};
    }
    const d = a.indexOf('del-port');
    if (d >= 0) {
      if (opts.delFails) return { code: 1, stderr: opts.delFails };
      const at = ports.findIndex((p) => p.name === a[d + 1]);
      if (at >= 0) ports.splice(at, 1);
      return {};
    }
    return { code: 1, stderr: `fake ovs-vsctl: unexpected ${a.join(' ')}` };
  };
  const run = recordingRunner(answer);
  return { run, ports, bridges };
}

function ctxWith(run: ReturnType<typeof recordingRunner>, rundir = '/tmp/fake-ovs'): CallContext {
  const config = defaultConfig();
  config.network.ovs_rundir = rundir;
  return callContext(config, { runner: run, budgetMs: 30_000, perCall: true });
}

const changing = (calls: RecordedCall[]) => calls.filter((c) => c.args.includes('add-port') || c.args.includes('del-port'));

test('detectDpdk: no ovs-vsctl, no running OVS, DPDK not initialised → dpdk false with a reason; never throws', async () => {
  const missing = recordingRunner(() => {
    throw new BrickError('UNSUPPORTED', 'ovs-vsctl: command not found (is it installed and on PATH?)');
  });
  const d1 = await detectDpdk(ctxWith(missing));
  assert.equal(d1.dpdk, false);
  assert.match(d1.reason!, /Open vSwitch is not installed/);

  const down = recordingRunner(() => ({ code: 1, stderr: 'ovs-vsctl: unix:/tmp/fake-ovs/db.sock: database connection failed (No such file or directory)' }));
  const d2 = await detectDpdk(ctxWith(down));
  assert.equal(d2.dpdk, false);
  assert.match(d2.reason!, /not running here: ovs-vsctl could not reach \/tmp\/fake-ovs\/db\.sock/);

  const noInit = fakeOvs({ initialized: false });
  assert.match((await detectDpdk(ctxWith(noInit.run))).reason!, /dpdk-init is not true/);
  const failedEal = fakeOvs({ initialized: false, dpdkInit: 'true' });
  const d4 = await detectDpdk(ctxWith(failedEal.run));
  assert.equal(d4.initialized, false);
  assert.deepEqual(d4.datapath_types, ['netdev', 'system']);
  assert.match(d4.reason!, /dpdk-init=true but DPDK is not initialised.*EAL/);

  const ok = fakeOvs();
  const d5 = await detectDpdk(ctxWith(ok.run));
  assert.deepEqual(d5, { dpdk: true, initialized: true, datapath_types: ['netdev', 'system'], iface_types: ['dpdk', 'dpdkvhostuser', 'dpdkvhostuserclient', 'internal'] });
  // ovs-vsctl got the switch's run dir and a deadline.
  const c = ok.run.calls[0];
  assert.equal(c.cmd, 'ovs-vsctl');
  assert.equal(c.opts.env?.OVS_RUNDIR, '/tmp/fake-ovs');
  assert.ok(c.opts.timeoutMs > 0 && c.opts.timeoutMs <= 30_000);
  assert.ok(c.args.some((x) => /^--timeout=\d+$/.test(x)));
});

test('a detection read that ran out of time is TIMEOUT, never "no DPDK": the caller may ask again', async () => {
  const read = '--columns=dpdk_initialized,iface_types,datapath_types,other_config';
  // What the runner throws: its own deadline, and ovs-vsctl ended by its own --timeout (SIGALRM, no words).
  const deadline = (c: RecordedCall) => new BrickError('TIMEOUT', `ovs-vsctl ${c.args.join(' ')}: no answer within ${c.opts.timeoutMs} ms; killed`, { command: 'ovs-vsctl' });
  const alarm = (c: RecordedCall) => new BrickError('COMMAND_FAILED', `ovs-vsctl ${c.args.join(' ')}: killed by SIGALRM`, { signal: 'SIGALRM' });
  for (const [what, err, words] of [
    ['the runner\'s deadline', deadline, /no answer within \d+ ms; killed/],
    ["ovs-vsctl's own --timeout", alarm, /killed by SIGALRM: Open vSwitch did not finish within ovs-vsctl's --timeout=\d+ s/],
  ] as const) {
    const f = fakeOvs();
    let slow = true;
    const run = recordingRunner((c) => {
      if (slow && c.args.includes(read)) throw err(c);
      return f.run(c.cmd, c.args, c.opts);
    });
    const ctx = ctxWith(run);
    const timedOut = (e: unknown) => {
      assert.ok(e instanceof BrickError, String(e));
      assert.equal(e.fault, 'TIMEOUT', `${what}: ${e.message}`);
      assert.match(e.message, /^could not tell whether Open vSwitch does DPDK: /);
      assert.match(e.message, words);
      assert.doesNotMatch(e.message, /not available/);
      return true;
    };
    await assert.rejects(detectDpdk(ctx), timedOut);
    await assert.rejects(addDpdkPort(ctx, { bridge: 'br0', mode: 'client' }), timedOut);
    await assert.rejects(delDpdkPort(ctx, 'csdpdk-1'), timedOut);
    await assert.rejects(listPorts(ctx), timedOut);
    assert.deepEqual(changing(run.calls), [], `${what}: a change after a detection that did not answer`);
    // OVS answers again: the same calls work.
    slow = false;
    assert.equal((await detectDpdk(ctx)).dpdk, true);
    assert.equal((await addDpdkPort(ctx, { bridge: 'br0', mode: 'client' })).port, 'csdpdk-1');
  }
  // Any other failed read is not a "no" either: its own fault, not UNSUPPORTED.
  const garbled = recordingRunner(() => ({ stdout: 'not json' }));
  await assert.rejects(detectDpdk(ctxWith(garbled)), (e: unknown) => e instanceof BrickError && e.fault === 'COMMAND_FAILED' && /could not tell whether Open vSwitch does DPDK: .*not JSON/.test(e.message));
  // A too-old OVS (no dpdk_initialized column) still says no, with what to do.
  const old = recordingRunner(() => ({ code: 1, stderr: 'ovs-vsctl: Open_vSwitch does not contain a column whose name matches "dpdk_initialized"' }));
  assert.match((await detectDpdk(ctxWith(old))).reason!, /too old to report dpdk_initialized/);
});

test('a DPDK call on a host without DPDK is UNSUPPORTED and changes nothing', async () => {
  const f = fakeOvs({ initialized: false });
  const ctx = ctxWith(f.run);
  await assert.rejects(addDpdkPort(ctx, { bridge: 'br0', mode: 'server' }), (e: unknown) => e instanceof BrickError && e.fault === 'UNSUPPORTED' && /^DPDK is not available on this host: /.test(e.message));
  await assert.rejects(delDpdkPort(ctx, 'csdpdk-1'), (e: unknown) => e instanceof BrickError && e.fault === 'UNSUPPORTED');
  await assert.rejects(listPorts(ctx), (e: unknown) => e instanceof BrickError && e.fault === 'UNSUPPORTED');
  assert.deepEqual(changing(f.run.calls), []);
});

test('another agent takes the chosen name between our read and our transaction → the next N, no collision', async () => {
  let stolen = false;
  const f = fakeOvs({
    onAdd: (name, ports) => {
      if (!stolen) {
        stolen = true; // CloudStack's agent adds the same csdpdk-N first
        ports.push({ name, bridge: 'br0', ext: {}, type: 'dpdkvhostuser', options: {} });
      }
    },
  });
  const r = await addDpdkPort(ctxWith(f.run), { bridge: 'br0', mode: 'client', vlan: 9 });
  assert.equal(r.port, 'csdpdk-2');
  assert.deepEqual(
    changing(f.run.calls).map((c) => c.args[c.args.indexOf('add-port') + 2]),
    ['csdpdk-1', 'csdpdk-2'],
  );
  assert.deepEqual({ ...r }, { port: 'csdpdk-2', bridge: 'br0', socket: '/tmp/fake-ovs/csdpdk-2', ovs_mode: 'client', guest_mode: 'server', vlan: 9, changed: true });
  const mine = f.ports.find((p) => p.name === 'csdpdk-2')!;
  assert.deepEqual(mine.ext, { 'brick-owner': 'dpdk', 'brick-dpdk-mode': 'client' });
  assert.equal(mine.tag, 9);
  assert.equal(mine.options['vhost-server-path'], '/tmp/fake-ovs/csdpdk-2');
});

test('concurrent adds in one process get distinct names without touching OVS conflicts', async () => {
  const f = fakeOvs();
  const ctx = ctxWith(f.run);
  const rs = await Promise.all(Array.from({ length: 10 }, () => addDpdkPort(ctx, { bridge: 'br0', mode: 'client' })));
  assert.equal(new Set(rs.map((r) => r.port)).size, 10);
  assert.equal(changing(f.run.calls).length, 10, 'one add-port each: no retries needed in-process');
});

test('dpdk_add_port waits for a change on the same bridge: one lock scheme, net:link:<bridge>, in the one lock table', async () => {
  const f = fakeOvs();
  const ctx = ctxWith(f.run);
  // A bridge change in progress holds the bridge's key (every bridge/VLAN/overlay change does).
  let release!: () => void;
  const bridgeChange = ctx.locks.with(linkKey('br0'), () => new Promise<void>((r) => (release = r)));
  let settled = 0;
  const adds = [addDpdkPort(ctx, { bridge: 'br0', mode: 'client' }), addDpdkPort(ctx, { bridge: 'br0', mode: 'client', name: 'vhu1' })];
  for (const a of adds) a.then(() => settled++, () => settled++);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(settled, 0, 'dpdk_add_port finished while the bridge was being changed');
  assert.deepEqual(changing(f.run.calls), [], 'a port was added while the bridge was being changed');
  release();
  await bridgeChange;
  assert.deepEqual((await Promise.all(adds)).map((r) => r.port).sort(), ['csdpdk-1', 'vhu1']);
  assert.equal(changing(f.run.calls).length, 2);
});

test('OVS reports an interface error → the port is deleted again and VERIFY_FAILED quotes OVS', async () => {
  const f = fakeOvs({ errorOnAdd: 'could not open network device csdpdk-1 (Unknown error -1)' });
  await assert.rejects(
    addDpdkPort(ctxWith(f.run), { bridge: 'br0', mode: 'client' }),
    (e: unknown) => e instanceof BrickError && e.fault === 'VERIFY_FAILED' && /could not open network device csdpdk-1 \(Unknown error -1\).*removed again/.test(e.message),
  );
  assert.deepEqual(f.ports, []);
  assert.deepEqual(changing(f.run.calls).map((c) => (c.args.includes('add-port') ? 'add' : 'del')), ['add', 'del']);
});

test("a call stopped after its port was added, whose removal fails: the call's fault lists the port as left in place", async () => {
  // dpdk_add_port writes in the same journal as every network method (host/context.ts callHost):
  // the fault of the stopped call says what it left.
  const ac = new AbortController();
  const f = fakeOvs({ onAdd: () => ac.abort(new Error("the call's deadline")), delFails: 'ovs-vsctl: transaction error: {"details":"injected"}' });
  const add = networkMethods.find((m) => m.name === 'dpdk_add_port')!;
  await assert.rejects(invoke(add, ['br0', { mode: 'client' }], { ...ctxWith(f.run), signal: ac.signal }), (e: unknown) => {
    assert.ok(e instanceof BrickError);
    assert.equal(e.fault, 'TIMEOUT', e.message);
    assert.match(e.message, /; already changed by this call and left in place: port csdpdk-1 on br0 may be left in Open vSwitch: removing it again failed \(.*transaction error.*injected/);
    assert.equal((e.detail?.changed as string[]).length, 1);
    return true;
  });
  assert.deepEqual(f.ports.map((p) => p.name), ['csdpdk-1']);
});

test('bridge checks: missing → NOT_FOUND, system datapath → CONFLICT, both before any change', async () => {
  const f = fakeOvs();
  const ctx = ctxWith(f.run);
  await assert.rejects(addDpdkPort(ctx, { bridge: 'nosuch', mode: 'server' }), (e: unknown) => e instanceof BrickError && e.fault === 'NOT_FOUND' && /^bridge: no Open vSwitch bridge named nosuch/.test(e.message));
  await assert.rejects(addDpdkPort(ctx, { bridge: 'sys0', mode: 'server' }), (e: unknown) => e instanceof BrickError && e.fault === 'CONFLICT' && /datapath_type=system/.test(e.message));
  await assert.rejects(addDpdkPort(ctx, { bridge: 'sys0', mode: 'server', name: 'vhu1' }), (e: unknown) => e instanceof BrickError && e.fault === 'CONFLICT');
  assert.deepEqual(changing(f.run.calls), []);
});

test('methods: bad arguments are refused before any command runs; help and signatures are filled in', async () => {
  const f = fakeOvs();
  const ctx = ctxWith(f.run);
  const add = methods.find((m) => m.name === 'dpdk_add_port')!;
  for (const [b, o] of [['x'.repeat(16), {}], ['br0', { vlan: 0 }], ['br0', { vlan: 4095 }], ['br0', { mode: 'both' }]] as const) {
    await assert.rejects(invoke(add, [b, o], ctx), (e: unknown) => e instanceof BrickError && e.fault === 'INVALID_PARAMS');
  }
  assert.equal(f.run.calls.length, 0);
  assert.deepEqual(methods.map((m) => m.name), ['dpdk_add_port', 'dpdk_del_port', 'dpdk_list_ports']);
  for (const m of methods) {
    assert.ok(m.help.length > 200, `${m.name} help`);
    assert.match(m.help, /Faults?: /);
  }
});

test('delete: absent → removed false; not brick\'s → CONFLICT and left alone; brick\'s → removed', async () => {
  const f = fakeOvs();
  const ctx = ctxWith(f.run);
  assert.deepEqual(await delDpdkPort(ctx, 'csdpdk-7'), { port: 'csdpdk-7', removed: false });
  f.ports.push({ name: 'theirs', bridge: 'br0', ext: {}, type: 'dpdkvhostuser', options: {} });
  await assert.rejects(delDpdkPort(ctx, 'theirs'), (e: unknown) => e instanceof BrickError && e.fault === 'CONFLICT');
  assert.equal(f.ports.length, 1);
  const r = await addDpdkPort(ctx, { bridge: 'br0', mode: 'client' });
  assert.deepEqual(await delDpdkPort(ctx, r.port), { port: r.port, removed: true });
  assert.deepEqual(f.ports.map((p) => p.name), ['theirs']);
});

const brickClient = (name: string, path: string, more: Partial<FakePort> = {}): FakePort => ({
  name, bridge: 'br0', ext: { 'brick-owner': 'dpdk', 'brick-dpdk-mode': 'client' }, type: 'dpdkvhostuserclient', options: { 'vhost-server-path': path }, ...more,
});
const kinds = (calls: RecordedCall[]) => changing(calls).map((c) => (c.args.includes('add-port') ? 'add' : 'del'));

test('an existing port OVS reports an error on is removed and added again, keeping its socket: changed true, a working port', async () => {
  const f = fakeOvs();
  f.ports.push(brickClient('vhu1', '/srv/vhu/vhu1', { error: 'could not open network device vhu1 (No such device)' }));
  const r = await addDpdkPort(ctxWith(f.run), { bridge: 'br0', mode: 'client', name: 'vhu1' });
  assert.deepEqual({ ...r }, { port: 'vhu1', bridge: 'br0', socket: '/srv/vhu/vhu1', ovs_mode: 'client', guest_mode: 'server', vlan: 0, changed: true });
  assert.deepEqual(kinds(f.run.calls), ['del', 'add'], 'removed (its own transaction), then added');
  assert.deepEqual(f.ports.map((p) => [p.name, p.error, p.options['vhost-server-path'], p.ext['brick-owner']]), [['vhu1', undefined, '/srv/vhu/vhu1', 'dpdk']]);
  // Asked again: it works now, nothing to do.
  const again = await addDpdkPort(ctxWith(f.run), { bridge: 'br0', mode: 'client', name: 'vhu1' });
  assert.equal(again.changed, false);
  assert.deepEqual(kinds(f.run.calls), ['del', 'add']);
});

test('a broken port added again that OVS refuses again: the new one is removed too and the fault says there is no port now', async () => {
  const f = fakeOvs({ errorOnAdd: 'could not open network device vhu1 (No such device)' });
  f.ports.push(brickClient('vhu1', '/srv/vhu/vhu1', { error: 'could not open network device vhu1 (No such device)' }));
  await assert.rejects(addDpdkPort(ctxWith(f.run), { bridge: 'br0', mode: 'client', name: 'vhu1' }), (e: unknown) => {
    assert.ok(e instanceof BrickError);
    assert.equal(e.fault, 'VERIFY_FAILED');
    assert.match(e.message, /^port vhu1 existed but OVS reports on interface vhu1: could not open.*brick removed it to add it again, and adding failed, so there is no port vhu1 now: .*the new port was removed again$/);
    return true;
  });
  assert.deepEqual(f.ports, []);
  assert.deepEqual(kinds(f.run.calls), ['del', 'add', 'del']);
});

test('a server port whose socket is gone while a guest is connected is left alone: VERIFY_FAILED, no change', async () => {
  const f = fakeOvs();
  f.ports.push({ name: 'vhu2', bridge: 'br0', ext: { 'brick-owner': 'dpdk', 'brick-dpdk-mode': 'server' }, type: 'dpdkvhostuser', options: {}, status: 'connected' });
  await assert.rejects(
    addDpdkPort(ctxWith(f.run), { bridge: 'br0', mode: 'server', name: 'vhu2' }),
    (e: unknown) => e instanceof BrickError && e.fault === 'VERIFY_FAILED' && /^port vhu2 exists but its vhost-user socket \/tmp\/fake-ovs\/vhu2 is gone while a guest is connected/.test(e.message),
  );
  assert.deepEqual(changing(f.run.calls), []);
  assert.equal(f.ports.length, 1);
});

test('a client port made under another vhost-sock-dir is the same port: changed false, its own vhost-server-path', async () => {
  const f = fakeOvs();
  f.ports.push(brickClient('vhu3', '/var/run/openvswitch/old/vhu3'));
  const r = await addDpdkPort(ctxWith(f.run), { bridge: 'br0', mode: 'client', name: 'vhu3' });
  assert.equal(r.changed, false);
  assert.equal(r.socket, '/var/run/openvswitch/old/vhu3');
  assert.deepEqual(changing(f.run.calls), []);
});

test('host_capabilities: a DPDK detection that timed out says so in dpdk_reason, not "no DPDK"', async () => {
  const run = recordingRunner((c) => {
    if (c.cmd === 'ovs-vsctl' && c.args.includes('--columns=dpdk_initialized,iface_types,datapath_types,other_config')) {
      throw new BrickError('COMMAND_FAILED', `ovs-vsctl ${c.args.join(' ')}: killed by SIGALRM`);
    }
    return { code: 1 };
  });
  const caps = await hostCapabilities(ctxWith(run), { xen: false, kvm: false, libvirtSocket: false });
  assert.equal(caps.dpdk, false);
  assert.match(String(caps.dpdk_reason), /^DPDK detection failed: could not tell whether Open vSwitch does DPDK: .*killed by SIGALRM: Open vSwitch did not finish within ovs-vsctl's --timeout/);
});

test('a port ovs-vswitchd gives an OpenFlow port only after some polls is verified once it has one: one ovs-vsctl read a poll', async () => {
  const f = fakeOvs({
    onAdd: (name, ports) => {
      ports.push({ ...brickClient(name, `/tmp/fake-ovs/${name}`), pendingReads: 3 });
      return {};
    },
  });
  const r = await addDpdkPort(ctxWith(f.run), { bridge: 'br0', mode: 'client', name: 'vhu4' });
  assert.equal(r.changed, true);
  assert.equal(r.socket, '/tmp/fake-ovs/vhu4');
  const reads = f.run.calls.filter((c) => c.args.includes('Interface') && c.args.includes('list'));
  // One read before the add, then the polls: three without an OpenFlow port, the fourth with one.
  assert.equal(reads.length, 1 + 4);
  assert.deepEqual(kinds(f.run.calls), ['add']);
});
