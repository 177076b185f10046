// The Ovm3 calls' decisions with no host: argument checks, argv builders, parsers, replies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { domrAddress, inCidr, isCloudStackVmName } from '../../src/agent-extension/ovm3/args.js';
import { FileName, isInside, normalisePath } from '../../src/agent-extension/ovm3/files.js';
import { RemoteDir, RemoteFileName, scpArgv, sshArgv } from '../../src/agent-extension/ovm3/domr-ssh.js';
import { check } from '../../src/rpc/params.js';
import { HostOrIp, Plain, intIn, seconds as secondsFormat } from '../../src/rpc/formats.js';

// The formats the Ovm3 calls declare (rpc/formats.ts), checked as the dispatcher does.
const plain = (name: string, v: unknown, maxLen?: number) => check(Plain(maxLen), v, name);
const int = (name: string, v: unknown, min: number, max: number) => check(intIn(min, max), v, name);
const seconds = (name: string, v: unknown, max: number) => check(secondsFormat(max), v, name);
const hostOrIp = (name: string, v: unknown) => check(HostOrIp, v, name);
const fileName = (name: string, v: unknown) => check(FileName, v, name);
const remoteDir = (name: string, v: unknown) => check(RemoteDir, v, name);
import { addressesOf, pingArgv } from '../../src/agent-extension/ovm3/checks.js';
import {
  cpuPercent, memFromMeminfo, memFromXlInfo, parseDominfo, parseDomstats, parseXlList, parseXlUptime, processUptime, txRxFromIpJson, vncPortFromDisplay,
} from '../../src/agent-extension/ovm3/stats.js';
import { chooseDomainTool, hypervisorOf } from '../../src/agent-extension/ovm3/hypervisor.js';
import { ovsReleaseVersion } from '../../src/agent-extension/ovm3/module-info.js';
import { combinePeerChecks, healthCheckReply, type HealthCheckFacts } from '../../src/agent-extension/ovm3/storage-health.js';
import { bridgesOf, ovsVswitchVersion, xenVersion, fencerFacts } from '../../src/agent-extension/host-methods.js';
import { defaultConfig } from '../../src/config/load.js';
import { BrickError } from '../../src/shared/errors.js';
import { STATE_STALE_S, type FencerState } from '../../src/fencer/state.js';

const fault = (name: string) => (e: unknown) => e instanceof BrickError && e.fault === name;

test('plain() refuses shell syntax, control characters and newlines, naming the parameter', () => {
  for (const bad of ['a;b', 'a&b', 'a|b', 'a`b`', '$(id)', '${x}', 'a>b', 'a<b', 'a\\b', 'a\nb', 'a\rb', 'a\u0000b', 'a\tb'])
    assert.throws(() => plain('cmd', bad), (e) => fault('INVALID_PARAMS')(e) && /^cmd: /.test((e as Error).message), JSON.stringify(bad));
  assert.equal(plain('cmd', '/opt/cloud/bin/update_config.py vm_dhcp_entry.json -c "x y" $HOME'), '/opt/cloud/bin/update_config.py vm_dhcp_entry.json -c "x y" $HOME');
  assert.throws(() => plain('cmd', 'x'.repeat(10), 5), fault('TOO_LARGE'));
  assert.throws(() => plain('cmd', 5), fault('INVALID_PARAMS'));
});

test('numbers come as int, i8 or strings; out of range is INVALID_PARAMS', () => {
  assert.equal(int('port', 3922, 1, 65535), 3922);
  assert.equal(int('port', '3922', 1, 65535), 3922);
  assert.equal(int('port', 3922n, 1, 65535), 3922);
  assert.throws(() => int('port', 0, 1, 65535), fault('INVALID_PARAMS'));
  assert.throws(() => int('port', '22; reboot', 1, 65535), fault('INVALID_PARAMS'));
  assert.equal(seconds('timeout', '2.5', 10), 2.5);
  assert.throws(() => seconds('timeout', 0, 10), fault('INVALID_PARAMS'));
  assert.throws(() => seconds('timeout', 11, 10), fault('INVALID_PARAMS'));
});

