// fencer.action = "kill-vms" with no host: the parsers of /proc and /sys texts, the pure decision
// (kill whom, when to spare, when to reset: kill_timeout_s at −ε, =, +ε), the gatherer against a
// fake /proc + /sys + debugfs tree, the kill step's seams, and the config timing rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, symlinkSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  devFromStDev, fdinfoMountId, mapsDevices, mountOf, nfsServerAddr, parseBdiStats, parseMountinfo, parseProcNetTcp, parseRpcTasks,
  parseStat, procNetAddr, vmFromCmdline,
} from '../../src/fencer/kill-vms/proc-parse.js';
import { planPoolKill, type KillFacts, type PoolKillState, type Holder } from '../../src/fencer/kill-vms/decide.js';
import { gatherKillFacts, pendingWrites, type GatherPaths } from '../../src/fencer/kill-vms/gather.js';
import { destroyArgv, destroyDomains, killHolders, killMarkerFile, markerOf } from '../../src/fencer/kill-vms/act.js';
import { parseConfigText } from '../../src/config/load.js';
import { KillVms, inheritMounts, type PreviousMounts } from '../../src/fencer/kill-vms/controller.js';
import type { Logger } from '../../src/shared/log.js';
import { recordingRunner, type Runner } from '../../src/shared/run.js';
import { scratchDir } from '../fixtures/scratch.js';

const MOUNTINFO = [
  '22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw',
  '52 22 0:52 / /mnt/pool rw,relatime shared:40 - nfs 10.0.0.5:/export rw,vers=3,rsize=1048576,hard,proto=tcp,timeo=600,retrans=2,sec=sys,mountaddr=10.0.0.5,mountvers=3,mountproto=tcp,local_lock=none,addr=10.0.0.5',
  '53 22 0:53 / /mnt/other\\040pool rw,relatime shared:41 - fuse.bindfs /src rw,user_id=0,group_id=0',
].join('\n');

test('mountinfo: device, mount point (escapes decoded), fstype, super options; the pool\'s mount by longest prefix', () => {
  const m = parseMountinfo(MOUNTINFO);
  assert.equal(m.length, 3);
  assert.deepEqual({ id: m[1].mountId, dev: m[1].dev, mp: m[1].mountPoint, fs: m[1].fstype }, { id: 52, dev: '0:52', mp: '/mnt/pool', fs: 'nfs' });
  assert.equal(m[2].mountPoint, '/mnt/other pool');
  assert.equal(mountOf('/mnt/pool/vm1', m)?.mountId, 52);
  assert.equal(mountOf('/mnt/pool', m)?.mountId, 52);
  assert.equal(mountOf('/mnt/poolx', m)?.mountId, 22, '/mnt/poolx is not under /mnt/pool');
  assert.equal(nfsServerAddr(m[1].superOptions), '10.0.0.5', 'addr=, not mountaddr=');
});

test('device numbers: stat %d decoded like the kernel; maps hex; fdinfo mnt_id', () => {
  assert.equal(devFromStDev(52), '0:52');
  assert.equal(devFromStDev((254 << 8) | 1), '254:1');
  assert.equal(devFromStDev(String(0x1234567)), devFromStDev(0x1234567));
  // minor ≥ 256: split encoding
  assert.equal(devFromStDev((0 << 8) | (300 & 0xff) | ((300 & ~0xff) << 12)), '0:300');
  const maps = [
    '55d0c0a00000-55d0c0a01000 r--p 00000000 fe:01 1234 /usr/bin/qemu',
    '7f0000000000-7f0000100000 rw-s 00000000 00:34 99 /mnt/pool/disk.img',
    '7f0000200000-7f0000300000 rw-p 00000000 00:00 0 ',
  ].join('\n');
  assert.deepEqual([...mapsDevices(maps)].sort(), ['0:52', '254:1']);
  assert.equal(fdinfoMountId('pos:\t0\nflags:\t0100002\nmnt_id:\t52\nino:\t99\n'), 52);
});

test('stat with spaces and parentheses in comm; VM identity from a QEMU command line', () => {
  const st = parseStat('4242 (qemu (x) y) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 3 0 987654 0 0');
  assert.deepEqual(st && { comm: st.comm, state: st.state, start: st.start, ppid: st.ppid, flags: st.flags }, { comm: 'qemu (x) y', state: 'S', start: '987654', ppid: 1, flags: 4194560 });
  const vm = vmFromCmdline(['/usr/bin/qemu-system-x86_64', '-name', 'guest=i-2-10-VM,,x,debug-threads=on', '-uuid', '1b4e28ba-2fa1-11d2-883f-0016d3cca427', ''].join('\0'));
  assert.deepEqual(vm, { name: 'i-2-10-VM,x', uuid: '1b4e28ba-2fa1-11d2-883f-0016d3cca427' });
  assert.deepEqual(vmFromCmdline(['/usr/lib/xen/bin/qemu-dm', '-xen-domid', '7', '-name', 'v7'].join('\0')), { name: 'v7', domid: 7 });
  assert.equal(vmFromCmdline(['/bin/dd', 'if=x'].join('\0')), undefined);
});

test('pending-write sources: bdi stats, rpc tasks, /proc/net/tcp queues (IPv4 and IPv6)', () => {
  const bdi = 'BdiWriteback:            8 kB\nBdiReclaimable:        12 kB\nBdiDirtyThresh:     0 kB\nb_dirty:                 1\nb_io:                    0\nb_more_io:               0\nb_dirty_time:            0\n';
  assert.deepEqual(parseBdiStats(bdi), { writebackKb: 8, reclaimableKb: 12, dirtyInodes: 1 });
  assert.equal(parseBdiStats('garbage'), undefined);
  const tasks = parseRpcTasks('   53 0880      0 0x3 0xd4a3b2c1    10000 nfs_pgio_common_ops [nfs] nfsv3 WRITE a:call_status [sunrpc] q:xprt_pending\n');
  assert.deepEqual(tasks.map((t) => t.proc), ['WRITE']);
  assert.equal(procNetAddr('0500000A'), '10.0.0.5');
  assert.equal(procNetAddr('0100007F'), '127.0.0.1');
  assert.equal(procNetAddr('000080FE00000000FF005450B6AD1DFE'), 'fe80::5054:ff:fe1d:adb6');
  assert.equal(procNetAddr('0000000000000000FFFF00000500000A'), '10.0.0.5');
  const tcp = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:0321 0500000A:0801 01 00001A2C:00000000 01:00000040 00000005     0        0 0 2',
    '   1: 0100007F:0322 0600000A:0801 01 00000000:00000000 00:00000000 00000000     0        0 0 1',
    '   2: 0100007F:0323 0500000A:0801 02 00000001:00000000 00:00000000 00000000     0        0 0 1',
  ].join('\n');
  assert.deepEqual(parseProcNetTcp(tcp).map((s) => [s.remote, s.port, s.txQueue]), [['10.0.0.5', 2049, 0x1a2c], ['10.0.0.6', 2049, 0], ['10.0.0.5', 2049, 1]]);
});

