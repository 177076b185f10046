// The fencer's decisions and parsers, with no host: timeouts at −ε, =, +ε (rule 17), probe plans,
// read-back and device checks with a scripted runner, the watchdog's bytes, VM usage, peer checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { judgePool, tickMs, type Timing, type PoolFacts } from '../../src/fencer/pool-health.js';
import { heartbeatContent, heartbeatFile, parseHeartbeat } from '../../src/fencer/heartbeat-format.js';
import { probeSteps, resolvePoolPath, startProbe, type ProbeTools } from '../../src/fencer/probe.js';
import { openWatchdog, type FdOps } from '../../src/fencer/watchdog.js';
import { parseDomblklist, parseXlList, queryPoolUsage, usageByPool, usageOf } from '../../src/fencer/vm-usage.js';
import { checkPeerHeartbeat, forgetPeerReads } from '../../src/fencer/peer-check.js';
import { javaNameUuid } from '../../src/fencer/host-id.js';
import { checkPool, heartbeatStatus, heartbeatStatusReply, methods as fencerMethods } from '../../src/fencer/methods.js';
import { decodeArgs } from '../../src/rpc/params.js';
import type { HeartbeatFormat } from '../../src/fencer/heartbeat-format.js';
import { recordingRunner, type Runner } from '../../src/shared/run.js';
import { BrickError } from '../../src/shared/errors.js';
import { defaultConfig } from '../../src/config/load.js';
import { parseConfigText } from '../../src/config/load.js';
import { healthyAgeMaxS } from '../../src/config/rules.js';
import { STATE_STALE_S, type FencerState } from '../../src/fencer/state.js';
import { MARKER_DIR_ANSWER_MS, startupDeadline } from '../../src/fencer/daemon.js';
import { LOCK_WAIT_S } from '../../src/fencer/instance-lock.js';
import { RUNTIME_POOLS_READ_MS } from '../../src/fencer/runtime-pools.js';
import { scratchDir } from '../fixtures/scratch.js';

const T: Timing = { probeIntervalMs: 5000, probeTimeoutMs: 10000, fenceAfterMs: 30000 };
const pool = (o: Partial<PoolFacts> = {}): PoolFacts => ({ path: '/p', fenceWhen: 'in-use', lastOkMs: 0, inUse: true, ...o });

test('pool states at the boundaries: warn at 60 % of fence_after_s, fence at fence_after_s exactly', () => {
  assert.equal(judgePool(pool({ lastOkMs: undefined }), 1e9, T).state, 'unverified');
  assert.equal(judgePool(pool(), 17_999, T).state, 'healthy');
  assert.equal(judgePool(pool(), 18_000, T).state, 'late');
  const justBefore = judgePool(pool(), 29_999, T);
  assert.equal(justBefore.state, 'late');
  assert.equal(justBefore.fence, false);
  assert.equal(justBefore.fenceInMs, 1);
  const at = judgePool(pool(), 30_000, T);
  assert.equal(at.state, 'expired');
  assert.equal(at.fence, true);
  assert.equal(judgePool(pool(), 30_001, T).fence, true);
  // An absurd age (e.g. a suspended host) is expired whatever the timing.
  assert.equal(judgePool(pool(), 3600_001, { ...T, fenceAfterMs: 1e10 }).fence, true);
  // MAX_LEGITIMATE_AGE_MS itself (1 h): −ε and = are ages like any other, +ε (above) is expired.
  assert.equal(judgePool(pool(), 3600_000 - 1, { ...T, fenceAfterMs: 1e10 }).fence, false);
  assert.equal(judgePool(pool(), 3600_000, { ...T, fenceAfterMs: 1e10 }).fence, false);
  // An age that is no number (a corrupt inherited record) is expired, never healthy.
  assert.deepEqual([judgePool(pool({ lastOkMs: NaN }), 1, T).state, judgePool(pool({ lastOkMs: NaN }), 1, T).fence], ['expired', true]);
});

test('rule 12: an idle pool reports dead and does not fence; unknown usage and fence_when=always fence', () => {
  assert.deepEqual([judgePool(pool({ inUse: false }), 31_000, T).state, judgePool(pool({ inUse: false }), 31_000, T).fence], ['dead', false]);
  assert.equal(judgePool(pool({ inUse: 'unknown' }), 31_000, T).fence, true);
  assert.equal(judgePool(pool({ inUse: false, fenceWhen: 'always' }), 31_000, T).fence, true);
  assert.equal(judgePool(pool({ inUse: false }), 10_000, T).fenceInMs, undefined, 'an idle pool cannot fence');
});

test('tick period: often enough to fence within 0.25 s and pet ≥ 4× per watchdog timeout', () => {
  assert.equal(tickMs({ ...T, probeIntervalMs: 500 }, 4000), 250);
  assert.equal(tickMs({ ...T, probeIntervalMs: 100 }, 4000), 50);
});

