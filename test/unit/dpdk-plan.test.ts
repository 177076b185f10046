import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BrickError } from '../../src/shared/errors.js';
import {
  addRequest,
  nextDefaultName,
  addTransactionArgs,
  planAdd,
  portInterface,
  sockDirOf,
  differences,
  listDpdkPorts,
  socketDir,
  isBrickDpdkPort,
  portSocket,
  parseUnixListeners,
  listenerFor,
  judgeExisting,
  pollAdded,
} from '../../src/network/dpdk/plan.js';
import { parseOvs } from '../../src/network/host/ovs.js';
import { methods } from '../../src/network/dpdk/methods.js';
import { decodeArgs } from '../../src/rpc/params.js';

/** dpdk_add_port's arguments as the dispatcher checks them (its parameter schemas), then the request. */
const addDef = methods.find((m) => m.name === 'dpdk_add_port')!;
const parseAddRequest = (bridge: unknown, opts: unknown) => {
  const [b, o] = decodeArgs(addDef, [bridge, opts]) as Parameters<typeof addRequest>;
  return addRequest(b, o);
};

const invalid = (param: RegExp) => (e: unknown) => {
  assert.ok(e instanceof BrickError);
  assert.equal(e.fault, 'INVALID_PARAMS');
  assert.match(e.message, param);
  return true;
};

test('parseAddRequest: defaults to server mode, untagged, a chosen name', () => {
  assert.deepEqual(parseAddRequest('br0', undefined), { bridge: 'br0', mode: 'server', vlan: undefined, name: undefined });
  assert.deepEqual(parseAddRequest('br0', null), { bridge: 'br0', mode: 'server', vlan: undefined, name: undefined });
  assert.deepEqual(parseAddRequest('ovs-dpdk_0.1', { mode: 'Client', vlan: '42', name: 'vhu1' }), {
    bridge: 'ovs-dpdk_0.1',
    mode: 'client',
    vlan: 42,
    name: 'vhu1',
  });
  assert.equal(parseAddRequest('br0', { vlan: 1 }).vlan, 1);
  assert.equal(parseAddRequest('br0', { vlan: 4094 }).vlan, 4094);
  assert.equal(parseAddRequest('br0', { vlan: null, name: '' }).name, undefined);
  assert.equal(parseAddRequest('a'.repeat(15), {}).bridge, 'a'.repeat(15));
});