test('domr addresses: IP literals inside ovm3.domr_networks only', () => {
  assert.equal(domrAddress('host', '169.254.3.4', ['169.254.0.0/16']), '169.254.3.4');
  assert.throws(() => domrAddress('host', '10.0.0.1', ['169.254.0.0/16']), (e) => fault('INVALID_PARAMS')(e) && /domr_networks/.test((e as Error).message));
  assert.throws(() => domrAddress('host', 'r-4-vm.example', ['169.254.0.0/16']), fault('INVALID_PARAMS'));
  assert.throws(() => domrAddress('host', '-oProxyCommand=x', ['0.0.0.0/0']), fault('INVALID_PARAMS'));
  assert.ok(inCidr('fe80::1', 'fe80::/10'));
  assert.ok(!inCidr('fe80::1', '169.254.0.0/16'));
  assert.ok(inCidr('127.0.0.2', '127.0.0.0/8'));
  assert.ok(inCidr('10.1.2.3', '0.0.0.0/0'));
});

test('host names are strict: no leading "-", no spaces, no all-numeric TLD', () => {
  assert.equal(hostOrIp('host', 'mgmt-1.example.org'), 'mgmt-1.example.org');
  assert.equal(hostOrIp('host', '::1'), '::1');
  for (const bad of ['-c1000', 'a b', 'a..b', '1.2.3.999', 'x_y.org', ''])
    assert.throws(() => hostOrIp('host', bad), fault('INVALID_PARAMS'), bad);
});

test('CloudStack VM names: i-<account>-<id>-<instance.name>, r-/s-/v-<id>-<instance.name>; instance.name as CloudStack allows it', () => {
  // Before: only the default instance.name "VM"; a cloud with instance.name = PROD got
  // INVALID_PARAMS from ovs_domU_stats for every VM (no stats) and "0" from get_vncport.
  for (const ok of ['i-2-29-VM', 'r-4-VM', 's-1-VM', 'v-12-VM', 'i-2-29-PROD', 'r-4-PROD', 'i-2-29-vm', 'i-2-29-VMx', 'i-2-29-eu_west.1', `i-2-29-${'X'.repeat(64)}`])
    assert.ok(isCloudStackVmName(ok), ok);
  // instance.name never has "-", " " or "+" (CloudStack's NetUtils.verifyInstanceName); no control characters, not empty, not longer than 64
  for (const bad of ['test', 'ii-2-VM', '-2-VM', 'i-2-29-VM\n', 'i-2-29-', 'i-2-29-PR-OD', 'i-2-29-A B', 'i-2-29-A+B', 'i-2-29-A\tB', 'i-2-29-\u00e9', `i-2-29-${'X'.repeat(65)}`, 'i--29-VM', 'i-2-x-VM'])
    assert.ok(!isCloudStackVmName(bad), bad);
});

test('paths: absolute, no "..", ~ expands, components ≤ 255 bytes; file names are one component', () => {
  assert.equal(normalisePath('dir', '/OVS//Repositories/./x/'), '/OVS/Repositories/x');
  assert.equal(normalisePath('dir', '~/.ssh', '/root'), '/root/.ssh');
  assert.throws(() => normalisePath('dir', 'OVS/x'), fault('PATH_REFUSED'));
  assert.throws(() => normalisePath('dir', '/OVS/Repositories/../../etc'), fault('PATH_REFUSED'));
  assert.throws(() => normalisePath('dir', '/OVS/' + 'x'.repeat(256)), fault('TOO_LARGE'));
  assert.throws(() => normalisePath('dir', '/OVS/$(reboot)'), fault('INVALID_PARAMS'));
  for (const bad of ['', '.', '..', 'a/b', '../x']) assert.throws(() => fileName('filename', bad), fault('PATH_REFUSED'), bad);
  assert.ok(isInside('/root/.ssh/id', '/root/.ssh'));
  assert.ok(!isInside('/root/.sshx/id', '/root/.ssh'));
});