test('config rule: fence_after_s ≥ 2 × probe_timeout_s + tick + spawn slack (the age a slow healthy pool reaches): −ε refused, = and +ε accepted', () => {
  const cfg = (f: number) => parseConfigText(`[server]\nlisten="127.0.0.1:1"\n[fencer]\nprobe_interval_s = 0.5\nprobe_timeout_s = 2\nwatchdog_timeout_s = 4\nfence_after_s = ${f}\n`).problems;
  // 2 × 2 s + 0.25 s tick + 0.5 s = 4.75 s
  assert.equal(healthyAgeMaxS(0.5, 2, 4), 4.75);
  assert.ok(cfg(4.749).some((p) => /fencer.fence_after_s: must be ≥ 2 × probe_timeout_s \+ the loop tick \(0.25 s\) \+ 0.5 s = 4.75 s/.test(p)), cfg(4.749).join('\n'));
  assert.ok(cfg(4).length > 0, 'the old floor, 2 × probe_timeout_s, is refused');
  assert.deepEqual(cfg(4.75), []);
  assert.deepEqual(cfg(4.751), []);
  // Shipped defaults 5/10/30 s, watchdog 20 s: 20.75 s ≤ 30.
  assert.equal(healthyAgeMaxS(5, 10, 20), 20.75);
  assert.deepEqual(parseConfigText('[server]\nlisten="127.0.0.1:1"\n[fencer]\nprobe_timeout_s = 10\nfence_after_s = 20.75\n').problems, []);
  assert.equal(parseConfigText('[server]\nlisten="127.0.0.1:1"\n[fencer]\nprobe_timeout_s = 10\nfence_after_s = 20\n').problems.length, 1);
});

test('start-up deadline: above the sum of its steps\' own deadlines (a step that merely reaches its deadline never trips it), 12 + probe_timeout_s + 58 s as README says', () => {
  for (const probeTimeoutMs of [2000, 10_000]) {
    const t = { ...T, probeTimeoutMs };
    // The instance lock's wait and answer, one pool-path resolution, the host tools' version probes, marker_dir's look, the runtime pools read, wdctl.
    const steps = (LOCK_WAIT_S + 10) * 1000 + probeTimeoutMs + 3000 + MARKER_DIR_ANSWER_MS + RUNTIME_POOLS_READ_MS + 5000;
    assert.ok(startupDeadline(t) > steps, `${startupDeadline(t)} > ${steps}`);
    assert.equal(startupDeadline(t), (12 + probeTimeoutMs / 1000 + 58) * 1000);
  }
  assert.equal(startupDeadline({ ...T, probeTimeoutMs: 2000 }), 72_000, 'the short test timings');
  assert.equal(startupDeadline(T), 80_000, 'the defaults');
});

test('heartbeat formats: ovm float epoch in .hb-<id>, kvm integer epoch + newline in KVMHA/hb-<id>', () => {
  assert.equal(heartbeatFile('/OVS/Repositories/x/', 'g1', 'ovm'), '/OVS/Repositories/x/.hb-g1');
  assert.equal(heartbeatFile('/mnt/p', '10.0.0.1', 'kvm'), '/mnt/p/KVMHA/hb-10.0.0.1');
  assert.equal(heartbeatContent('ovm', 1438958400123), '1438958400.123');
  assert.equal(heartbeatContent('kvm', 1438958400999), '1438958400\n');
  assert.equal(parseHeartbeat('ovm', '1438958400.12'), 1438958400.12);
  assert.equal(parseHeartbeat('kvm', '1438958400\n'), 1438958400);
  assert.equal(parseHeartbeat('kvm', '1438958400.5'), undefined);
  assert.equal(parseHeartbeat('ovm', ''), undefined);
  assert.equal(parseHeartbeat('ovm', 'garbage'), undefined);
  // Ovm3Discoverer: UUID.nameUUIDFromBytes("192.168.1.10".getBytes()).
  // Expected value from Python: uuid.UUID(bytes=hashlib.md5(b'192.168.1.10').digest(), version=3).
  assert.equal(javaNameUuid('192.168.1.10'), '8f337c97-3339-3d70-9388-3bd28ddb6588');
});

const tools: ProbeTools = { dd: '/usr/bin/dd', mv: '/usr/bin/mv', stat: '/usr/bin/stat', mkdir: '/usr/bin/mkdir', realpath: '/usr/bin/realpath' };

test('probe plan: stat, dsync write to a temp name, rename, O_DIRECT read-back; absolute tools, no shell', () => {
  const steps = probeSteps({ poolPath: '/mnt/p', hostId: 'h', format: 'kvm' }, tools, '1\n', { mkdir: true });
  assert.deepEqual(steps.map((s) => s.what), ['stat', 'mkdir', 'write', 'rename', 'read-back']);
  // -L: a pool path that is a symlink is judged by the filesystem it points into.
  assert.deepEqual(steps[0].args, ['-L', '-c', '%d', '--', '/mnt/p', '/']);
  // nofollow: a symlink planted on the shared pool never sends the write or the read-back to a file of this host.
  assert.deepEqual(steps[2].args, ['of=/mnt/p/KVMHA/hb-h.new', 'bs=4096', 'oflag=dsync,nofollow', 'conv=fsync', 'status=none']);
  assert.deepEqual(steps[3].args, ['-f', '-T', '--', '/mnt/p/KVMHA/hb-h.new', '/mnt/p/KVMHA/hb-h']);
  assert.deepEqual(steps[4].args, ['if=/mnt/p/KVMHA/hb-h', 'iflag=direct,nofollow', 'bs=4096', 'count=1', 'status=none']);
  assert.ok(steps.every((s) => s.cmd.startsWith('/')));
  const ovm = probeSteps({ poolPath: '/mnt/p', hostId: 'h', format: 'ovm' }, tools, 'x', { mkdir: false, delay: { s: 1.5, sleep: '/usr/bin/sleep' } });
  assert.deepEqual(ovm.map((s) => s.what), ['injected delay', 'stat', 'write', 'rename', 'read-back']);
  assert.deepEqual(ovm[0], { what: 'injected delay', cmd: '/usr/bin/sleep', args: ['1.5'] });
});