// ---- the decision ----
const K = 10_000;
const holder = (pid: number, o: Partial<Holder> = {}): Holder => ({ pid, start: String(1000 + pid), comm: 'qemu-kvm', how: ['fd 12 /mnt/pool/a.img'], ...o });
const facts = (atMs: number, o: Partial<KillFacts> = {}): KillFacts => ({ atMs, complete: true, holders: [], kernelHolders: [], alive: [], errors: [], pending: { known: true, items: [] }, ...o });
const input = (o: Partial<Parameters<typeof planPoolKill>[1]> = {}) => ({ fence: true, lastOkMs: 0, killErrors: [], ...o });

test('decision: idle → killing on an expiry (abort the probe, hold probes, gather); nothing while not expired', () => {
  const quiet = planPoolKill({ phase: 'idle' }, input({ fence: false }), 100, K);
  assert.equal(quiet.next.phase, 'idle');
  assert.equal(quiet.gather, false);
  const p = planPoolKill({ phase: 'idle' }, input(), 100, K);
  assert.equal(p.next.phase, 'killing');
  assert.ok(p.abortProbe && p.holdProbes && p.gather);
  assert.equal(p.next.phase === 'killing' && p.next.deadlineMs, 100 + K);
  assert.equal(p.reset, undefined);
});

test('decision: holders found are killed; spared only when a later round shows them gone and nothing pending', () => {
  let s: PoolKillState = planPoolKill({ phase: 'idle' }, input(), 0, K).next;
  // a round from before the phase began proves nothing
  const stale = planPoolKill(s, input({ facts: facts(-1) }), 50, K);
  assert.equal(stale.next.phase, 'killing');
  assert.equal(stale.spared, undefined);
  const r1 = planPoolKill(s, input({ facts: facts(10, { holders: [holder(7), holder(8, { vm: { name: 'vm8' } })], pending: undefined }) }), 300, K);
  assert.deepEqual(r1.kill.map((h) => h.pid), [7, 8]);
  assert.equal(r1.reset, undefined);
  s = r1.next;
  // killed, but 8 still has a live thread: not yet
  const r2 = planPoolKill(s, input({ facts: facts(400, { alive: ['8:1008'], pending: undefined }) }), 500, K);
  assert.equal(r2.next.phase, 'killing');
  assert.match(r2.next.phase === 'killing' ? r2.next.lastFacts ?? '' : '', /killed but not gone: 8 \(VM vm8\)/);
  s = r2.next;
  // gone, but a write is pending
  const r3 = planPoolKill(s, input({ facts: facts(600, { pending: { known: true, items: ['2 RPC task(s): WRITE'] } }) }), 700, K);
  assert.equal(r3.next.phase, 'killing');
  assert.equal(r3.spared, undefined);
  s = r3.next;
  const r4 = planPoolKill(s, input({ facts: facts(800) }), 900, K);
  assert.equal(r4.next.phase, 'fenced');
  assert.deepEqual(r4.spared?.map((k) => [k.pid, k.goneAtMs !== undefined]), [[7, true], [8, true]]);
  assert.equal(r4.reset, undefined);
  assert.equal(r4.holdProbes, false, 'probes resume so the pool can be verified again');
});

test('decision: kill_timeout_s at −ε, =, +ε: not proven by the deadline resets; proven just before spares', () => {
  const s: PoolKillState = { phase: 'killing', sinceMs: 0, deadlineMs: K, killed: [] };
  const pending = facts(5, { pending: { known: true, items: ['page cache: 4 kB dirty'] } });
  assert.equal(planPoolKill(s, input({ facts: pending }), K - 1, K).reset, undefined);
  const at = planPoolKill(s, input({ facts: pending }), K, K);
  assert.match(at.reset ?? '', /within kill_timeout_s \(10 s\).*writes still pending: page cache: 4 kB dirty/);
  assert.ok(planPoolKill(s, input({ facts: pending }), K + 1, K).reset);
  assert.equal(planPoolKill(s, input({ facts: facts(5) }), K - 1, K).next.phase, 'fenced');
  // no facts at all by the deadline (the /proc scan hung): reset
  assert.match(planPoolKill(s, input(), K, K).reset ?? '', /no facts gathered yet/);
});

test('decision: facts count from the round that began at the kill (atMs −ε ignored, = and +ε used); the one socket abort only before kill_timeout_s (−ε aborts, = and +ε reset)', () => {
  const s: PoolKillState = { phase: 'killing', sinceMs: 100, deadlineMs: 100 + K, killed: [] };
  // Facts gathered before the phase began describe a world before the kills: never a proof.
  assert.equal(planPoolKill(s, input({ facts: facts(99) }), 200, K).next.phase, 'killing');
  assert.match(planPoolKill(s, input({ facts: facts(99) }), 100 + K, K).reset ?? '', /no facts gathered yet/);
  for (const at of [100, 101]) assert.equal(planPoolKill(s, input({ facts: facts(at) }), 200, K).next.phase, 'fenced', `${at}`);
  const sockets = [{ addr: '10.0.0.5', port: 2049, bytes: 512 }];
  const onlyTcp = facts(150, { pending: { known: true, items: ['512 bytes not yet acknowledged by 10.0.0.5 in 1 TCP socket(s)'], sockets } });
  const before = planPoolKill(s, input({ facts: onlyTcp }), 100 + K - 1, K);
  assert.deepEqual([before.abortSockets, before.reset], [sockets, undefined]);
  for (const now of [100 + K, 100 + K + 1]) {
    const p = planPoolKill(s, input({ facts: onlyTcp }), now, K);
    assert.equal(p.abortSockets, undefined, `${now}`);
    assert.match(p.reset ?? '', /within kill_timeout_s \(10 s\).*not yet acknowledged/, `${now}`);
  }
});