test('ssh/scp argv: no config file, batch mode, key, port, user, "--" before the host; cmd is ONE argument', () => {
  const o = { ...defaultConfig().ovm3, ssh_key: '/root/.ssh/id_rsa.cloud' };
  const a = sshArgv(o, '169.254.1.2', '/opt/cloud/bin/netusage.sh -g', 3922, 10);
  assert.deepEqual(a.slice(0, 4), ['-F', '/dev/null', '-i', '/root/.ssh/id_rsa.cloud']);
  assert.ok(a.includes('BatchMode=yes') && a.includes('StrictHostKeyChecking=no') && a.includes('UserKnownHostsFile=/dev/null') && a.includes('ConnectTimeout=10'));
  assert.deepEqual(a.slice(-8), ['-T', '-p', '3922', '-l', 'root', '--', '169.254.1.2', '/opt/cloud/bin/netusage.sh -g']);
  assert.deepEqual(a.slice(-3), ['--', '169.254.1.2', '/opt/cloud/bin/netusage.sh -g']);
  const s = scpArgv(o, '/tmp/x/f.json', 'fe80::1', '/var/cache/cloud/f.json', 5);
  assert.deepEqual(s.slice(-2), ['/tmp/x/f.json', 'root@[fe80::1]:/var/cache/cloud/f.json']);
  assert.ok(s.includes('-P') && s[s.indexOf('-P') + 1] === '3922');
  assert.equal(remoteDir('path', '/var/cache/cloud/'), '/var/cache/cloud');
  for (const bad of ['relative', '/a/../b', '/a b', '/a;b', "/a'b"]) assert.throws(() => remoteDir('path', bad), fault('INVALID_PARAMS'), bad);
  // The file name ends up in the same remote path: legacy scp (scp -O, OVM3's OpenSSH) gives it to the
  // VM's shell. Before, FileName let these through: with scp -O, "$HOME" became /root and "x'y" a bash error.
  const remoteName = (v: unknown) => check(RemoteFileName, v, 'file');
  for (const ok of ['vm_dhcp_entry.json', 'VR-8a7b.cfg', 'id_rsa.cloud', 'a,b+c@d%e=f:g-h']) assert.equal(remoteName(ok), ok);
  for (const bad of ['$HOME', 'a b', "x'y", 'q"q', '*', 'p(q)', '~', '#c', '!x', '.', '..', 'a/b', ''])
    assert.throws(() => remoteName(bad), fault('INVALID_PARAMS'), bad);
});

test('ping argv and check_dom0_ip parsing', () => {
  assert.deepEqual(pingArgv('192.0.2.1', 1, 2), ['-n', '-q', '-c', '1', '-W', '2', '--', '192.0.2.1']);
  const ipJson = JSON.stringify([{ ifname: 'lo', addr_info: [{ local: '127.0.0.1' }, { local: '::1' }] }, { ifname: 'eth0', addr_info: [{ local: '10.0.0.5' }] }]);
  assert.deepEqual(addressesOf(ipJson), ['127.0.0.1', '::1', '10.0.0.5']);
});

test('dom0 stats parsers: cpu percent busy, memory in bytes, tx/rx', () => {
  const a = 'cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3 4\n';
  const b = 'cpu  150 0 150 900 0 0 0 0 0 0\n';
  assert.equal(cpuPercent(a, b), '50');
  assert.deepEqual(memFromMeminfo('MemTotal:       16000000 kB\nMemFree:         1000 kB\nMemAvailable:    8000000 kB\n'), { free: String(8000000 * 1024), total: String(16000000 * 1024) });
  assert.deepEqual(memFromXlInfo('total_memory           : 65430\nfree_memory            : 1024\n'), { free: String(1024 * 1048576), total: String(65430 * 1048576) });
  assert.deepEqual(txRxFromIpJson(JSON.stringify([{ stats64: { rx: { bytes: 10 }, tx: { bytes: 20 } } }])), { tx: '20', rx: '10' });
});