function scripted(devices: string, readBack: (input: string) => string, fail?: string): Runner {
  let written = '';
  return recordingRunner((c) => {
    if (c.cmd.endsWith('stat')) return { stdout: devices };
    if (c.args[0].startsWith('of=')) {
      written = String(c.opts.input);
      return fail === 'write' ? { code: 1, stderr: 'dd: error writing: Input/output error' } : {};
    }
    if (c.args[0].startsWith('if=')) return { stdout: readBack(written) };
    return {};
  });
}

test('probe result: success only with a matching read-back, a mounted pool and the same device', async () => {
  const steps = probeSteps({ poolPath: '/mnt/p', hostId: 'h', format: 'ovm' }, tools, '123.456', { mkdir: false });
  const now = () => performance.now();
  let r = await startProbe(steps, scripted('40\n2049\n', (w) => w), 1000, now).result;
  assert.deepEqual([r.ok, (r as { device: string }).device], [true, '40']);
  r = await startProbe(steps, scripted('40\n2049\n', () => '999.000'), 1000, now).result;
  assert.equal(r.ok, false);
  assert.match((r as { error: string }).error, /read-back mismatch/);
  r = await startProbe(steps, scripted('2049\n2049\n', (w) => w), 1000, now).result;
  assert.match((r as { error: string }).error, /root filesystem: the storage is not mounted/);
  r = await startProbe(steps, scripted('41\n2049\n', (w) => w), 1000, now, '40').result;
  assert.match((r as { error: string }).error, /filesystem changed \(device 40 → 41\)/);
  r = await startProbe(steps, scripted('40\n2049\n', (w) => w, 'write'), 1000, now).result;
  assert.match((r as { error: string }).error, /write failed \(exit 1\): dd: error writing: Input\/output error/);
});

test('probe deadline D at −ε, =, +ε (rule 17 probe.slow): a read-back that verifies at D − 1 ms counts; one that comes at D or D + 1 ms is a timeout at D (mocked timers, no sleep)', async (t) => {
  const D = 10_000;
  const steps = probeSteps({ poolPath: '/mnt/p', hostId: 'h', format: 'ovm' }, tools, '123.456', { mkdir: false });
  const flush = async () => {
    for (let i = 0; i < 20; i++) await Promise.resolve();
  };
  for (const [at, ok] of [[D - 1, true], [D, false], [D + 1, false]] as const) {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    let written = '';
    // Every step answers at once but the read-back, which answers `at` ms after the probe started.
    const run = recordingRunner((c) => {
      if (c.cmd.endsWith('stat')) return { stdout: '40\n2049\n' };
      if (c.args[0].startsWith('of=')) return (written = String(c.opts.input)), {};
      if (c.args[0].startsWith('if=')) return new Promise((res) => setTimeout(() => res({ stdout: written }), at - Date.now()));
      return {};
    });
    const got: { r?: Awaited<ReturnType<typeof startProbe>['result']> } = {};
    const probe = startProbe(steps, run, D, () => Date.now());
    void probe.result.then((x) => (got.r = x));
    const answer = () => got.r;
    await flush();
    t.mock.timers.tick(Math.min(at, D) - 1);
    await flush();
    assert.equal(answer(), undefined, `${at}: no answer before ${Math.min(at, D) - 1} ms`);
    t.mock.timers.tick(1);
    await flush();
    const r = answer();
    assert.ok(r, `${at}: answered by ${Math.min(at, D)} ms`);
    assert.equal(r.ok, ok, `${at} ms`);
    if (!r.ok) assert.deepEqual([r.timedOut, r.error, r.latencyMs], [true, `no answer within ${D} ms`, D], `${at} ms`);
    else assert.equal(r.latencyMs, D - 1);
    t.mock.timers.tick(10);
    await flush();
    await probe.finished;
    t.mock.timers.reset();
  }
});

test('a probe that never answers fails at its deadline; `finished` stays pending (a D-state child)', async () => {
  const steps = probeSteps({ poolPath: '/mnt/p', hostId: 'h', format: 'ovm' }, tools, '1.0', { mkdir: false });
  const hang: Runner = () => new Promise(() => {});
  const t0 = performance.now();
  const p = startProbe(steps, hang, 100, () => performance.now());
  const r = await p.result;
  assert.equal(r.ok, false);
  assert.equal((r as { timedOut: boolean }).timedOut, true);
  assert.ok(performance.now() - t0 < 1000);
  const settled = await Promise.race([p.finished.then(() => true), new Promise((res) => setTimeout(() => res(false), 50))]);
  assert.equal(settled, false);
});

function fakeFs(openError?: string): FdOps & { writes: string[]; closed: number } {
  const f = {
    writes: [] as string[],
    closed: 0,
    openSync: (() => {
      if (openError) throw Object.assign(new Error(openError), { code: openError });
      return 7;
    }) as unknown as FdOps['openSync'],
    writeSync: (_fd: number, b: Buffer) => (f.writes.push(b.toString('latin1')), b.length),
    closeSync: (() => void f.closed++) as FdOps['closeSync'],
    fstatSync: (() => ({})) as unknown as FdOps['fstatSync'],
  };
  return f;
}

