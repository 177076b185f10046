// The fencer's read of the runtime pools file (runtime-pools.ts): a child with a deadline, one at a
// time, never the fencer's own thread (the file is on disk that can hang), and the pure judgement of
// what a read gave against what was read before. test/host/fencer-runtime-pools-hung.test.ts drives
// the real fencer with the file on a disk that hangs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KERNEL_FSTYPES, MISSING_CONTENT, judgeRuntimeRead, poolMountRefusal, readRuntimePoolsChild, runtimePoolsText, type RuntimePoolEntry } from '../../src/fencer/runtime-pools.js';
import { parseMountinfo } from '../../src/fencer/kill-vms/proc-parse.js';
import { run as realRun, type Runner, type RunResult } from '../../src/shared/run.js';
import { BrickError } from '../../src/shared/errors.js';
import { findOnHost } from '../../src/shared/host-tools.js';
import { scratchDir } from '../fixtures/scratch.js';

const entry = (path: string): RuntimePoolEntry => ({ path, heartbeat: 'ovm', fence_when: 'in-use', added_at: '2026-11-30T12:00:00.000Z', added_by: 'heartbeat_add_pool' });
const A = runtimePoolsText([entry('/mnt/a')]);
const AB = runtimePoolsText([entry('/mnt/a'), entry('/mnt/b')]);
const BAD = '{"version":1,"pools":[{"path":';

test('judging a read: the same usable content is nothing new; other content, a missing file, bad content and no answer each say what to apply or keep', () => {
  const fresh = { content: undefined, error: null };
  assert.deepEqual(judgeRuntimeRead(fresh, { kind: 'text', text: A }), { kind: 'ok', content: A, changed: true, pools: [entry('/mnt/a')] });
  assert.deepEqual(judgeRuntimeRead(fresh, { kind: 'missing' }), { kind: 'ok', content: MISSING_CONTENT, changed: true, pools: [] });
  assert.deepEqual(judgeRuntimeRead({ content: A, error: null }, { kind: 'text', text: A }), { kind: 'same' });
  assert.deepEqual(judgeRuntimeRead({ content: MISSING_CONTENT, error: null }, { kind: 'missing' }), { kind: 'same' });
  assert.deepEqual(judgeRuntimeRead({ content: A, error: null }, { kind: 'text', text: AB }), { kind: 'ok', content: AB, changed: true, pools: [entry('/mnt/a'), entry('/mnt/b')] });
  assert.deepEqual(judgeRuntimeRead({ content: A, error: null }, { kind: 'missing' }), { kind: 'ok', content: MISSING_CONTENT, changed: true, pools: [] }, 'a removed file is no runtime pool');
  // A file that does not parse: unusable, its content remembered; the same bad content again is nothing new.
  const bad = judgeRuntimeRead({ content: A, error: null }, { kind: 'text', text: BAD });
  assert.equal(bad.kind, 'unusable');
  assert.ok(bad.kind === 'unusable' && bad.changed && bad.content === BAD && /not JSON/.test(bad.error) && !bad.noAnswer);
  assert.deepEqual(judgeRuntimeRead({ content: BAD, error: bad.kind === 'unusable' ? bad.error : '' }, { kind: 'text', text: BAD }), { kind: 'same' });
  // Fixed: usable, other content.
  assert.deepEqual(judgeRuntimeRead({ content: BAD, error: 'not JSON' }, { kind: 'text', text: AB }), { kind: 'ok', content: AB, changed: true, pools: [entry('/mnt/a'), entry('/mnt/b')] });
  // No answer (a hung disk) or an errno: unusable, the content unknown (kept), never a change of the set.
  assert.deepEqual(judgeRuntimeRead({ content: A, error: null }, { kind: 'error', error: 'no answer within 10 s (a hung disk?)', noAnswer: true }), {
    kind: 'unusable', content: undefined, changed: false, error: 'no answer within 10 s (a hung disk?)', noAnswer: true,
  });
  assert.deepEqual(judgeRuntimeRead({ content: A, error: null }, { kind: 'error', error: 'cannot read it: Permission denied' }), { kind: 'unusable', content: undefined, changed: false, error: 'cannot read it: Permission denied' });
  // The disk answers again with the content from before: usable again, not a change (what was said of it stands).
  assert.deepEqual(judgeRuntimeRead({ content: A, error: 'no answer within 10 s (a hung disk?)' }, { kind: 'text', text: A }), { kind: 'ok', content: A, changed: false, pools: [entry('/mnt/a')] });
  assert.deepEqual(judgeRuntimeRead({ content: A, error: 'no answer within 10 s (a hung disk?)' }, { kind: 'text', text: AB }).kind, 'ok');
});

const ok = (stdout: string): RunResult => ({ code: 0, stdout, stderr: '' });