test('domU stats parsers: domstats sums, dominfo, xl list/uptime, process uptime, vnc display', () => {
  const raw = `Domain: 'i-2-29-VM'
  cpu.time=2500000000
  vcpu.current=2
  net.count=2
  net.0.rx.bytes=100
  net.0.tx.bytes=200
  net.1.rx.bytes=1
  net.1.tx.bytes=2
  block.count=1
  block.0.rd.reqs=7
  block.0.rd.bytes=4096
  block.0.wr.reqs=3
  block.0.wr.bytes=512
`;
  const s = parseDomstats(raw);
  assert.deepEqual(
    { rd: s.rd_bytes, wr: s.wr_bytes, rdo: s.rd_ops, wro: s.wr_ops, tx: s.tx_bytes, rx: s.rx_bytes, cpu: s.cputime, v: s.vcpus },
    { rd: '4096', wr: '512', rdo: '7', wro: '3', tx: '202', rx: '101', cpu: '2.5', v: '2' },
  );
  assert.deepEqual(parseDominfo('CPU(s):         2\nCPU time:       12.5s\n'), { vcpus: '2', cputime: '12.5' });
  assert.deepEqual(parseXlList('Name   ID   Mem VCPUs\tState\tTime(s)\ni-2-29-VM  7  512  2  -b----  33.1\n', 'i-2-29-VM'), { domid: '7', vcpus: '2', cputime: '33.1' });
  assert.equal(parseXlUptime('Name  ID  Uptime\ni-2-29-VM  7  1 day,  2:03:04\n', 'i-2-29-VM'), String(86400 + 7384));
  assert.equal(parseXlUptime('Name  ID  Uptime\ni-2-29-VM  7  0:00:09\n', 'i-2-29-VM'), '9');
  assert.equal(processUptime('123 (qemu (x)) S ' + Array(18).fill('0').join(' ') + ' 1000 0', '100.00 50.00\n'), '90.00');
  assert.equal(vncPortFromDisplay('127.0.0.1:1\n'), '5901');
  assert.equal(vncPortFromDisplay(':0'), '5900');
  assert.equal(vncPortFromDisplay('[::1]:3'), '5903');
});

test('hypervisor and domain tool choice', () => {
  assert.equal(hypervisorOf({ xen: true, kvm: true, libvirtSocket: false }), 'xen');
  assert.equal(hypervisorOf({ xen: false, kvm: false, libvirtSocket: false }), 'none');
  assert.deepEqual(chooseDomainTool({ xen: true, kvm: false, libvirtSocket: false }, ''), { tool: 'xl' });
  assert.deepEqual(chooseDomainTool({ xen: true, kvm: false, libvirtSocket: true }, ''), { tool: 'virsh', uri: 'xen:///system' });
  assert.deepEqual(chooseDomainTool({ xen: false, kvm: true, libvirtSocket: true }, ''), { tool: 'virsh', uri: 'qemu:///system' });
  assert.deepEqual(chooseDomainTool({ xen: true, kvm: false, libvirtSocket: false }, 'test:///default'), { tool: 'virsh', uri: 'test:///default' });
});

test('module info and host facts parsers', () => {
  assert.equal(ovsReleaseVersion('Oracle VM server release 3.2.1\n'), '3.2.1');
  assert.equal(ovsReleaseVersion('garbage'), undefined);
  assert.equal(xenVersion('xen_major              : 4\nxen_minor              : 4\nxen_extra              : .4OVM\n'), '4.4.4OVM');
  assert.equal(xenVersion(''), '');
  assert.equal(ovsVswitchVersion('ovs-vsctl (Open vSwitch) 3.1.0\nDB Schema 8.3.1\n'), '3.1.0');
  const links = [{ ifname: 'xenbr0', linkinfo: { info_kind: 'bridge' } }, { ifname: 'eth0' }, { ifname: 'ovs-system', linkinfo: { info_kind: 'openvswitch' } }, { ifname: 'br-int', linkinfo: { info_kind: 'openvswitch' } }];
  assert.deepEqual(bridgesOf(JSON.stringify(links)), ['br-int', 'xenbr0']);
});

const state = (over: Partial<FencerState> = {}): FencerState =>
  ({ version: 1, pid: 1, host_id: 'g1', written_at_ms: 1_000_000, started_at_ms: 0, action: 'reboot', fence_after_s: 30, probe_interval_s: 5, probe_timeout_s: 10,
    watchdog: { device: '', open: false, petting: false, last_pet_age_s: null, timeout_s: 20 }, fenced: null, last_fence: null, pools: [], ...over }) as FencerState;

const armedPool = (path: string, over: Record<string, unknown> = {}) => ({ path, heartbeat: 'ovm', state: 'ok', armed: true, ...over });
const facts = (over: Partial<HealthCheckFacts> = {}): HealthCheckFacts => ({
  state: state({ pools: [armedPool('/OVS/Repositories/a'), armedPool('/OVS/Repositories/b')] as never }),
  writer: { pidExists: true, pidStart: '700' },
  bootId: 'boot-1',
  guid: 'g1',
  path: '/OVS/Repositories/b',
  poolPaths: ['/OVS/Repositories/a', '/OVS/Repositories/b'],
  nowMs: 1_001_000,
  monoMs: 0,
  started: false,
  ...over,
});