test('watchdog: pets are single NUL bytes, magic V only on disarm; EBUSY is refused with the reason', () => {
  const fs = fakeFs();
  const w = openWatchdog('/dev/watchdog', fs);
  w.pet();
  w.pet();
  w.disarm();
  assert.deepEqual(fs.writes, ['\0', '\0', 'V']);
  assert.equal(fs.closed, 1);
  const fs2 = fakeFs();
  const w2 = openWatchdog('/dev/watchdog', fs2);
  w2.pet();
  w2.abandon();
  assert.deepEqual(fs2.writes, ['\0']);
  assert.throws(() => openWatchdog('/dev/watchdog', fakeFs('EBUSY')), (e: BrickError) => e.fault === 'CONFLICT' && /held by another program \(EBUSY\)/.test(e.message));
  assert.throws(() => openWatchdog('/dev/watchdog1', fakeFs('ENOENT')), (e: BrickError) => e.fault === 'NOT_FOUND');
});

test('VM usage: virsh domblklist and xl list -l parsers; a hung hypervisor is "unknown"', async () => {
  const text = ' Type   Device   Target   Source\n---------------------------\n file   disk     vda      /mnt/p1/vm 1.qcow2\n file   cdrom    hdc      -\n';
  assert.deepEqual(parseDomblklist(text), ['/mnt/p1/vm 1.qcow2']);
  const xl = JSON.stringify([{ domid: 0, config: { disks: [{ pdev_path: '/x/dom0' }] } }, { domid: 3, config: { disks: [{ pdev_path: 'file:/OVS/Repositories/r/a.img' }] } }]);
  assert.deepEqual(parseXlList(xl), ['/OVS/Repositories/r/a.img']);
  assert.deepEqual([...usageOf(['/mnt/p1', '/mnt/p', '/OVS/Repositories/r'], ['/mnt/p1/vm.qcow2'])], [['/mnt/p1', true], ['/mnt/p', false], ['/OVS/Repositories/r', false]]);
  const hang: Runner = () => new Promise(() => {});
  assert.equal(await queryPoolUsage(['/mnt/p'], { kind: 'libvirt', bin: '/usr/bin/virsh' }, hang, 50), 'unknown');
  const failing = recordingRunner(() => ({ code: 1, stderr: 'error: failed to connect to the hypervisor' }));
  assert.equal(await queryPoolUsage(['/mnt/p'], { kind: 'libvirt', bin: '/usr/bin/virsh' }, failing, 500), 'unknown');
  const ok = recordingRunner((c) => (c.args.includes('list') ? { stdout: 'vm1\n\n' } : { stdout: text }));
  const m = await queryPoolUsage(['/mnt/p1', '/mnt/p2'], { kind: 'libvirt', bin: '/usr/bin/virsh', uri: 'qemu:///system' }, ok, 500);
  assert.deepEqual(m instanceof Map ? [...m] : m, [['/mnt/p1', true], ['/mnt/p2', false]]);
  assert.deepEqual(ok.calls[0].args, ['-c', 'qemu:///system', 'list', '--name']);
  assert.equal(await queryPoolUsage(['/mnt/p'], { kind: 'none' }, ok, 500), 'unknown');
});

test('peer check: unreadable/timeout/garbage → unknown (never false); stale → false; unchanged over the window → false', async () => {
  forgetPeerReads();
  const wall = 1_000_000_000;
  const base = { poolPath: '/mnt/p', hostId: 'peer', format: 'kvm' as const, maxAgeS: 60, timeoutMs: 200, wallMs: () => wall };
  const reads = (stdout: string, code = 0): Runner => recordingRunner(() => ({ stdout, code }));
  assert.deepEqual(await checkPeerHeartbeat({ ...base, run: reads('', 1) }), { alive: 'unknown', age_s: null });
  assert.deepEqual(await checkPeerHeartbeat({ ...base, run: () => new Promise(() => {}), timeoutMs: 30 }), { alive: 'unknown', age_s: null });
  assert.deepEqual(await checkPeerHeartbeat({ ...base, run: reads('not a number\n') }), { alive: 'unknown', age_s: null });
  assert.deepEqual(await checkPeerHeartbeat({ ...base, run: reads(`${wall / 1000 - 61}\n`), monoMs: () => 0 }), { alive: false, age_s: 61 });
  forgetPeerReads();
  // A peer whose clock runs 2 minutes ahead: wall-clock age says fresh, but the value never changes.
  const ahead = `${wall / 1000 + 120}\n`;
  assert.equal((await checkPeerHeartbeat({ ...base, run: reads(ahead), monoMs: () => 0 })).alive, true);
  assert.equal((await checkPeerHeartbeat({ ...base, run: reads(ahead), monoMs: () => 59_000 })).alive, true);
  // Unchanged for 60 s after the end of the second it names (kvm: rewritten unchanged within it).
  assert.equal((await checkPeerHeartbeat({ ...base, run: reads(ahead), monoMs: () => 60_999 })).alive, true);
  assert.equal((await checkPeerHeartbeat({ ...base, run: reads(ahead), monoMs: () => 61_000 })).alive, false);
  // A peer whose clock is behind but whose value changes: alive.
  forgetPeerReads();
  assert.equal((await checkPeerHeartbeat({ ...base, run: reads(`${wall / 1000 - 100}\n`), monoMs: () => 0 })).alive, false);
  assert.equal((await checkPeerHeartbeat({ ...base, run: reads(`${wall / 1000 - 90}\n`), monoMs: () => 10_000 })).alive, true);
});