test('decision: what cannot be shown resets — incomplete scan, kernel holders, unknown pending, a failed kill', () => {
  const s: PoolKillState = { phase: 'killing', sinceMs: 0, deadlineMs: K, killed: [] };
  for (const f of [
    facts(1, { complete: false, errors: ['not finished within 2000 ms'] }),
    facts(1, { kernelHolders: ['/dev/loop0 (backing file /mnt/pool/x)'] }),
    facts(1, { pending: { known: false, why: 'brick cannot see pending writes on a ocfs2 filesystem' } }),
    facts(1, { pending: undefined }),
  ]) {
    assert.equal(planPoolKill(s, input({ facts: f }), 100, K).next.phase, 'killing', JSON.stringify(f));
    assert.ok(planPoolKill(s, input({ facts: f }), K, K).reset);
  }
  const failed = planPoolKill(s, input({ facts: facts(1), killErrors: [{ pid: 9, comm: 'qemu', error: 'EPERM' }] }), 100, K);
  assert.match(failed.reset ?? '', /could not kill .*pid 9 \(qemu\): EPERM/);
});

test('decision: when only TCP bytes are left, destroy those sockets once, then spare only if they are gone', () => {
  const s: PoolKillState = { phase: 'killing', sinceMs: 0, deadlineMs: K, killed: [] };
  const sockets = [{ addr: '10.0.0.5', port: 2049, bytes: 512 }];
  const onlyTcp = facts(1, { pending: { known: true, items: ['512 bytes not yet acknowledged by 10.0.0.5 in 1 TCP socket(s)'], sockets } });
  const a = planPoolKill(s, input({ facts: onlyTcp }), 100, K);
  assert.deepEqual(a.abortSockets, sockets);
  assert.equal(a.next.phase, 'killing');
  assert.equal(a.spared, undefined);
  // once: the same facts again do not abort again, and at the deadline they reset
  assert.equal(planPoolKill(a.next, input({ facts: onlyTcp }), 200, K).abortSockets, undefined);
  assert.match(planPoolKill(a.next, input({ facts: onlyTcp }), K, K).reset ?? '', /not yet acknowledged/);
  assert.equal(planPoolKill(a.next, input({ facts: facts(300) }), 400, K).next.phase, 'fenced');
  // never while a WRITE is queued (its task would be resent on a new socket anyway): that resets
  const withWrite = facts(1, { pending: { known: true, items: ['1 RPC task(s): WRITE', '512 bytes not yet acknowledged'], sockets } });
  assert.equal(planPoolKill(s, input({ facts: withWrite }), 100, K).abortSockets, undefined);
  // never while a holder lives
  assert.equal(planPoolKill(s, input({ facts: { ...onlyTcp, holders: [holder(5)] } }), 100, K).abortSockets, undefined);
});

test('decision: a fenced pool stays fenced until a probe started after the fence verifies; a new holder is killed', () => {
  const s: PoolKillState = { phase: 'fenced', sinceMs: 1000, killed: [] };
  assert.equal(planPoolKill(s, input({ fence: false, lastOkMs: 1000 }), 5000, K).next.phase, 'fenced', 'a probe started AT the fence does not count');
  assert.equal(planPoolKill(s, input({ fence: true, lastOkMs: 900 }), 5000, K).next.phase, 'fenced');
  const again = planPoolKill(s, input({ fence: false, lastOkMs: 1001 }), 5000, K);
  assert.equal(again.next.phase, 'idle');
  assert.ok(again.verifiedAgain);
  const newVm = planPoolKill(s, input({ facts: facts(2000, { holders: [holder(30, { vm: { name: 'late-vm' } })] }) }), 2100, K);
  assert.equal(newVm.next.phase, 'killing');
  assert.deepEqual(newVm.kill.map((h) => h.pid), [30]);
  assert.equal(newVm.next.phase === 'killing' && newVm.next.deadlineMs, 2100 + K);
  // once it is gone the pool is fenced again from the ORIGINAL fence time
  const back = planPoolKill(newVm.next, input({ facts: facts(2200) }), 2300, K);
  assert.equal(back.next.phase, 'fenced');
  assert.equal(back.next.phase === 'fenced' && back.next.sinceMs, 1000);
  assert.deepEqual(back.spared?.map((k) => k.pid), [30]);
});

// ---- the gatherer on a fake /proc ----
function fakeHost(): { paths: GatherPaths; addProc: (pid: number, o: { fds?: Record<string, [string, number]>; maps?: string; cmdline?: string; state?: string; ns?: string; flags?: number }) => void; root: string } {
  const root = scratchDir('brick-killvms-unit-');
  const paths = { proc: join(root, 'proc'), sys: join(root, 'sys'), debugfs: join(root, 'debug') };
  mkdirSync(join(paths.proc, 'self'), { recursive: true });
  mkdirSync(join(paths.proc, 'net'), { recursive: true });
  writeFileSync(join(paths.proc, 'self/mountinfo'), MOUNTINFO + '\n');
  writeFileSync(join(paths.proc, 'net/tcp'), '  sl  local_address rem_address   st tx_queue rx_queue\n');
  const addProc: ReturnType<typeof fakeHost>['addProc'] = (pid, o) => {
    const b = join(paths.proc, String(pid));
    mkdirSync(join(b, 'fd'), { recursive: true });
    mkdirSync(join(b, 'fdinfo'), { recursive: true });
    mkdirSync(join(b, 'ns'), { recursive: true });
    mkdirSync(join(b, 'task', String(pid)), { recursive: true });
    const stat = `${pid} (qemu-kvm) ${o.state ?? 'S'} 1 ${pid} ${pid} 0 -1 ${o.flags ?? 0} 0 0 0 0 0 0 0 0 20 0 1 0 ${1000 + pid} 0 0`;
    writeFileSync(join(b, 'stat'), stat);
    writeFileSync(join(b, 'task', String(pid), 'stat'), stat);
    writeFileSync(join(b, 'mountinfo'), MOUNTINFO + '\n');
    symlinkSync(o.ns ?? 'mnt:[4026531840]', join(b, 'ns/mnt'));
    for (const [fd, [target, mnt]] of Object.entries(o.fds ?? {})) {
      symlinkSync(target, join(b, 'fd', fd));
      writeFileSync(join(b, 'fdinfo', fd), `pos:\t0\nflags:\t02\nmnt_id:\t${mnt}\n`);
    }
    writeFileSync(join(b, 'maps'), o.maps ?? '');
    writeFileSync(join(b, 'cmdline'), o.cmdline ?? '');
  };
  return { paths, addProc, root };
}