test('the read is a child (dd, absolute path, if= the file), with a deadline, at most one at a time; its answers: text, missing, an errno, no answer', async () => {
  const calls: Array<{ cmd: string; args: readonly string[]; timeoutMs: number }> = [];
  const answer = (r: RunResult | Error | 'never'): Runner => (cmd, args, opts) => {
    calls.push({ cmd, args, timeoutMs: opts.timeoutMs });
    return r === 'never' ? new Promise(() => {}) : r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
  };
  assert.deepEqual(await readRuntimePoolsChild('/var/lib/brick/runtime-pools.json', '/usr/bin/dd', answer(ok(A)), 10_000), { kind: 'text', text: A });
  assert.equal(calls[0].cmd, '/usr/bin/dd');
  assert.deepEqual(calls[0].args, ['if=/var/lib/brick/runtime-pools.json', 'bs=65536', 'status=none']);
  assert.equal(calls[0].timeoutMs, 10_000);
  const enoent = { code: 1, stdout: '', stderr: "dd: failed to open '/f': No such file or directory\n" };
  assert.deepEqual(await readRuntimePoolsChild('/f', '/usr/bin/dd', answer(enoent), 1000), { kind: 'missing' });
  const eacces = { code: 1, stdout: '', stderr: "dd: failed to open '/f': Permission denied\n" };
  assert.deepEqual(await readRuntimePoolsChild('/f', '/usr/bin/dd', answer(eacces), 1000), { kind: 'error', error: "cannot read it: failed to open '/f': Permission denied" });
  const eio = { code: 1, stdout: '', stderr: "dd: error reading '/f': Input/output error\n" };
  assert.deepEqual(await readRuntimePoolsChild('/f', '/usr/bin/dd', answer(eio), 1000), { kind: 'error', error: "cannot read it: error reading '/f': Input/output error" });
  // Killed at its deadline by the runner: no answer.
  const killed = new BrickError('TIMEOUT', '/usr/bin/dd if=/f: no answer within 1000 ms; killed');
  assert.deepEqual(await readRuntimePoolsChild('/f', '/usr/bin/dd', answer(killed), 1000), { kind: 'error', error: 'no answer within 1 s (a hung disk?)', noAnswer: true });
  assert.deepEqual(await readRuntimePoolsChild('/f', '/usr/bin/dd', answer(new Error('spawn EAGAIN')), 1000), { kind: 'error', error: 'cannot read it: spawn EAGAIN' });

  // A child the kernel holds past its SIGKILL: the read answers by its own deadline, and the next read
  // joins that child instead of starting another one that would stick too.
  calls.length = 0;
  const stuck = answer('never');
  const first = await readRuntimePoolsChild('/hung/f', '/usr/bin/dd', stuck, 50);
  assert.deepEqual(first, { kind: 'error', error: 'no answer within 0.05 s (a hung disk?)', noAnswer: true });
  const second = await readRuntimePoolsChild('/hung/f', '/usr/bin/dd', stuck, 50);
  assert.deepEqual(second, first);
  assert.equal(calls.length, 1, 'one child for both reads');
});

test('with the real dd: the text of the file, a missing file, a directory', async (t) => {
  const dd = findOnHost('dd');
  if (!dd) {
    if (process.env.CI === 'true') assert.fail('dd is not installed');
    return t.skip('dd is not installed');
  }
  const dir = scratchDir('brick-rt-read-');
  const file = join(dir, 'runtime-pools.json');
  // Larger than one dd block: the whole file.
  const big = runtimePoolsText(Array.from({ length: 64 }, (_, i) => entry(`/mnt/${'p'.repeat(1500)}${i}`)));
  assert.ok(big.length > 65536);
  writeFileSync(file, big);
  assert.deepEqual(await readRuntimePoolsChild(file, dd, realRun, 10_000), { kind: 'text', text: big });
  assert.deepEqual(await readRuntimePoolsChild(join(dir, 'none.json'), dd, realRun, 10_000), { kind: 'missing' });
  const r = await readRuntimePoolsChild(dir, dd, realRun, 10_000);
  assert.equal(r.kind, 'error');
  assert.match((r as { error: string }).error, /^cannot read it: .*Is a directory/);
});

test('poolMountRefusal: a runtime pool must be a mount point whose top mount is not the kernel\'s own filesystem (proc, sysfs, cgroup2...); an NFS export stacked on an autofs mount is a pool', () => {
  const mounts = parseMountinfo(
    [
      '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
      '23 22 0:21 / /proc rw,nosuid shared:12 - proc proc rw',
      '24 22 0:22 / /sys rw,nosuid shared:2 - sysfs sysfs rw',
      '25 24 0:23 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw',
      '40 22 0:40 / /mnt/auto rw,relatime shared:20 - autofs systemd-1 rw,fd=40',
      '41 40 0:41 / /mnt/auto rw,relatime shared:21 - nfs 10.0.0.5:/export/primary rw,vers=3,hard',
      '42 22 0:42 / /mnt/pending rw,relatime shared:22 - autofs systemd-1 rw,fd=41',
      '50 22 0:50 / /mnt/primary rw,relatime shared:30 - nfs4 10.0.0.5:/export/p rw,vers=4.1,hard',
      '51 50 0:51 / /mnt/primary rw,relatime shared:31 - proc proc rw',
      '60 22 0:60 / /mnt/fuse rw shared:40 - fuse.bindfs bindfs rw',
    ].join('\n') + '\n',
  );
  assert.match(poolMountRefusal('/mnt/none', mounts) ?? '', /is not a mount point/);
  assert.match(poolMountRefusal('/proc', mounts) ?? '', /is a proc mount, one of the kernel's own filesystems/);
  assert.match(poolMountRefusal('/sys', mounts) ?? '', /is a sysfs mount/);
  assert.match(poolMountRefusal('/sys/fs/cgroup', mounts) ?? '', /is a cgroup2 mount/);
  assert.equal(poolMountRefusal('/mnt/auto', mounts), undefined, 'NFS on top of its autofs mount');
  assert.equal(poolMountRefusal('/mnt/pending', mounts), undefined, 'an automount not triggered yet is left to the probe');
  assert.match(poolMountRefusal('/mnt/primary', mounts) ?? '', /is a proc mount/, 'the mount on top decides');
  assert.equal(poolMountRefusal('/mnt/fuse', mounts), undefined);
  assert.equal(poolMountRefusal('/', mounts), undefined, 'the root filesystem is a mount point (kept: a diskless host\'s root may be the export)');
  for (const fs of ['nfs', 'nfs4', 'ext4', 'xfs', 'ocfs2', 'gfs2', 'tmpfs', 'fuse.glusterfs']) assert.equal(KERNEL_FSTYPES.has(fs), false, fs);
});