test('peer check at the boundaries (−ε, =, +ε), as kvmheartbeat.sh and storagehealth.py read: older than max_age_s is dead, exactly max_age_s is alive', async () => {
  const wall = 1_000_000_000_000;
  const reads = (stdout: string): Runner => recordingRunner(() => ({ stdout }));
  const check = (format: HeartbeatFormat, text: string, monoMs: number, wallMs = wall) =>
    checkPeerHeartbeat({ poolPath: '/mnt/p', hostId: 'peer', format, maxAgeS: 60, timeoutMs: 200, wallMs: () => wallMs, monoMs: () => monoMs, run: reads(text) });
  // By the written epoch and this host's wall clock (a first read: nothing seen before).
  for (const [format, text, alive] of [
    ['kvm', `${wall / 1000 - 59}\n`, true],
    ['kvm', `${wall / 1000 - 60}\n`, true],
    ['kvm', `${wall / 1000 - 61}\n`, false],
    ['ovm', (wall / 1000 - 59.999).toFixed(3), true],
    ['ovm', (wall / 1000 - 60).toFixed(3), true],
    ['ovm', (wall / 1000 - 60.001).toFixed(3), false],
  ] as const) {
    forgetPeerReads();
    assert.equal((await check(format, text, 0)).alive, alive, `${format} ${JSON.stringify(text)}`);
  }
  // By this host's monotonic clock: a value unchanged for max_age_s − ε, exactly, + ε (its epoch
  // looks fresh: the peer's clock is far ahead, so only the unchanged rule can tell). A kvm value
  // may have been rewritten unchanged until the end of the second it names: one second more.
  for (const [format, ahead, at] of [
    ['ovm', (wall / 1000 + 3600).toFixed(3), 60_000],
    ['kvm', `${wall / 1000 + 3600}\n`, 60_999],
  ] as const) {
    for (const [mono, alive] of [
      [at - 1, true],
      [at, true],
      [at + 1, false],
    ] as const) {
      forgetPeerReads();
      assert.equal((await check(format, ahead, 0)).alive, true);
      assert.equal((await check(format, ahead, mono)).alive, alive, `${format} unchanged for ${mono} ms`);
    }
  }
});

test('peer check under clock skew: a peer seen writing within max_age_s of our monotonic clock is alive whatever its wall clock or ours says; a dead one is dead max_age_s (+ the second a kvm epoch names) after we first saw its last value', async () => {
  // The peer's clock is 50 s behind ours; it writes every 20 s; max_age_s 60 (CloudStack's defaults' order).
  const W = 1_000_000_000;
  const behind = 50;
  let t = 0; // seconds, both our monotonic and our wall clock advance with it
  let file = '';
  const write = () => (file = `${W + t - behind}\n`);
  const check = () =>
    checkPeerHeartbeat({ poolPath: '/mnt/p', hostId: 'peer', format: 'kvm', maxAgeS: 60, timeoutMs: 200, wallMs: () => (W + t) * 1000, monoMs: () => t * 1000, run: recordingRunner(() => ({ stdout: file })) });
  forgetPeerReads();
  t = -5; write();
  t = 0; assert.equal((await check()).alive, true, 'first read: 55 s by the epoch');
  t = 2; write();
  t = 3; assert.equal((await check()).alive, true, 'seen changing since the read at 0');
  // No write since t=2 (next at 22): by the epoch it is 61 s old, but we saw it change after t=0, 13 s ago.
  t = 13; assert.equal((await check()).alive, true, 'written after our read at 0, 13 s ago: a live peer must not look dead');
  t = 21; assert.equal((await check()).alive, true);
  // Our own wall clock steps 10 minutes forward: what we saw on the monotonic clock still holds.
  const wallStep = 600;
  const checkStepped = () =>
    checkPeerHeartbeat({ poolPath: '/mnt/p', hostId: 'peer', format: 'kvm', maxAgeS: 60, timeoutMs: 200, wallMs: () => (W + t + wallStep) * 1000, monoMs: () => t * 1000, run: recordingRunner(() => ({ stdout: file })) });
  t = 22; write();
  t = 25; assert.equal((await checkStepped()).alive, true, 'our wall clock jumped; the value changed since our read at 21');
  t = 40; assert.equal((await checkStepped()).alive, true, 'seen written after 21, 19 s ago');
  // The peer dies after its write at 22, which our reads place in (21, 25]. Alive while it is at most
  // 60 s old for sure; past that its epoch, clamped to those bounds, decides: 50 s behind, it puts
  // the write at 21, the earliest our reads allow (a gap of 4 s is all skew can move).
  t = 81; assert.equal((await check()).alive, true, 'written after our read at 21: at most 60 s old');
  t = 81.001; assert.equal((await check()).alive, false, 'may be older than 60 s, and its epoch says so');
  t = 200; assert.equal((await check()).alive, false);

  // The same peer with its clock 50 s AHEAD of ours: its epoch would call it fresh until 50 s after
  // the time; our reads clamp it to the latest they allow, the first read that saw it.
  forgetPeerReads();
  const ahead = -50;
  const writeAhead = () => (file = `${W + t - ahead}\n`);
  t = -5; writeAhead();
  t = 0; assert.equal((await check()).alive, true);
  t = 2; writeAhead();
  t = 3; assert.equal((await check()).alive, true);
  t = 40; assert.equal((await check()).alive, true, 'the epoch (50 s ahead) says fresh; our reads say ≤ 40 s');
  // First seen at 3; rewritten unchanged at most until the end of the second it names.
  t = 63.999; assert.equal((await check()).alive, true, '= 60 s after the latest write our reads allow');
  t = 64; assert.equal((await check()).alive, false, 'unchanged for more than 60 s (+ its second) of our own clock, whatever its epoch says');
});