test('gatherer: holders by fdinfo mount id (per mount namespace) and maps device; sockets and other pools ignored', async () => {
  const h = fakeHost();
  h.addProc(100, { fds: { '3': ['/mnt/pool/a.img', 52], '4': ['socket:[123]', 0] }, cmdline: ['/usr/bin/qemu-system-x86_64', '-name', 'guest=vm100', '-uuid', 'u-100', ''].join('\0') });
  h.addProc(101, { maps: '7f00-7f10 r--s 00000000 00:34 99 /mnt/pool/ro.img\n' });
  h.addProc(102, { fds: { '5': ['/mnt/other pool/b.img', 53] } }); // another pool
  h.addProc(103, { fds: { '1': ['/var/log/x', 22], '2': ['/dev/pts/0', 77] } }); // 77: a mount no table shows, not under the pool
  h.addProc(105, { fds: { '6': ['/mnt/pool/d.img', 78] } }); // a detached mount (umount -l): by path
  h.addProc(106, { fds: { '7': ['/mnt/pool/e.img', 52] }, flags: 0x00200000 }); // a kernel thread: skipped
  // a QEMU in its own mount namespace: the pool has another mount id there, same device
  h.addProc(104, { fds: { '9': ['/mnt/pool/c.img', 901] }, ns: 'mnt:[4026532999]' });
  writeFileSync(join(h.paths.proc, '104/mountinfo'), '901 900 0:52 / /mnt/pool rw - nfs 10.0.0.5:/export rw,addr=10.0.0.5\n');
  const target = { path: '/mnt/pool', mount: parseMountinfo(MOUNTINFO)[1] };
  const f = await gatherKillFacts(target, [], { paths: h.paths, deadlineMs: 5000, exclude: new Set() });
  assert.equal(f.complete, true, f.errors.join('; '));
  assert.deepEqual(f.holders.map((x) => [x.pid, x.how.join(',')]), [[100, 'fd 3 /mnt/pool/a.img'], [101, 'mmap'], [104, 'fd 9 /mnt/pool/c.img'], [105, 'fd 6 /mnt/pool/d.img (detached mount)']]);
  assert.deepEqual(f.holders[0].vm, { name: 'vm100', uuid: 'u-100' });
  assert.equal(f.pending, undefined, 'pending writes are only read once nothing holds the pool');
});

test('gatherer: killed processes alive until every thread is a zombie; pid reuse is not "alive"', async () => {
  const h = fakeHost();
  h.addProc(200, {});
  h.addProc(201, { state: 'Z' });
  h.addProc(202, { state: 'Z' });
  mkdirSync(join(h.paths.proc, '202/task/203'), { recursive: true });
  writeFileSync(join(h.paths.proc, '202/task/203/stat'), '203 (qemu-kvm) D 1 202 202 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1202 0 0');
  const killed = [200, 201, 202, 204].map((pid) => ({ pid, start: String(1000 + pid), comm: 'q', how: [], killedAtMs: 0 }));
  killed[0].start = '1'; // 200 now names another process
  const target = { path: '/mnt/pool', mount: parseMountinfo(MOUNTINFO)[1] };
  const f = await gatherKillFacts(target, killed, { paths: h.paths, deadlineMs: 5000, exclude: new Set() });
  assert.deepEqual(f.alive, ['202:1202'], 'the zombie leader with a thread in D state is still alive');
});