test('check_dom0_storage_health_check: running only when the fencer runs, guards that path, the pool is armed and the action protects; started when this call added the pool', () => {
  assert.deepEqual(healthCheckReply(facts()).reply, [true, false], 'all true');
  assert.deepEqual(healthCheckReply(facts({ state: state({ pid_start: '700', pools: [armedPool('/OVS/Repositories/a'), armedPool('/OVS/Repositories/b')] as never }) })).reply, [true, false], 'its writer: same pid, same start time');
  const cases: Array<[string, Partial<HealthCheckFacts>, RegExp]> = [
    ['no state file', { state: undefined }, /no fencer state/],
    // A hung state_dir: the read gave no answer in time; never "guarded", whatever an earlier read said.
    ['state not read in time', { state: undefined, stateUnread: 'could not be read within 2 s (no answer: a hung disk?)' }, /fencer state could not be read within 2 s.*cannot tell/],
    ['stale state file', { nowMs: 1_000_000 + (STATE_STALE_S + 0.001) * 1000 }, /stale/],
    ['writer gone', { writer: { pidExists: false, pidStart: undefined } }, /pid 1\) is gone/],
    // The fencer died and another process drew its pid: by the pid alone this read "guarded".
    ['pid reused', { state: state({ pid_start: '699', pools: [armedPool('/OVS/Repositories/a'), armedPool('/OVS/Repositories/b')] as never }) }, /pid 1\) is gone: that pid is another process's now/],
    // Written by the last boot's fencer, fresh by a wall clock behind after the reboot; its pid is some other process now.
    ['a state of the last boot', { state: state({ boot_id: 'boot-0', pools: [armedPool('/OVS/Repositories/a'), armedPool('/OVS/Repositories/b')] as never }) }, /before the last boot/],
    ['another host id', { guid: 'g2' }, /fencer.host_id = "g2"/],
    ['path not resolved', { path: new Error('realpath -e /x: no answer within 10 ms') }, /cannot resolve/],
    ['another path', { path: '/OVS/Repositories/c' }, /does not guard \/OVS\/Repositories\/c/],
    ['the guarded pool could not be resolved', { poolPaths: ['/OVS/Repositories/a', undefined] }, /does not guard/],
    ['no pools', { state: state(), poolPaths: [] }, /its pools: none/],
    ['pool not armed', { state: state({ pools: [armedPool('/OVS/Repositories/a'), armedPool('/OVS/Repositories/b', { armed: false, state: 'unverified' })] as never }) }, /not armed/],
    ['log-only', { state: state({ action: 'log-only', pools: [armedPool('/OVS/Repositories/a'), armedPool('/OVS/Repositories/b')] as never }) }, /log-only.*only be logged/],
  ];
  for (const [name, over, why] of cases) {
    const r = healthCheckReply(facts(over));
    assert.deepEqual(r.reply, [false, false], name);
    assert.match(r.why, why, name);
    // started says only what this call did: true with every reason running is false
    const s = healthCheckReply(facts({ ...over, started: true }));
    assert.deepEqual(s.reply, [false, true], `${name}, added by this call`);
    assert.match(s.why, why, `${name}, added by this call`);
  }
  assert.deepEqual(healthCheckReply(facts({ started: true })).reply, [true, true], 'added by this call and (already) armed');
  assert.match(healthCheckReply(facts({ path: '/opt/cloudstack/bin', notAdded: '/opt/cloudstack/bin is not a mount point' })).why, /not added: .*not a mount point/);
  assert.match(healthCheckReply(facts({ path: '/OVS/Repositories/c', started: true })).why, /added .* as a runtime pool.*next tick/);
  // The state's age at exactly STATE_STALE_S is still fresh; every protecting action counts.
  assert.deepEqual(healthCheckReply(facts({ nowMs: 1_000_000 + STATE_STALE_S * 1000 })).reply, [true, false]);
  // A state of this boot, or one whose boot cannot be told (no boot id on either side): by its age.
  for (const [sb, b] of [['boot-1', 'boot-1'], [undefined, 'boot-1'], ['boot-0', null]] as const)
    assert.deepEqual(healthCheckReply(facts({ bootId: b, state: state({ ...(sb ? { boot_id: sb } : {}), pools: [armedPool('/OVS/Repositories/b')] as never }), poolPaths: ['/OVS/Repositories/b'] })).reply, [true, false], `${sb} / ${b}`);
  for (const action of ['reboot', 'crash', 'kill-vms', 'command'] as const)
    assert.deepEqual(healthCheckReply(facts({ state: state({ action, pools: [armedPool('/OVS/Repositories/b')] as never }), poolPaths: ['/OVS/Repositories/b'] })).reply, [true, false], action);
});