test('kvm heartbeats name whole seconds: writes within one second (a sub-second probe interval) leave the same content, and the peer check judges the latest of them, as kvmheartbeat.sh does', async () => {
  const W = 1_000_000_000; // the peer's clock and ours agree here
  let t = 0; // seconds on both our clocks
  let file = '';
  const check = () =>
    checkPeerHeartbeat({ poolPath: '/mnt/p', hostId: '10.0.0.7', format: 'kvm', maxAgeS: 60, timeoutMs: 200, wallMs: () => (W + t) * 1000, monoMs: () => t * 1000, run: recordingRunner(() => ({ stdout: file })) });
  // The writer's content: the same for every write within one second.
  assert.equal(heartbeatContent('kvm', (W + 10) * 1000), heartbeatContent('kvm', (W + 10.75) * 1000));
  // A first read, at −ε, =, +ε of kvmheartbeat.sh's `$(date +%s) - hb > 60` → DEAD: a write in second
  // W+10 may be as late as W+10.999, so it is alive until W+70.999 and dead from W+71.
  for (const [at, alive] of [
    [70.5, true],
    [70.999, true],
    [71, false],
  ] as const) {
    forgetPeerReads();
    file = heartbeatContent('kvm', (W + 10) * 1000);
    t = at;
    assert.equal((await check()).alive, alive, `first read at W+${at}`);
  }
  // Probes every 0.25 s write "W+10" four times; we read it first at 10.1; the peer dies after its
  // write at 10.75. Nothing we can read tells the writes at 10.25-10.75 from the one at 10.0: the
  // check must not count the peer's age from our first read (it wrote 0.65 s after it).
  forgetPeerReads();
  t = 10;
  file = heartbeatContent('kvm', (W + t) * 1000);
  t = 10.1; assert.equal((await check()).alive, true);
  t = 10.25; file = heartbeatContent('kvm', (W + t) * 1000);
  t = 10.75; file = heartbeatContent('kvm', (W + t) * 1000);
  t = 70.1; assert.equal((await check()).alive, true);
  t = 70.5; assert.equal((await check()).alive, true, 'last written at 10.75: 59.75 s ago');
  t = 70.999; assert.equal((await check()).alive, true, 'the second W+10 may hold a write until 10.999');
  t = 71; assert.equal((await check()).alive, false, 'unchanged since the second W+10 ended, more than 60 s ago');
});

test('peer check and pool path resolution on a hung pool: one child per file at a time, joined by the next calls, each answering by its own deadline', async () => {
  forgetPeerReads();
  // A child the kernel holds past its SIGKILL: run() settles only when the test releases it.
  const release: Array<(r: { code: number; stdout: string; stderr: string }) => void> = [];
  const calls: string[][] = [];
  const stuck: Runner = (cmd, args) => {
    calls.push([cmd, ...args]);
    return new Promise((r) => release.push(r));
  };
  const base = { poolPath: '/mnt/p', hostId: 'peer', format: 'kvm' as const, maxAgeS: 60, timeoutMs: 30, run: stuck };
  for (let i = 0; i < 3; i++) assert.deepEqual(await checkPeerHeartbeat(base), { alive: 'unknown', age_s: null });
  assert.equal(calls.length, 1, `one dd for three checks of a hung file, got ${JSON.stringify(calls)}`);
  // Another peer's file on the same pool is another read.
  await checkPeerHeartbeat({ ...base, hostId: 'peer2' });
  assert.equal(calls.length, 2);
  // The stuck read ends (the storage answered): a check joining it gets its answer; the next check reads afresh.
  const joined = checkPeerHeartbeat({ ...base, timeoutMs: 1000 });
  release[0]({ code: 0, stdout: `${Math.floor(Date.now() / 1000)}\n`, stderr: '' });
  assert.equal((await joined).alive, true);
  assert.equal(calls.length, 2);
  await checkPeerHeartbeat(base);
  assert.equal(calls.length, 3, 'a new read once the stuck one has ended');

  const rcalls: string[][] = [];
  const rstuck: Runner = (cmd, args) => {
    rcalls.push([cmd, ...args]);
    return new Promise(() => {});
  };
  for (let i = 0; i < 3; i++) {
    const r = await resolvePoolPath('/mnt/hung', { realpath: '/usr/bin/realpath' }, rstuck, 20);
    assert.equal(r.path, '/mnt/hung');
    assert.match(r.error ?? '', /no answer within 20 ms/);
  }
  await resolvePoolPath('/mnt/other', { realpath: '/usr/bin/realpath' }, rstuck, 20);
  assert.deepEqual(rcalls, [['/usr/bin/realpath', '-e', '--', '/mnt/hung'], ['/usr/bin/realpath', '-e', '--', '/mnt/other']]);
});