test('gatherer: NFS pending writes from debugfs rpc tasks (by server address), bdi and TCP queues; missing debugfs is unknown', async () => {
  const h = fakeHost();
  const m = parseMountinfo(MOUNTINFO)[1];
  const none = await pendingWrites(m, h.paths);
  assert.equal(none.known, false);
  assert.match(!none.known ? none.why : '', /sunrpc\/rpc_clnt missing: mount debugfs/);
  const clnt = join(h.paths.debugfs, 'sunrpc/rpc_clnt');
  for (const [id, addr, tasks] of [['3', '10.0.0.5', ''], ['4', '10.0.0.9', '  1 0 0 0x4 0x1 0 x nfsv3 WRITE a:x q:y\n']] as const) {
    mkdirSync(join(clnt, id), { recursive: true });
    mkdirSync(join(h.paths.debugfs, 'sunrpc/rpc_xprt', id), { recursive: true });
    writeFileSync(join(h.paths.debugfs, 'sunrpc/rpc_xprt', id, 'info'), `netid: tcp\naddr: ${addr}\nport: 2049\nstate: 0x1b\n`);
    symlinkSync(`../../rpc_xprt/${id}`, join(clnt, id, 'xprt'));
    writeFileSync(join(clnt, id, 'tasks'), tasks);
  }
  mkdirSync(join(h.paths.debugfs, 'bdi/0:52'), { recursive: true });
  const clean = 'BdiWriteback: 0 kB\nBdiReclaimable: 0 kB\nb_dirty: 0\nb_io: 0\nb_more_io: 0\n';
  writeFileSync(join(h.paths.debugfs, 'bdi/0:52/stats'), clean);
  assert.deepEqual(await pendingWrites(m, h.paths), { known: true, items: [] }, 'a WRITE to ANOTHER server does not count');
  writeFileSync(join(clnt, '3/tasks'), ' 11 0 0 0x3 0x4 0 x nfsv3 GETATTR a:x q:y\n');
  assert.deepEqual(await pendingWrites(m, h.paths), { known: true, items: [] }, 'a GETATTR (a killed probe\'s stat) is no write');
  writeFileSync(join(clnt, '3/tasks'), '  9 0 0 0x3 0x2 0 x nfsv3 WRITE a:x q:y\n 10 0 0 0x3 0x3 0 x nfsv3 COMMIT a:x q:y\n 11 0 0 0x3 0x4 0 x nfsv3 GETATTR a:x q:y\n');
  writeFileSync(join(h.paths.debugfs, 'bdi/0:52/stats'), clean.replace('b_dirty: 0', 'b_dirty: 2'));
  // the SYN of a reconnect (SYN_SENT, tx_queue 1) carries no request; ESTABLISHED's 512 bytes do
  writeFileSync(join(h.paths.proc, 'net/tcp'), '  sl  local rem st tx:rx\n   0: 0100007F:0321 0500000A:0801 01 00000200:00000000 01:0 0 0 0 0 2\n   1: 0100007F:0324 0500000A:0801 02 00000001:00000000 01:0 0 0 0 0 2\n');
  const p = await pendingWrites(m, h.paths);
  assert.equal(p.known, true);
  assert.deepEqual(p.known && p.sockets, [{ addr: '10.0.0.5', port: 2049, bytes: 512 }]);
  assert.deepEqual(p.known && p.items.map((i) => i.replace(/ on rpc client.*?:/, ':')), [
    '2 RPC task(s): WRITE, COMMIT',
    `page cache: 2 dirty inodes with 0 kB shown, and the exact page counts cannot be refreshed (${h.paths.proc}/sys/vm/stat_refresh: ENOENT)`,
    '512 bytes not yet acknowledged by 10.0.0.5 in 1 TCP socket(s): the kernel would retransmit them',
  ]);
  // Dirty inodes with 0 kB (brick's own probe leaves its inode listed ~30 s): the host's exact
  // counts decide. 0 dirty + 0 writeback pages anywhere: metadata only, nothing can be sent.
  writeFileSync(join(clnt, '3/tasks'), '');
  writeFileSync(join(h.paths.proc, 'net/tcp'), '  sl  local rem st tx:rx\n');
  mkdirSync(join(h.paths.proc, 'sys/vm'), { recursive: true });
  writeFileSync(join(h.paths.proc, 'sys/vm/stat_refresh'), '');
  writeFileSync(join(h.paths.proc, 'vmstat'), 'nr_free_pages 1000\nnr_dirty 0\nnr_writeback 0\nnr_writeback_temp 0\n');
  assert.deepEqual(await pendingWrites(m, h.paths), { known: true, items: [] }, 'dirty inodes with no page dirty or under writeback on the host: nothing pending');
  assert.equal(readFileSync(join(h.paths.proc, 'sys/vm/stat_refresh'), 'utf8'), '1\n', 'the per-CPU deltas were folded before reading');
  writeFileSync(join(h.paths.proc, 'vmstat'), 'nr_dirty 3\nnr_writeback 1\nnr_writeback_temp 0\n');
  assert.deepEqual(await pendingWrites(m, h.paths), {
    known: true,
    items: ['page cache: 2 dirty inodes with 0 kB shown (per-CPU batched), and 3 dirty + 1 writeback pages on this host (exact): cannot show none is the pool\'s'],
  });
  // pages shown on the pool's bdi: pending, whatever the host's counts
  writeFileSync(join(h.paths.proc, 'vmstat'), 'nr_dirty 0\nnr_writeback 0\n');
  writeFileSync(join(h.paths.debugfs, 'bdi/0:52/stats'), clean.replace('BdiReclaimable: 0', 'BdiReclaimable: 8'));
  assert.deepEqual(await pendingWrites(m, h.paths), { known: true, items: ['page cache: 8 kB dirty, 0 kB under writeback, 0 dirty inodes'] });
  const other = await pendingWrites({ ...m, fstype: 'ocfs2' }, h.paths);
  assert.equal(other.known, false);
});

test('gatherer: FUSE pending writes from the bdi; fusectl\'s waiting count (RELEASEs of killed holders) is not used', async () => {
  const h = fakeHost();
  const m = parseMountinfo(MOUNTINFO)[2];
  mkdirSync(join(h.paths.sys, 'fs/fuse/connections/53'), { recursive: true });
  writeFileSync(join(h.paths.sys, 'fs/fuse/connections/53/waiting'), '2\n');
  assert.equal((await pendingWrites(m, h.paths)).known, false, 'no bdi stats: unknown');
  mkdirSync(join(h.paths.debugfs, 'bdi/0:53'), { recursive: true });
  writeFileSync(join(h.paths.debugfs, 'bdi/0:53/stats'), 'BdiWriteback: 0 kB\nBdiReclaimable: 0 kB\nb_dirty: 0\nb_io: 0\nb_more_io: 0\n');
  assert.deepEqual(await pendingWrites(m, h.paths), { known: true, items: [] });
  writeFileSync(join(h.paths.debugfs, 'bdi/0:53/stats'), 'BdiWriteback: 4 kB\nBdiReclaimable: 0 kB\nb_dirty: 0\nb_io: 0\nb_more_io: 0\n');
  assert.deepEqual(await pendingWrites(m, h.paths), { known: true, items: ['page cache: 0 kB dirty, 4 kB under writeback, 0 dirty inodes'] });
});

