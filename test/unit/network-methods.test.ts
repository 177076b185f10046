// The network method catalogue and the GC timer, with a recording runner (no host).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { methods as all } from '../../src/network/methods.js';
import { methods as overlay } from '../../src/network/overlay/methods.js';
import { methods as dpdk } from '../../src/network/dpdk/methods.js';
import { startNetworkGc } from '../../src/network/bridge/operations.js';
import { recordingRunner } from '../../src/shared/run.js';
import { createLogger } from '../../src/shared/log.js';
import { networkConfig, testCtx, call } from '../fixtures/network-ctx.js';
import { BrickError } from '../../src/shared/errors.js';

// The bridge methods and network_state: every network method but the overlay and DPDK ones.
const notOverlayOrDpdk = new Set([...overlay, ...dpdk].map((m) => m.name));
const methods = all.filter((m) => !notOverlayOrDpdk.has(m.name));

/** An `ip -batch` that changes the host (reads are `ip -json ... -batch`). */
const applies = (c: { args: string[] }) => c.args.includes('-batch') && !c.args.includes('-json');

const SPEC_METHODS = [
  'network_state',
  'network_ensure_bridge',
  'network_ensure_vlan_bridge',
  'network_remove_vlan_bridge',
  'network_remove_bridge',
  'network_confirm',
  'network_gc',
  'network_setup_control',
];

const idleBrickVlanBridge = JSON.stringify([
  { ifindex: 5, ifname: 'breth0-10', flags: ['UP'], mtu: 1500, ifalias: 'brick:vlan-bridge', linkinfo: { info_kind: 'bridge' } },
  { ifindex: 6, ifname: 'eth0.10', flags: ['UP'], mtu: 1500, master: 'breth0-10', ifalias: 'brick:vlan-device', link: 'eth0', linkinfo: { info_kind: 'vlan', info_data: { id: 10 } } },
]);
const answer = (c: { args: string[] }) => ({ stdout: c.args.includes('link') && c.args.includes('-details') ? idleBrickVlanBridge : c.args.includes('-json') ? '[]' : '' });

describe('network methods', () => {
  it('serves every SPEC network_* method (not overlay ones) with help naming its reply and faults', () => {
    assert.deepEqual(methods.map((m) => m.name).sort(), [...SPEC_METHODS].sort());
    for (const m of methods) {
      assert.ok(m.help.length > 80, `${m.name} help`);
      assert.match(m.help, /Reply|Changes nothing/, `${m.name} help says what it returns`);
    }
  });

  it('validates arguments before touching the host', async () => {
    const r = recordingRunner(answer);
    const ctx = testCtx(networkConfig({}), { runner: r });
    await assert.rejects(call(ctx, 'network_ensure_vlan_bridge', 'eth0', 4095, {}), (e: unknown) => e instanceof BrickError && e.fault === 'INVALID_PARAMS');
    await assert.rejects(call(ctx, 'network_gc', { dryrun: true }), /opts.dryrun: unknown option/);
    await assert.rejects(call(ctx, 'network_ensure_bridge', 'br0', { confirm_within_s: 0 }), /confirm_within_s/);
    assert.equal(r.calls.length, 0);
  });

  it('network_gc dry run reads and changes nothing; a real run deletes in one batch', async () => {
    const r = recordingRunner(answer);
    const ctx = testCtx(networkConfig({}), { runner: r });
    assert.deepEqual(await call(ctx, 'network_gc', { dry_run: true }), ['breth0-10']);
    assert.equal(r.calls.filter((c) => c.args.includes('-batch')).length, 0);
    assert.deepEqual(await call(ctx, 'network_gc', {}), ['breth0-10']);
    const batches = r.calls.filter((c) => c.args.includes('-batch'));
    assert.deepEqual(batches.map((c) => c.opts.input), ['link del dev eth0.10\nlink del dev breth0-10\n']);
  });

  it('startNetworkGc runs on network.gc_interval_s and stops when told; 0 means never', async () => {
    const log = createLogger({ svc: 'test', level: 'silent' });
    const none = recordingRunner(answer);
    startNetworkGc(networkConfig({ gc_interval_s: 0 }), log, undefined, none)();
    const r = recordingRunner(answer);
    const stop = startNetworkGc(networkConfig({ gc_interval_s: 0.02 }), log, undefined, r);
    const until = Date.now() + 3000;
    while (!r.calls.some((c) => c.args.includes('-batch')) && Date.now() < until) await new Promise((res) => setTimeout(res, 10));
    stop();
    assert.ok(r.calls.some((c) => c.args.includes('-batch') && c.opts.input === 'link del dev eth0.10\nlink del dev breth0-10\n'));
    const n = r.calls.length;
    await new Promise((res) => setTimeout(res, 100));
    assert.ok(r.calls.length <= n + 4, 'no new runs after stop (one in flight may finish)');
    assert.equal(none.calls.length, 0);
  });

  it('a bridge another program made between read and batch ("File exists") is read again, not an error', async () => {
    let made = false;
    const r = recordingRunner((c) => {
      if (applies(c)) {
        if (!made) {
          made = true;
          return { code: 1, stderr: 'RTNETLINK answers: File exists\nCommand failed -:1\n' };
        }
        return {};
      }
      if (c.args.includes('-details'))
        // brick reads only the bridge it plans (one ip -json -details link show dev br9)
        return { stdout: made ? JSON.stringify([{ ifindex: 9, ifname: 'br9', flags: ['BROADCAST'], mtu: 1500, linkinfo: { info_kind: 'bridge' } }]) : '[]' };
      return { stdout: '[]' };
    });
    const res = await call(testCtx(networkConfig({}), { runner: r }), 'network_ensure_bridge', 'br9', {});
    assert.deepEqual(res.changes, ['brought br9 up']); // someone else's bridge: not marked as brick's
    assert.deepEqual(r.calls.filter(applies).map((c) => c.opts.input), [
      'link add name br9 type bridge\nlink set dev br9 alias brick:bridge\nlink set dev br9 up\n',
      'link set dev br9 up\n',
    ]);
  });

  it('network_setup_control stopped after it made the OVS bridge: the bridge is removed again and the fault no longer lists it as left in place', async () => {
    // The call is stopped (deadline, client gone) by the time its ip steps would run: the bridge it
    // created is deleted again (an undo runs even for a stopped call), and the call's journal forgets it.
    const ac = new AbortController();
    const table = (headings: string[], data: unknown[][]) => JSON.stringify({ headings, data });
    const noOvsBridges = [table(['name'], []), table(['_uuid'], []), table(['_uuid'], []), table(['other_config'], [[['map', []]]])].join('\n');
    const r = recordingRunner((c) => {
      if (c.cmd === 'ovs-vsctl' && c.args.includes('add-br')) ac.abort(new Error('the call\'s deadline'));
      if (c.cmd === 'ovs-vsctl' && c.args.includes('list')) return { stdout: noOvsBridges };
      return { stdout: c.args.includes('-json') ? '[]' : '' };
    });
    const ctx = { ...testCtx(networkConfig({ backend: 'openvswitch', namespace: '' }), { runner: r }), signal: ac.signal };
    await assert.rejects(call(ctx, 'network_setup_control', 'ctl9', '169.254.0.1/16'), (e: unknown) => {
      assert.ok(e instanceof BrickError);
      assert.equal(e.fault, 'TIMEOUT', e.message);
      assert.match(e.message, /the OVS bridge ctl9 this call had created was removed again; nothing was changed$/);
      assert.deepEqual(e.detail?.changed, []);
      return true;
    });
    const vsctl = r.calls.filter((c) => c.cmd === 'ovs-vsctl' && !c.args.includes('list')).map((c) => c.args.filter((a) => !a.startsWith('--timeout')).join(' '));
    assert.deepEqual(vsctl.slice(-2), ['-- --may-exist add-br ctl9 -- set Bridge ctl9 external_ids:brick-owner=bridge', '--if-exists del-br ctl9'], vsctl.join('\n'));
  });
});