test('parseAddRequest: every bad value is INVALID_PARAMS naming the parameter', () => {
  const cases: Array<[unknown, unknown, RegExp]> = [
    ['a'.repeat(16), {}, /^bridge: .*16 characters; the kernel allows 15/],
    ['', {}, /^bridge: .*empty/],
    ['br 0', {}, /^bridge: /],
    ['br/0', {}, /^bridge: /],
    ['.hidden', {}, /^bridge: /],
    ['-x', {}, /^bridge: /],
    ['brü', {}, /^bridge: /],
    [42, {}, /^bridge: an interface name is required, got 42/],
    [null, {}, /^bridge: an interface name is required, got null/],
    ['br0', { vlan: 0 }, /^opts\.vlan: 0 is not a VLAN id: must be an integer 1-4094 \(0 and 4095 are reserved\)/],
    ['br0', { vlan: 4095 }, /^opts\.vlan: 4095 /],
    ['br0', { vlan: 5000 }, /^opts\.vlan: 5000 /],
    ['br0', { vlan: 1.5 }, /^opts\.vlan: /],
    ['br0', { vlan: '0' }, /^opts\.vlan: 0 /],
    ['br0', { vlan: '10; reboot' }, /^opts\.vlan: "10; reboot" is not a VLAN id/],
    ['br0', { vlan: true }, /^opts\.vlan: /],
    ['br0', { mode: 'vhostuser' }, /^opts\.mode: must be "server" or "client", got "vhostuser"/],
    ['br0', { mode: 1 }, /^opts\.mode: /],
    ['br0', { name: 'a/b' }, /^opts\.name: /],
    ['br0', { name: 'br0' }, /^opts\.name: br0 is the bridge's own name/],
    ['br0', { queues: 2 }, /^opts\.queues: unknown option \(known: mode, vlan, name\)/],
    ['br0', 'server', /argument 2 "opts" must be struct or nil, got string/],
    ['br0', ['server'], /argument 2 "opts" must be struct or nil, got array/],
  ];
  for (const [b, o, re] of cases) assert.throws(() => parseAddRequest(b, o), invalid(re), `${JSON.stringify(b)} ${JSON.stringify(o)}`);
});

test('nextDefaultName: 1 + the highest csdpdk-N in OVS or reserved, as CloudStack numbers them', () => {
  assert.equal(nextDefaultName([]), 'csdpdk-1');
  assert.equal(nextDefaultName(['br0', 'csdpdk-3', 'csdpdk-10', 'csdpdk-x', 'vhu1', 'csdpdk-9']), 'csdpdk-11');
  assert.equal(nextDefaultName(['csdpdk-2'], ['csdpdk-5', 'csdpdk-3']), 'csdpdk-6');
  assert.equal(nextDefaultName(['mycsdpdk-40', 'csdpdk-4-old']), 'csdpdk-1');
});

test('addTransactionArgs: one transaction, no --may-exist, owner and mode marks, tag and vhost-server-path', () => {
  const server = planAdd({ bridge: 'br0', mode: 'server', vlan: 100 }, 'csdpdk-3', '/var/run/openvswitch');
  assert.equal(server.socket, '/var/run/openvswitch/csdpdk-3');
  assert.deepEqual(addTransactionArgs(server), [
    '--', 'add-port', 'br0', 'csdpdk-3', 'tag=100', 'vlan_mode=access', 'external_ids:brick-owner=dpdk', 'external_ids:brick-dpdk-mode=server',
    '--', 'set', 'Interface', 'csdpdk-3', 'type=dpdkvhostuser',
  ]);
  const client = planAdd({ bridge: 'br0', mode: 'client' }, 'vhu1', '/run/ovs/');
  assert.equal(client.socket, '/run/ovs/vhu1');
  assert.deepEqual(addTransactionArgs(client), [
    '--', 'add-port', 'br0', 'vhu1', 'external_ids:brick-owner=dpdk', 'external_ids:brick-dpdk-mode=client',
    '--', 'set', 'Interface', 'vhu1', 'type=dpdkvhostuserclient', 'options:vhost-server-path=/run/ovs/vhu1',
  ]);
  for (const args of [addTransactionArgs(server), addTransactionArgs(client)]) assert.ok(!args.some((a) => a.includes('may-exist')));
});

test('planAdd refuses a socket path longer than a Unix socket allows', () => {
  assert.throws(
    () => planAdd({ bridge: 'br0', mode: 'server' }, 'csdpdk-1', '/' + 'd'.repeat(100)),
    (e: unknown) => e instanceof BrickError && e.fault === 'UNSUPPORTED' && /at most 107/.test(e.message),
  );
});

test('socketDir: the run dir plus a relative vhost-sock-dir; never climbs out', () => {
  assert.equal(socketDir('', undefined), '/var/run/openvswitch');
  assert.equal(socketDir('/tmp/x/', undefined), '/tmp/x');
  assert.equal(socketDir('/var/run/openvswitch', 'vhu'), '/var/run/openvswitch/vhu');
  assert.equal(socketDir('/var/run/openvswitch', '/vhu/'), '/var/run/openvswitch/vhu');
  assert.equal(socketDir('/var/run/openvswitch', '../etc'), '/var/run/openvswitch');
  // OVS's rule (lib/dpdk.c): ".." anywhere (strstr), or longer than NAME_MAX, and it uses the run dir.
  assert.equal(socketDir('/var/run/openvswitch', 'a..b'), '/var/run/openvswitch');
  assert.equal(socketDir('/var/run/openvswitch', 'x'.repeat(256)), '/var/run/openvswitch');
  assert.equal(socketDir('/var/run/openvswitch', 'x'.repeat(255)), `/var/run/openvswitch/${'x'.repeat(255)}`);
});

// Captured from a real OVS-DPDK 3.1 (with dpdk's former reader), rewritten into the one reader's
// tables (host/ovs.ts OVS_READ_ARGS: Bridge, Port, Interface, Open_vSwitch) with the same values.
const REAL = [
  '{"data":[["brd0",["set",[["uuid","0121"],["uuid","2971"],["uuid","3646"]]],["map",[]],"netdev",false],["sys0",["uuid","aaaa"],["map",[]],"",false]],"headings":["name","ports","external_ids","datapath_type","stp_enable"]}',
  '{"data":[[["uuid","2971"],"brd0",["uuid","i0"],["set",[]],["map",[]],false],[["uuid","0121"],"csdpdk-1",["uuid","i1"],5,["map",[["brick-owner","dpdk"],["brick-dpdk-mode","server"]]],false],[["uuid","3646"],"csdpdk-2",["uuid","i2"],["set",[]],["map",[]],false],[["uuid","aaaa"],"sys0",["uuid","i3"],["set",[]],["map",[]],false]],"headings":["_uuid","name","interfaces","tag","external_ids","fake_bridge"]}',
  '{"data":[[["uuid","i2"],"csdpdk-2","dpdkvhostuserclient",["map",[["vhost-server-path","/tmp/g/csdpdk-2"]]],2,["set",[]],["set",[]],"down",["map",[["mode","client"],["status","disconnected"]]]],[["uuid","i1"],"csdpdk-1","dpdkvhostuser",["map",[]],1,["set",[]],["set",[]],"up",["map",[["mode","server"],["status","connected"]]]],[["uuid","i0"],"brd0","internal",["map",[]],65534,["set",[]],["set",[]],"up",["map",[]]],[["uuid","i3"],"sys0","internal",["map",[]],-1,["set",[]],"could not open network device sys0 (No such device)","down",["map",[]]]],"headings":["_uuid","name","type","options","ofport","mtu_request","error","link_state","status"]}',
  '{"data":[[["map",[["dpdk-init","true"],["vhost-sock-dir","vhu"]]]]],"headings":["other_config"]}',
].join('\n');

test('the one OVS reader (host/ovs.ts) gives DPDK bridges, ports, tags, marks, interface status and errors, and the socket dir', () => {
  const s = parseOvs(REAL);
  assert.equal(sockDirOf(s, '/var/run/openvswitch'), '/var/run/openvswitch/vhu');
  assert.deepEqual([...s.bridges.values()].map((b) => [b.name, b.datapathType]), [['brd0', 'netdev'], ['sys0', '']]);
  const p1 = s.ports.get('csdpdk-1')!;
  assert.equal(p1.bridge, 'brd0');
  assert.equal(p1.tag, 5);
  const i1 = portInterface(p1)!;
  assert.equal(i1.type, 'dpdkvhostuser');
  assert.deepEqual(i1.status, { mode: 'server', status: 'connected' });
  assert.equal(i1.ofport, 1);
  assert.equal(i1.error, '');
  assert.ok(isBrickDpdkPort(p1));
  const p2 = s.ports.get('csdpdk-2')!;
  assert.equal(p2.tag, undefined);
  assert.equal(portInterface(p2)!.options['vhost-server-path'], '/tmp/g/csdpdk-2');
  assert.ok(!isBrickDpdkPort(p2));
  assert.equal(portInterface(s.ports.get('sys0')!)!.error, 'could not open network device sys0 (No such device)');
  assert.equal(s.ports.get('sys0')!.bridge, 'sys0');
  assert.throws(() => parseOvs('not json'), (e: unknown) => e instanceof BrickError && e.fault === 'COMMAND_FAILED');
});

test('listDpdkPorts: only vhost-user ports, with socket, guest mode, tag 0 for untagged, ownership', () => {
  const s = parseOvs(REAL);
  assert.deepEqual(listDpdkPorts(s, sockDirOf(s, '/var/run/openvswitch')), [
    {
      name: 'csdpdk-1', bridge: 'brd0', mode: 'server', guest_mode: 'client', tag: 5, socket: '/var/run/openvswitch/vhu/csdpdk-1',
      status: { mode: 'server', status: 'connected' }, error: '', brick_owned: true,
    },
    {
      name: 'csdpdk-2', bridge: 'brd0', mode: 'client', guest_mode: 'server', tag: 0, socket: '/tmp/g/csdpdk-2',
      status: { mode: 'client', status: 'disconnected' }, error: '', brick_owned: false,
    },
  ]);
});

test('differences: same settings → none; each difference in words', () => {
  const s = parseOvs(REAL);
  const sockDir = sockDirOf(s, '/var/run/openvswitch');
  const p1 = s.ports.get('csdpdk-1')!;
  assert.deepEqual(differences(p1, planAdd({ bridge: 'brd0', mode: 'server', vlan: 5 }, 'csdpdk-1', sockDir)), []);
  assert.deepEqual(differences(p1, planAdd({ bridge: 'brd1', mode: 'client', vlan: 6 }, 'csdpdk-1', sockDir)), [
    'it is on bridge brd0, not brd1',
    'its type is dpdkvhostuser, not dpdkvhostuserclient (mode client)',
    'its VLAN tag is 5, not 6',
  ]);
  const p2 = s.ports.get('csdpdk-2')!;
  assert.deepEqual(differences(p2, planAdd({ bridge: 'brd0', mode: 'client' }, 'csdpdk-2', sockDir)), [`it is not brick's (external_ids:brick-owner is "", not "dpdk")`]);
  // A client port's vhost-server-path is brick's choice, not the caller's: one made under another
  // vhost-sock-dir is the same port (the reply gives its own path); one with none is broken.
  const mine = { ...p2, externalIds: { 'brick-owner': 'dpdk', 'brick-dpdk-mode': 'client' } };
  assert.deepEqual(differences(mine, planAdd({ bridge: 'brd0', mode: 'client' }, 'csdpdk-2', sockDir)), []);
  assert.equal(portSocket(mine, sockDir), '/tmp/g/csdpdk-2');
  const noPath = { ...mine, interfaces: [{ ...portInterface(mine)!, options: {} }] };
  assert.deepEqual(differences(noPath, planAdd({ bridge: 'brd0', mode: 'client' }, 'csdpdk-2', sockDir)), ['it has no vhost-server-path']);
});

test('parseUnixListeners: listening, named sockets only (inode → path); listenerFor: the one named after the port', () => {
  // /proc/<pid>/net/unix as Linux prints it: a listener (Flags 00010000), a connected stream, an
  // abstract listener, an unnamed socket, a path with a space.
  const table = [
    'Num       RefCount Protocol Flags    Type St Inode Path',
    '0000000000000000: 00000002 00000000 00010000 0001 01 41001 /run/openvswitch/csdpdk-1',
    '0000000000000000: 00000003 00000000 00000000 0001 03 41002 /run/openvswitch/db.sock',
    '0000000000000000: 00000002 00000000 00010000 0001 01 41003 @/tmp/.X11-unix/X0',
    '0000000000000000: 00000002 00000000 00000000 0002 01 41004',
    '0000000000000000: 00000002 00000000 00010000 0001 01 41005 /run/open vswitch/vhu/csdpdk-12',
    '',
  ].join('\n');
  const l = parseUnixListeners(table);
  assert.deepEqual([...l], [
    ['41001', '/run/openvswitch/csdpdk-1'],
    ['41005', '/run/open vswitch/vhu/csdpdk-12'],
  ]);
  assert.equal(listenerFor('csdpdk-1', [...l.values()]), '/run/openvswitch/csdpdk-1');
  assert.equal(listenerFor('csdpdk-12', [...l.values()]), '/run/open vswitch/vhu/csdpdk-12');
  assert.equal(listenerFor('dpdk-1', [...l.values()]), undefined, 'a suffix of another name is not the port');
  assert.equal(listenerFor('csdpdk-2', [...l.values()]), undefined);
  // The database says vhost-sock-dir=vhu, but ovs-vswitchd (started before it was set) listens in
  // the run dir: the list shows where it listens; a client port keeps its vhost-server-path.
  const s = parseOvs(REAL);
  const listed = listDpdkPorts(s, sockDirOf(s, '/var/run/openvswitch'), ['/var/run/openvswitch/csdpdk-1', '/tmp/g/csdpdk-2']);
  assert.deepEqual(listed.map((p) => p.socket), ['/var/run/openvswitch/csdpdk-1', '/tmp/g/csdpdk-2']);
  assert.equal(listDpdkPorts(s, sockDirOf(s, '/var/run/openvswitch'), [])[0].socket, '/var/run/openvswitch/vhu/csdpdk-1');
});

test('judgeExisting: an OVS error or a gone server socket → repair; gone while a guest is connected → left alone; a client port needs no socket', () => {
  const s = parseOvs(REAL);
  const server = s.ports.get('csdpdk-1')!; // status connected
  const withIf = (p: typeof server, part: Partial<ReturnType<typeof portInterface> & object>) => ({ ...p, interfaces: [{ ...portInterface(p)!, ...part }] });
  assert.deepEqual(judgeExisting(server, '/r/csdpdk-1', true), { ok: true });
  const gone = judgeExisting(server, '/r/csdpdk-1', false);
  assert.equal(gone.ok, false);
  assert.ok(!gone.ok && !gone.repair && /\/r\/csdpdk-1 is gone while a guest is connected.*dpdk_del_port/.test(gone.why), JSON.stringify(gone));
  const idle = withIf(server, { status: { mode: 'server', status: 'disconnected' } });
  assert.deepEqual(judgeExisting(idle, '/r/csdpdk-1', false), { ok: false, repair: true, why: 'its vhost-user socket /r/csdpdk-1 is gone' });
  const broken = withIf(idle, { error: 'could not open network device csdpdk-1 (Address already in use)', ofport: -1 });
  assert.deepEqual(judgeExisting(broken, '/r/csdpdk-1', true), {
    ok: false,
    repair: true,
    why: 'OVS reports on interface csdpdk-1: could not open network device csdpdk-1 (Address already in use)',
  });
  const client = s.ports.get('csdpdk-2')!;
  assert.deepEqual(judgeExisting(client, '/tmp/g/csdpdk-2', false), { ok: true });
  assert.equal(judgeExisting(withIf(client, { error: 'vhost-server-path too long' }), '/tmp/g/csdpdk-2', false).ok, false);
});

test('pollAdded: after an add, the socket is looked at only when it decides something; each outcome in words', () => {
  const s = parseOvs(REAL);
  const iface = portInterface(s.ports.get('csdpdk-1')!)!; // ofport 1, status connected
  const plan = { port: 'csdpdk-1', socket: '/r/csdpdk-1' };
  const pending = { ...iface, ofport: undefined }; // ovs-vswitchd has not given it an OpenFlow port yet
  const there = { socket: '/v/csdpdk-1', present: true };
  const missing = { socket: '', present: false };
  // Gone or an OVS error: done, whatever the socket (it is not looked at).
  assert.deepEqual(pollAdded(plan, undefined, false, 3000), { problem: 'port csdpdk-1 is gone from OVS' });
  assert.deepEqual(pollAdded(plan, { ...iface, error: 'could not open network device csdpdk-1' }, false, 3000), { problem: 'OVS reports on interface csdpdk-1: could not open network device csdpdk-1' });
  // Not up yet with time left: wait, without reading ovs-vswitchd's listeners.
  assert.equal(pollAdded(plan, pending, false, 3000), 'wait');
  assert.equal(pollAdded(plan, { ...iface, ofport: -1 }, false, 3000), 'wait');
  // Up: the socket decides.
  assert.equal(pollAdded(plan, iface, false, 3000), 'socket');
  assert.deepEqual(pollAdded(plan, iface, false, 3000, there), { problem: '' });
  assert.equal(pollAdded(plan, iface, false, 3000, missing), 'wait');
  // The wait is over: the socket decides the words, up or not.
  assert.equal(pollAdded(plan, pending, true, 3000), 'socket');
  assert.deepEqual(pollAdded(plan, iface, true, 3000, there), { problem: '' });
  assert.deepEqual(pollAdded(plan, iface, true, 3000, missing), {
    problem: 'OVS did not create the vhost-user socket /r/csdpdk-1 within 3000 ms (status: {"mode":"server","status":"connected"})',
  });
  assert.deepEqual(pollAdded(plan, pending, true, 3000, { socket: '/v/csdpdk-1', present: false }), {
    problem: 'OVS did not create the vhost-user socket /v/csdpdk-1 within 3000 ms (status: {"mode":"server","status":"connected"})',
  });
  assert.deepEqual(pollAdded(plan, pending, true, 3000, there), { problem: 'OVS gave interface csdpdk-1 no OpenFlow port (ofport unset)' });
  assert.deepEqual(pollAdded(plan, { ...iface, ofport: -1 }, true, 3000, there), { problem: 'OVS gave interface csdpdk-1 no OpenFlow port (ofport -1)' });
});