test('kill step: SIGKILL only the same process (start time checked); ESRCH is fine, EPERM is a failure', () => {
  const h = fakeHost();
  h.addProc(300, {});
  h.addProc(301, {});
  h.addProc(302, {});
  const sent: number[] = [];
  const errs = killHolders(
    [holder(300), holder(301, { start: '5' }), holder(302), holder(303)],
    (pid) => {
      sent.push(pid);
      if (pid === 302) throw Object.assign(new Error('denied'), { code: 'EPERM' });
    },
    h.paths.proc,
  );
  assert.deepEqual(sent, [300, 302], '301 is another process now; 303 is gone');
  assert.deepEqual(errs, [{ pid: 302, comm: 'qemu-kvm', error: 'EPERM' }]);
});

test('markers and destroy: one durable marker per VM; virsh/xl argv, never a shell', () => {
  const dir = scratchDir('brick-killvms-marker-');
  const k = { pid: 7, start: '1', comm: 'qemu-kvm', how: ['fd 3'], vm: { name: 'i-2-10-VM', uuid: 'u-1' }, killedAtMs: 100, goneAtMs: 350 };
  const { file, text } = killMarkerFile(dir, markerOf('/mnt/pool', k, '2026-01-01T00:00:00.000Z'));
  assert.equal(file, join(dir, `killed-vm-u-1-${Date.parse('2026-01-01T00:00:00.000Z')}.json`));
  assert.deepEqual(readdirSync(dir), [], 'nothing written by this thread: the fencer posts it to its marker writer');
  const m = JSON.parse(text);
  assert.deepEqual([m.pool, m.vm.name, m.vm.uuid, m.gone_after_s], ['/mnt/pool', 'i-2-10-VM', 'u-1', 0.25]);
  assert.deepEqual(destroyArgv({ kind: 'libvirt', bin: '/usr/bin/virsh', uri: 'qemu:///system' }, k), ['/usr/bin/virsh', ['-c', 'qemu:///system', 'destroy', '--', 'u-1']]);
  assert.deepEqual(destroyArgv({ kind: 'xl', bin: '/usr/sbin/xl' }, { ...k, vm: { domid: 7 } }), ['/usr/sbin/xl', ['destroy', '7']]);
  assert.equal(destroyArgv({ kind: 'none' }, k), undefined);
});

test('config: kill-vms and kill_timeout_s; the timing rule adds kill_timeout_s (check-config names the key)', () => {
  const base = '[server]\nlisten = "127.0.0.1:8898"\npassword = "x"\n[fencer]\naction = "kill-vms"\n';
  const problems = (t: string) => parseConfigText(t).problems.join('\n');
  const ok = parseConfigText(base + 'fence_after_s = 21\nwatchdog_timeout_s = 20\n');
  assert.deepEqual(ok.problems, []);
  assert.equal(ok.config?.fencer.kill_timeout_s, 10);
  // 30 + 10 + 20 + 5 = 65 ≥ 60
  assert.match(problems(base), /fencer.fence_after_s: fence_after_s \+ kill_timeout_s \+ watchdog_timeout_s \+ 5 s slack = 65 s/);
  // the same timings are fine with reboot: 30 + 20 + 5 = 55
  assert.equal(problems(base.replace('kill-vms', 'reboot')), '');
  // −ε, =, +ε around the window (24.9 + 10 + 20 + 5 = 59.9 < 60; 25 → 60 is not below)
  assert.equal(problems(base + 'fence_after_s = 24.9\nwatchdog_timeout_s = 20\n'), '');
  assert.match(problems(base + 'fence_after_s = 25\nwatchdog_timeout_s = 20\n'), /= 60 s must be below/);
  assert.match(problems(base + 'fence_after_s = 25.1\nwatchdog_timeout_s = 20\n'), /must be below/);
  assert.match(problems(base + 'fence_after_s = 20\nkill_timeout_s = 0\n'), /kill_timeout_s/);
});

test('controller: a pool configured as a symlink is recorded by the mount of its RESOLVED path; its holders are found and killed there', async () => {
  const h = fakeHost();
  // /srv/pools/a is a symlink to /mnt/pool (0:52): under the configured path mountinfo only has "/" (254:1)
  h.addProc(400, { fds: { '3': ['/mnt/pool/a.img', 52] } });
  mkdirSync(join(h.paths.debugfs, 'bdi'), { recursive: true });
  const killedPids: number[] = [];
  const warns: string[] = [];
  const quiet = () => {};
  const log = { info: quiet, debug: quiet, error: quiet, fatal: quiet, warn: (_o: unknown, m: string) => warns.push(m) } as unknown as Logger;
  const kvOf = (resolved?: string) =>
    new KillVms({
      pools: [{ path: '/srv/pools/a', resolved }], killTimeoutMs: 10_000, markerDir: h.root, writeFile: (_f, _t, done) => done(null), vm: { kind: 'none' }, destroyTimeoutMs: 1000,
      run: async () => ({ code: 0, stdout: '', stderr: '' }) as never, log, now: () => performance.now(),
      kill: (pid) => killedPids.push(pid), paths: h.paths,
    });
  const stDev = String((0 << 8) | 52); // st_dev of 0:52
  const settle = () => new Promise((r) => setTimeout(r, 50));
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 100 && !cond(); i++) await settle();
  };
  // as configured only (the old behaviour): the path's mount is "/", not the probed device: nothing recorded
  const old = kvOf(undefined);
  old.verified('/srv/pools/a', stDev);
  await until(() => warns.length > 0);
  assert.equal(old.snapshot('/srv/pools/a')?.mount, null);
  assert.match(warns.join('\n'), /does not match the device its probe saw/);
  // resolved: the NFS mount is recorded, and an expiry kills the holder under it
  const kv = kvOf('/mnt/pool');
  kv.verified('/srv/pools/a', stDev);
  await until(() => Boolean(kv.snapshot('/srv/pools/a')?.mount));
  assert.deepEqual(kv.snapshot('/srv/pools/a')?.mount, { dev: '0:52', fstype: 'nfs', mount_point: '/mnt/pool' });
  let t = 1000;
  let r = kv.tick([{ path: '/srv/pools/a', fence: true, lastOkMs: 0 }], t);
  assert.equal(r.reset, undefined);
  for (let i = 0; i < 20 && !killedPids.length; i++) {
    await settle();
    r = kv.tick([{ path: '/srv/pools/a', fence: true, lastOkMs: 0 }], (t += 100));
  }
  assert.deepEqual(killedPids, [400]);
});