test('heartbeat_check arguments: absolute pool, a configured pool or under file_roots, a safe host id, a sane age', () => {
  const c = defaultConfig();
  c.fencer.pool = [{ path: '/mnt/kvm1', heartbeat: 'kvm', fence_when: 'in-use', require_mount: true }];
  // As heartbeat_check takes them: its parameter schemas, then the pool's place in the config.
  const def = fencerMethods.find((m) => m.name === 'heartbeat_check')!;
  const checkArgs = (config: typeof c, args: unknown[]) => {
    const [poolPath, hostId, maxAgeS, format] = decodeArgs(def, args) as [string, string, number, HeartbeatFormat | undefined];
    return { ...checkPool(config, poolPath, format, { kind: 'missing', sig: 'missing' }), hostId, maxAgeS };
  };
  assert.deepEqual(checkArgs(c, ['/mnt/kvm1/', '10.0.0.2', 60]), { poolPath: '/mnt/kvm1', hostId: '10.0.0.2', maxAgeS: 60, format: 'kvm' });
  assert.equal(checkArgs(c, ['/OVS/Repositories/abc', 'g-1', '120']).format, 'ovm');
  const fault = (args: unknown[]) => {
    try {
      checkArgs(c, args);
    } catch (e) {
      return (e as BrickError).fault;
    }
    return 'none';
  };
  assert.equal(fault(['relative', 'h', 60]), 'INVALID_PARAMS');
  assert.equal(fault(['/mnt/kvm1/../etc', 'h', 60]), 'INVALID_PARAMS');
  assert.equal(fault(['/etc', 'h', 60]), 'PATH_REFUSED');
  assert.equal(fault(['/mnt/kvm1', '../../etc/passwd', 60]), 'INVALID_PARAMS');
  assert.equal(fault(['/mnt/kvm1', 'h', 0]), 'INVALID_PARAMS');
  assert.equal(fault(['/mnt/kvm1', 'h', 'soon']), 'INVALID_PARAMS');
  assert.equal(fault(['/mnt/kvm1', 'h', 60, 'nfs']), 'INVALID_PARAMS');
});

test('heartbeat_status: per-pool struct from the state file, ages brought up to date; NOT_READY without state', async () => {
  const dir = scratchDir('brick-fencer-status-');
  const c = defaultConfig();
  c.fencer.state_dir = join(dir, 'state');
  c.fencer.marker_dir = join(dir, 'marker');
  await assert.rejects(heartbeatStatus(c), (e: BrickError) => e.fault === 'NOT_READY');
  mkdirSync(c.fencer.state_dir);
  mkdirSync(c.fencer.marker_dir);
  const now = Date.now();
  const s: FencerState = {
    version: 1, pid: 1, host_id: 'h', written_at_ms: now - 1000, started_at_ms: now - 60_000, action: 'reboot',
    fence_after_s: 30, probe_interval_s: 5, probe_timeout_s: 10,
    watchdog: { device: '/dev/watchdog', open: true, petting: true, last_pet_age_s: 0.1, timeout_s: 20 },
    fenced: null, last_fence: null,
    pools: [{ path: '/mnt/p', heartbeat: 'kvm', heartbeat_file: '/mnt/p/KVMHA/hb-h', fence_when: 'in-use', state: 'healthy', armed: true, in_use: true,
      last_ok_age_s: 2, fence_in_s: 28, probe_latency_ms: { last: 12, min: 10, max: 40 }, stuck_probes: 0, stuck_for_s: null, probes_ok: 9, probes_failed: 0, last_error: null }],
  };
  writeFileSync(join(c.fencer.state_dir, 'fencer.json'), JSON.stringify(s));
  writeFileSync(join(c.fencer.marker_dir, 'fence-marker.json'), JSON.stringify({ at: '2026-01-01T00:00:00Z', pool: '/mnt/p', reason: 'r', action: 'reboot', host_id: 'h', last_ok_age_s: 30 }));
  const r = (await heartbeatStatus(c, now)) as any;
  assert.equal(r['/mnt/p'].state, 'healthy');
  assert.equal(r['/mnt/p'].last_ok_age_s.value, 3);
  assert.equal(r['/mnt/p'].fence_in_s.value, 27);
  assert.equal(r['/mnt/p'].probe_latency_ms.max.value, 40);
  assert.equal(r['/mnt/p'].last_fence.pool, '/mnt/p');
  assert.equal(((await heartbeatStatus(c, now + 10_000)) as any)['/mnt/p'].state, 'fencer-stopped');
  assert.equal(((await heartbeatStatus(c, now + 10_000)) as any)['/mnt/p'].fence_in_s, null, 'a stopped fencer counts nothing down');
  // A fresh file whose fencer stopped cleanly, or from another boot, is no running fencer either
  // (before: "healthy", fencer_running true, fence_in_s counting down, until the file was 5 s old).
  for (const extra of [{ clean_stop: true }, { boot_id: 'a-boot-before-this-one' }]) {
    writeFileSync(join(c.fencer.state_dir, 'fencer.json'), JSON.stringify({ ...s, ...extra }));
    const r = ((await heartbeatStatus(c, now)) as any)['/mnt/p'];
    assert.deepEqual([r.state, r.fencer_running, r.fence_in_s], ['fencer-stopped', false, null], JSON.stringify(extra));
  }
});