test('check_dom0_storage_health_check: a state of this boot is fresh by CLOCK_MONOTONIC (the facts\' monoMs) at STATE_STALE_S −ε and =, stale at +ε, whatever its wall-clock stamp says', () => {
  // The fencer stamps every state with its boot id and CLOCK_MONOTONIC; the facts carry this boot's
  // id and CLOCK_MONOTONIC at nowMs. Its wall-clock stamp is an hour ahead (the clock stepped back
  // after the write): by the wall clock it would look fresh for another hour.
  const S = STATE_STALE_S * 1000;
  const mono = 5_000_000;
  const s = state({ boot_id: 'boot-1', written_at_ms: 1_001_000 + 3600_000, written_at_mono_ms: mono, pools: [armedPool('/OVS/Repositories/b')] as never });
  const at = (monoMs: number) => healthCheckReply(facts({ state: s, poolPaths: ['/OVS/Repositories/b'], monoMs }));
  assert.deepEqual(at(mono + S - 1).reply, [true, false], '−ε');
  assert.deepEqual(at(mono + S).reply, [true, false], '=');
  assert.deepEqual(at(mono + S + 1).reply, [false, false], '+ε');
  assert.match(at(mono + S + 1).why, /stale \(its last state is 5\.001 s old\)/);
  assert.match(at(mono + 60_000).why, /stale \(its last state is 60 s old\)/, 'the fencer stopped writing a minute ago, whatever the wall clock says');
  // A state of another boot, or with no monotonic stamp: the wall clock, −ε / = / +ε.
  const wall = state({ boot_id: 'boot-1', written_at_ms: 1_000_000, pools: [armedPool('/OVS/Repositories/b')] as never });
  for (const [d, running] of [[S - 1, true], [S, true], [S + 1, false]] as const)
    assert.equal(healthCheckReply(facts({ state: wall, poolPaths: ['/OVS/Repositories/b'], nowMs: 1_000_000 + d, monoMs: 0 })).reply[0], running, `wall ${d}`);
});

test('storage health: peer checks combined safely', () => {
  assert.equal(combinePeerChecks([{ alive: true, age_s: 1 }, { alive: false, age_s: 99 }]), false);
  assert.equal(combinePeerChecks([{ alive: 'unknown', age_s: null }, { alive: true, age_s: 1 }]), true);
  assert.equal(combinePeerChecks([{ alive: 'unknown', age_s: null }]), 'unknown');
  assert.deepEqual(fencerFacts(undefined), { running: false, state: 'no fencer state file' });
  assert.deepEqual(fencerFacts(undefined, 0, 'not JSON (empty)'), { running: false, state: 'fencer state file unusable: not JSON (empty)' });
  assert.equal(fencerFacts(state(), 1_001_000).running, true);
  assert.equal(fencerFacts(state({ clean_stop: true }), 1_001_000).running, false, 'a fencer that stopped cleanly a moment ago');
  // A pool of a stopped fencer has no current state: heartbeat_status says fencer-stopped, status
  // "unknown"; before, host_capabilities went on saying the pool's last state ("healthy").
  const stopped = fencerFacts(state({ pools: [armedPool('/c', { state: 'healthy' })] as never }), 1_000_000 + 60_000) as { running: boolean; pools: Array<{ state: string }> };
  assert.deepEqual([stopped.running, stopped.pools[0].state], [false, 'fencer-stopped']);
  const pools = (fencerFacts(state({ pools: [armedPool('/c'), armedPool('/r', { source: 'runtime' })] as never }), 1_001_000) as { pools: Array<{ path: string; source: string }> }).pools;
  assert.deepEqual(pools.map((p) => [p.path, p.source]), [['/c', 'config'], ['/r', 'runtime']], 'host_capabilities says where each pool comes from');
});