// The previous fencer's state file as inheritMounts sees it: pool /srv/a (resolved /mnt/pool) recorded on 0:52.
const mrec = { dev: '0:52', fstype: 'nfs', mount_point: '/mnt/pool' };
const mprev = (o: Partial<PreviousMounts> = {}): PreviousMounts => ({ pid: 100, boot_id: 'boot-1', written_at_ms: 990_000, pools: [{ path: '/srv/a', kill_vms: { mount: mrec } }], ...o });
// pid: this process's (inheritMounts is given the daemon's start-up context, which carries it).
const mctx = { pid: 200, bootId: 'boot-1' as string | undefined, bootWallMs: 500_000 };
const mpools = [{ path: '/srv/a', resolved: '/mnt/pool', recorded: false }];
const taken = (prev: PreviousMounts, c = mctx, pools = mpools, mounts = parseMountinfo(MOUNTINFO)) => inheritMounts(prev, c, pools, mounts).map((t) => `${t.path} ${t.mount.dev} ${t.mount.mountPoint}`);

test('inheritMounts: a record is taken only for a guarded, unrecorded pool whose resolved path is still on the recorded device and mount point', () => {
  assert.deepEqual(taken(mprev()), ['/srv/a 0:52 /mnt/pool']);
  assert.deepEqual(taken(mprev({ pools: [{ path: '/srv/a', kill_vms: { mount: { ...mrec, dev: '0:99' } } }] })), [], 'remounted: another device');
  assert.deepEqual(taken(mprev({ pools: [{ path: '/srv/a', kill_vms: { mount: { ...mrec, mount_point: '/mnt' } } }] })), [], 'another mount point');
  assert.deepEqual(taken(mprev({ pools: [{ path: '/srv/a', kill_vms: { mount: null } }] })), [], 'never recorded');
  assert.deepEqual(taken(mprev({ pools: [{ path: '/srv/a' }] })), [], 'no kill_vms (another action)');
  assert.deepEqual(taken(mprev(), mctx, [{ ...mpools[0], recorded: true }]), [], 'recorded already by this fencer');
  assert.deepEqual(taken(mprev(), mctx, [{ path: '/srv/b', resolved: '/mnt/pool', recorded: false }]), [], 'a pool no longer guarded');
  assert.deepEqual(taken(mprev(), mctx, mpools, parseMountinfo(MOUNTINFO.split('\n').slice(0, 1).join('\n'))), [], 'unmounted: the path is on /');
});

test('inheritMounts: a record of this boot is taken whatever pid wrote it; the boot is judged by boot id, the wall clock only for a record without one', () => {
  const rec = ['/srv/a 0:52 /mnt/pool'];
  // The crashed fencer's pid came round to this start (pid_max 32768 wraps within hours): its record is as good as any.
  assert.deepEqual(taken(mprev({ pid: mctx.pid })), rec, 'our own pid');
  // Same boot id, written "before the boot" by the wall clock: the clock was stepped forward since (NTP at boot, an admin's date).
  assert.deepEqual(taken(mprev({ written_at_ms: mctx.bootWallMs - 3_600_000 })), rec, 'this boot, the wall clock stepped forward since the write');
  // Another boot id, written "after the boot" by the wall clock (stepped back, or not yet stepped when it wrote): not this boot's.
  assert.deepEqual(taken(mprev({ boot_id: 'boot-0' })), [], 'another boot');
  // No boot id in the record (an older fencer), or ours unreadable: by the wall clock against the boot, at −ε, =, +ε.
  for (const o of [{ boot_id: null }, {}]) {
    const c = 'boot_id' in o ? mctx : { ...mctx, bootId: undefined };
    assert.deepEqual(taken(mprev({ ...o, written_at_ms: mctx.bootWallMs - 1 }), c), [], 'written 1 ms before the boot');
    assert.deepEqual(taken(mprev({ ...o, written_at_ms: mctx.bootWallMs }), c), rec, 'written at the boot');
    assert.deepEqual(taken(mprev({ ...o, written_at_ms: mctx.bootWallMs + 1 }), c), rec, 'written 1 ms after the boot');
  }
});