describe('network_ensure_vlan_bridge reads', () => {
  /** A host whose links answer `ip -json -details` reads line by line (argv or -batch), as ip does. */
  function host(links: Record<string, unknown>[]) {
    const show = (line: string) => {
      const [what, , how, name] = line.split(' ');
      if (what !== 'link') return '[]';
      const hits = links.filter((l) => (how === 'dev' ? l.ifname === name : l.master === name));
      return hits.length ? JSON.stringify(hits) : '';
    };
    return recordingRunner((c) => {
      if (applies(c)) return {};
      if (c.args.includes('-batch')) return { stdout: String(c.opts.input).trim().split('\n').map(show).filter(Boolean).join('\n') + '\n' };
      return { stdout: show(c.args.slice(c.args.indexOf('-details') + 1).join(' ')) };
    });
  }
  const link = (ifname: string, o: Record<string, unknown> = {}) => ({ ifindex: 1, ifname, flags: ['UP'], mtu: 1500, ...o });
  const vlanPair = (pif: string) => [
    link(`br${pif}-10`, { ifalias: 'brick:vlan-bridge', linkinfo: { info_kind: 'bridge' } }),
    link(`${pif}.10`, { master: `br${pif}-10`, ifalias: 'brick:vlan-device', link: pif, linkinfo: { info_kind: 'vlan', info_data: { id: 10 } } }),
  ];

  it('once the parent\'s uplink is known, an ensure that changes nothing is one read; a changed uplink is read again, never trusted', async () => {
    const links = [link('br0', { linkinfo: { info_kind: 'bridge' } }), link('eth0', { master: 'br0' }), link('eth1'), ...vlanPair('eth0'), ...vlanPair('eth1')];
    const r = host(links);
    // A namespace of its own: the uplink remembered per namespace and parent is this test's alone.
    const ctx = testCtx(networkConfig({ namespace: `brick-t-${process.pid}-vlanreads`, vlan_bridge_name: 'br{pif}-{vlan}' }), { runner: r });
    const reads = () => r.calls.filter((c) => c.args.includes('-json')).length;
    const ensure = async () => {
      const before = reads();
      const res = (await call(ctx, 'network_ensure_vlan_bridge', 'br0', 10, {})) as Record<string, unknown>;
      assert.equal(res.changed, false);
      return { bridge: res.bridge, vlan_device: res.vlan_device, reads: reads() - before };
    };
    assert.deepEqual(await ensure(), { bridge: 'breth0-10', vlan_device: 'eth0.10', reads: 2 }); // the parent, then the names
    assert.deepEqual(await ensure(), { bridge: 'breth0-10', vlan_device: 'eth0.10', reads: 1 });
    // Someone moves br0's uplink from eth0 to eth1: the remembered eth0 is only a guess, the read says eth1.
    delete (links[1] as { master?: string }).master;
    (links[2] as { master?: string }).master = 'br0';
    assert.deepEqual(await ensure(), { bridge: 'breth1-10', vlan_device: 'eth1.10', reads: 3 });
    assert.deepEqual(await ensure(), { bridge: 'breth1-10', vlan_device: 'eth1.10', reads: 1 });
    assert.equal(r.calls.filter(applies).length, 0);
  });
});