test('heartbeat_status at STATE_STALE_S: a state that old is a running fencer (−ε, =: its pool\'s state, the countdown brought up to date), one ε older is fencer-stopped with no countdown', () => {
  const W = 1_000_000_000;
  // pid 1 runs; no boot id and no monotonic stamp: the state's wall-clock age decides.
  const s = {
    version: 1, pid: 1, host_id: 'h', written_at_ms: W, started_at_ms: W - 60_000, action: 'reboot', fence_after_s: 30, probe_interval_s: 5, probe_timeout_s: 10,
    watchdog: { device: '', open: false, petting: false, last_pet_age_s: null, timeout_s: 20 }, fenced: null, last_fence: null,
    pools: [{ path: '/mnt/p', heartbeat: 'kvm', heartbeat_file: '/mnt/p/KVMHA/hb-h', fence_when: 'in-use', state: 'healthy', armed: true, in_use: true,
      last_ok_age_s: 2, fence_in_s: 28, probe_latency_ms: { last: 12, min: 10, max: 40 }, stuck_probes: 0, stuck_for_s: null, probes_ok: 9, probes_failed: 0, last_error: null }],
  } as FencerState;
  const reply = (nowMs: number) => (heartbeatStatusReply({ stateFile: '/run/brick/fencer.json', loaded: { state: s }, marker: { gone: true } }, nowMs) as any)['/mnt/p'];
  const S = STATE_STALE_S * 1000;
  for (const [d, state, fenceIn] of [[S - 1, 'healthy', 23.001], [S, 'healthy', 23], [S + 1, 'fencer-stopped', null]] as const) {
    const r = reply(W + d);
    assert.deepEqual([r.state, r.fencer_running, r.fence_in_s === null ? null : r.fence_in_s.value], [state, fenceIn !== null, fenceIn], `${d} ms`);
  }
});

test('heartbeat_status: last_fence goes once the admin removes the fence marker, as in brick status (the fencer\'s copy from its start is not used then)', async () => {
  // Before: the fencer's state keeps the marker it found at start (last_fence) until it restarts,
  // and heartbeat_status fell back to it when the file was gone: removing the file, as status and
  // the log say to, cleared status but not heartbeat_status.
  const dir = scratchDir('brick-fencer-status-');
  const c = defaultConfig();
  c.fencer.state_dir = dir;
  c.fencer.marker_dir = join(dir, 'marker');
  mkdirSync(c.fencer.marker_dir);
  const marker = { at: '2026-01-01T00:00:00Z', pool: '/mnt/p', reason: 'r', action: 'reboot', host_id: 'h', last_ok_age_s: 30 };
  const now = Date.now();
  writeFileSync(join(dir, 'fencer.json'), JSON.stringify({
    version: 1, pid: 1, host_id: 'h', written_at_ms: now, started_at_ms: now - 60_000, action: 'reboot', fence_after_s: 30, probe_interval_s: 5, probe_timeout_s: 10,
    watchdog: { device: '', open: false, petting: false, last_pet_age_s: null, timeout_s: 20 }, fenced: null, last_fence: marker,
    pools: [{ path: '/mnt/p', heartbeat: 'ovm', heartbeat_file: '/mnt/p/.hb-h', fence_when: 'in-use', state: 'healthy', armed: true, in_use: true,
      last_ok_age_s: 1, fence_in_s: 29, probe_latency_ms: { last: 1, min: 1, max: 1 }, stuck_probes: 0, stuck_for_s: null, probes_ok: 1, probes_failed: 0, last_error: null }],
  }));
  writeFileSync(join(c.fencer.marker_dir, 'fence-marker.json'), JSON.stringify(marker));
  assert.equal(((await heartbeatStatus(c, now)) as any)['/mnt/p'].last_fence.at, marker.at);
  rmSync(join(c.fencer.marker_dir, 'fence-marker.json'));
  assert.equal(((await heartbeatStatus(c, now)) as any)['/mnt/p'].last_fence, null, 'the marker was removed');
  rmSync(dir, { recursive: true, force: true });
});

test('heartbeat_status: a truncated or foreign state file is NOT_READY naming the file and what is wrong, never a TypeError', async () => {
  const dir = scratchDir('brick-fencer-status-');
  const c = defaultConfig();
  c.fencer.state_dir = dir;
  c.fencer.marker_dir = dir;
  for (const [text, why] of [
    ['{"version":1,"pid":', /not JSON/],
    [JSON.stringify({ version: 1, pid: 1, host_id: 'h', written_at_ms: Date.now(), action: 'reboot', fenced: null, watchdog: { device: '', open: false, petting: false }, pools: [{ path: '/p' }] }), /pools\[0\]/],
  ] as const) {
    writeFileSync(join(dir, 'fencer.json'), text);
    await assert.rejects(heartbeatStatus(c), (e: BrickError) => e.fault === 'NOT_READY' && /fencer\.json is unusable/.test(e.message) && why.test(e.message), text);
  }
  rmSync(dir, { recursive: true, force: true });
});

test('VM usage of a pool configured as a symlink: a disk under the configured or the resolved path counts, keyed by the configured path', () => {
  const pools = [{ path: '/pools/link', resolved: '/mnt/nfs1' }, { path: '/mnt/nfs2', resolved: '/mnt/nfs2' }];
  const paths = ['/pools/link', '/mnt/nfs1', '/mnt/nfs2'];
  assert.deepEqual([...usageByPool(pools, usageOf(paths, ['/mnt/nfs1/vm1.img']))], [['/pools/link', true], ['/mnt/nfs2', false]]);
  assert.deepEqual([...usageByPool(pools, usageOf(paths, ['/pools/link/vm1.img', '/mnt/nfs2/x.raw']))], [['/pools/link', true], ['/mnt/nfs2', true]]);
  assert.deepEqual([...usageByPool(pools, usageOf(paths, []))], [['/pools/link', false], ['/mnt/nfs2', false]]);
  assert.deepEqual([...usageByPool(pools, new Map())], [], 'no answer for a pool stays no answer (unknown)');
});