test('controller: without the previous fencer\'s mount record an expiry of a used pool resets the host at once; with it, kill-vms kills the holders instead', async () => {
  const h = fakeHost();
  h.addProc(400, { fds: { '3': ['/mnt/pool/a.img', 52] } });
  mkdirSync(join(h.paths.debugfs, 'bdi'), { recursive: true });
  const killedPids: number[] = [];
  const quiet = () => {};
  const log = { info: quiet, debug: quiet, error: quiet, fatal: quiet, warn: quiet } as unknown as Logger;
  const kv = () =>
    new KillVms({
      pools: [{ path: '/srv/a', resolved: '/mnt/pool' }], killTimeoutMs: 10_000, markerDir: h.root, writeFile: (_f, _t, done) => done(null), vm: { kind: 'none' }, destroyTimeoutMs: 1000,
      run: async () => ({ code: 0, stdout: '', stderr: '' }) as never, log, now: () => performance.now(),
      kill: (pid) => killedPids.push(pid), paths: h.paths,
    });
  const expire = [{ path: '/srv/a', fence: true, lastOkMs: 0 }];
  // A record the previous fencer (crashed, its pid come round to us) wrote in this boot, after a wall-clock step forward.
  const prev = mprev({ pid: process.pid, written_at_ms: mctx.bootWallMs - 3_600_000 });
  const lost = kv(); // the record dropped (as a drop rule did for these two)
  assert.match(lost.tick(expire, 1000).reset?.reason ?? '', /no record of the pool's mount/, 'no record: the host is reset');
  const kept = kv();
  kept.inherit(prev, mctx);
  assert.deepEqual(kept.snapshot('/srv/a')?.mount, mrec);
  let t = 1000;
  for (let i = 0; i < 40 && !killedPids.length; i++) {
    assert.equal(kept.tick(expire, t).reset, undefined, 'the record kept: no reset');
    await new Promise((r) => setTimeout(r, 50));
    t += 100;
  }
  assert.deepEqual(killedPids, [400], 'the holder is killed instead');
});

test('destroy: every killed VM\'s domain is destroyed at once, the whole phase bounded by one deadline (N hung virsh/xl take one deadline, not N)', async () => {
  const vm = (pid: number, name: string) => ({ pid, start: String(pid), comm: 'qemu-kvm', how: ['fd 3'], vm: { name, uuid: `u-${pid}` }, killedAtMs: 0 });
  const killed = [vm(1, 'i-2-1-VM'), vm(2, 'i-2-2-VM'), { pid: 3, start: '3', comm: 'dd', how: ['fd 1'], killedAtMs: 0 }, vm(4, 'i-2-4-VM')];
  const virsh = { kind: 'libvirt' as const, bin: '/usr/bin/virsh' };
  // A libvirtd that never answers, and virsh children the kernel holds past their SIGKILL: run() never settles.
  const started: string[] = [];
  const hung: Runner = (cmd, args) => {
    started.push(args[args.length - 1]);
    return new Promise(() => {});
  };
  const all = destroyDomains(virsh, killed, hung, 50);
  assert.deepEqual(started, ['u-1', 'u-2', 'u-4'], 'every destroy starts at once (the dd is no VM: nothing to destroy)');
  const rs = await all;
  assert.deepEqual(rs.map((r) => [r.vm, r.ok]), [['i-2-1-VM', false], ['i-2-2-VM', false], ['i-2-4-VM', false]]);
  assert.match(rs[0].message, /no answer within 50 ms/);
  // Answers as libvirt gives them: destroyed; already gone (the QEMU was SIGKILLed) counts as done; a real failure does not.
  const answers: Record<string, { code: number; stderr?: string }> = {
    'u-1': { code: 0 },
    'u-2': { code: 1, stderr: 'error: Failed to destroy domain u-2\nerror: Requested operation is not valid: domain is not running\n' },
    'u-4': { code: 1, stderr: 'error: failed to connect to the hypervisor\n' },
  };
  const answering = recordingRunner((c) => answers[c.args[c.args.length - 1]]);
  assert.deepEqual(
    (await destroyDomains(virsh, killed, answering, 1000)).map((r) => [r.vm, r.ok]),
    [['i-2-1-VM', true], ['i-2-2-VM', true], ['i-2-4-VM', false]],
  );
});

test('controller: destroys that hang (libvirtd stuck) hold neither the spare nor the fence of the next VM started on the fenced pool; they all start at once', async () => {
  const h = fakeHost();
  const qemu = (pid: number) => ({ fds: { '3': [`/mnt/pool/${pid}.img`, 52] as [string, number] }, cmdline: ['/usr/bin/qemu-system-x86_64', '-name', `guest=vm${pid}`, '-uuid', `u-${pid}`, ''].join('\0') });
  for (const pid of [500, 501, 502]) h.addProc(pid, qemu(pid));
  // Nothing pending: an idle RPC client to the pool's server and a clean bdi.
  const clnt = join(h.paths.debugfs, 'sunrpc/rpc_clnt/3');
  mkdirSync(clnt, { recursive: true });
  mkdirSync(join(h.paths.debugfs, 'sunrpc/rpc_xprt/3'), { recursive: true });
  writeFileSync(join(h.paths.debugfs, 'sunrpc/rpc_xprt/3/info'), 'netid: tcp\naddr: 10.0.0.5\nport: 2049\nstate: 0x1b\n');
  symlinkSync('../../rpc_xprt/3', join(clnt, 'xprt'));
  writeFileSync(join(clnt, 'tasks'), '');
  mkdirSync(join(h.paths.debugfs, 'bdi/0:52'), { recursive: true });
  writeFileSync(join(h.paths.debugfs, 'bdi/0:52/stats'), 'BdiWriteback: 0 kB\nBdiReclaimable: 0 kB\nb_dirty: 0\nb_io: 0\nb_more_io: 0\n');
  const killedPids: number[] = [];
  const destroys: string[] = [];
  const quiet = () => {};
  const log = { info: quiet, debug: quiet, error: quiet, fatal: quiet, warn: quiet } as unknown as Logger;
  const kv = new KillVms({
    pools: [{ path: '/mnt/pool' }], killTimeoutMs: 10_000, markerDir: h.root, writeFile: (_f, _t, done) => done(null),
    vm: { kind: 'libvirt', bin: '/usr/bin/virsh' }, destroyTimeoutMs: 200,
    // virsh destroy against a libvirtd that never answers
    run: ((_cmd: string, args: string[]) => (destroys.push(args[args.length - 1]), new Promise(() => {}))) as unknown as Runner,
    log, now: () => performance.now(),
    kill: (pid) => {
      killedPids.push(pid);
      rmSync(join(h.paths.proc, String(pid)), { recursive: true, force: true }); // SIGKILL: gone
    },
    paths: h.paths,
  });
  const settle = () => new Promise((r) => setTimeout(r, 20));
  kv.verified('/mnt/pool', String(52));
  for (let i = 0; i < 100 && !kv.snapshot('/mnt/pool')?.mount; i++) await settle();
  let t = 1000;
  const tick = () => kv.tick([{ path: '/mnt/pool', fence: true, lastOkMs: 0 }], (t += 10));
  for (let i = 0; i < 200 && kv.snapshot('/mnt/pool')?.phase !== 'fenced'; i++) {
    assert.equal(tick().reset, undefined);
    await settle();
  }
  assert.equal(kv.snapshot('/mnt/pool')?.phase, 'fenced');
  assert.deepEqual(killedPids.sort(), [500, 501, 502]);
  assert.deepEqual(destroys.sort(), ['u-500', 'u-501', 'u-502'], 'the three destroys started together, none waiting for another');
  // A VM started on the fenced pool while the destroys still hang: killed all the same, no reset.
  h.addProc(503, qemu(503));
  for (let i = 0; i < 200 && !killedPids.includes(503); i++) {
    assert.equal(tick().reset, undefined);
    await settle();
  }
  assert.ok(killedPids.includes(503), 'the new holder was killed while the destroys hang');
});
