// A state file "from the future" (written before the wall clock stepped back after the fencer
// stopped) must not read as a running fencer: a state of this boot is aged by CLOCK_MONOTONIC.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fencerNotRunning, fencerRunning, fencerWriter, loadFencerState, readFencerState, stateAgeS, stateRecord, STATE_STALE_S, type FencerState } from '../../src/fencer/state.js';
import { procStart } from '../../src/shared/process-identity.js';
import { bootMonoMs } from '../../src/fencer/clock.js';
import { bootId, leaseRecord, type Lease } from '../../src/fencer/lease.js';

const E = 1;
const state = (o: Partial<FencerState>) => ({ version: 1, pid: 1, pools: [], ...o }) as unknown as FencerState;

test('stateAgeS: a state of this boot is aged by CLOCK_MONOTONIC, whatever its wall-clock stamp says (−ε running, = running, +ε not)', { skip: bootId() ? false : 'no boot_id' }, () => {
  const now = Date.now();
  const mono = bootMonoMs() - (Date.now() - now); // CLOCK_MONOTONIC at `now`
  const S = STATE_STALE_S * 1000;
  // Written an hour "ahead": the wall clock stepped back by an hour after the fencer's last write, 60 s ago.
  const future = state({ boot_id: bootId(), written_at_ms: now + 3600_000, written_at_mono_ms: mono - 60_000 });
  assert.ok(Math.abs(stateAgeS(future, now) - 60) < 0.5, `age ${stateAgeS(future, now)}`);
  assert.equal(fencerRunning(future, now), false, 'a fencer that stopped writing 60 s ago is not running');
  for (const [d, running] of [[S - 50, true], [S + 50, false]] as const)
    assert.equal(fencerRunning(state({ boot_id: bootId(), written_at_ms: now + 3600_000, written_at_mono_ms: mono - d }), now), running, `${d} ms`);
  // Another boot, or no monotonic stamp: the wall clock, as before.
  assert.equal(stateAgeS(state({ boot_id: 'another-boot', written_at_ms: now - 7000, written_at_mono_ms: mono }), now), 7);
  assert.equal(stateAgeS(state({ written_at_ms: now - 7000 }), now), 7);
  assert.equal(fencerRunning(state({ written_at_ms: now - S - E }), now), false);
  assert.equal(fencerRunning(state({ written_at_ms: now - S }), now), true);
});

test('stateAgeS / fencerNotRunning with the clocks passed in (pure): a state of this boot is running at STATE_STALE_S −ε and =, not at +ε, by CLOCK_MONOTONIC alone', () => {
  const S = STATE_STALE_S * 1000;
  const wall = 1_000_000_000;
  const alive = { pidExists: true, pidStart: undefined };
  // Its wall-clock stamp an hour ahead, an hour behind: neither counts within the boot.
  for (const written of [wall + 3600_000, wall - 3600_000]) {
    const s = state({ boot_id: 'boot-1', written_at_ms: written, written_at_mono_ms: 7_000 });
    for (const [d, why] of [[S - E, null], [S, null], [S + E, 'its last state is 5.001 s old']] as const) {
      assert.equal(stateAgeS(s, wall, { bootId: 'boot-1', monoMs: 7_000 + d }), d / 1000);
      assert.equal(fencerNotRunning(s, wall, 'boot-1', alive, { bootId: 'boot-1', monoMs: 7_000 + d }), why, `${written} ${d}`);
    }
  }
  // A boot id that cannot be read (null): the monotonic stamp cannot be trusted; the wall clock decides.
  const s = state({ boot_id: 'boot-1', written_at_ms: wall - S, written_at_mono_ms: 0 });
  assert.equal(fencerNotRunning(s, wall, null, alive, { bootId: null, monoMs: 3600_000 }), null);
  assert.equal(fencerNotRunning(s, wall + E, null, alive, { bootId: null, monoMs: 3600_000 }), 'its last state is 5.001 s old');
});

test('fencerRunning: a state of another boot (both boot ids known) is no running fencer, however fresh its wall-clock stamp; without a boot id on either side, its age decides', () => {
  const now = Date.now();
  // The last boot's fencer wrote a second ago by a wall clock that is behind after the reboot.
  assert.equal(fencerRunning(state({ boot_id: 'boot-0', written_at_ms: now - 1000 }), now, 'boot-1'), false, 'another boot');
  assert.equal(fencerRunning(state({ boot_id: 'boot-0', written_at_ms: now + 3600_000 }), now, 'boot-1'), false, 'another boot, "from the future"');
  assert.equal(fencerRunning(state({ boot_id: 'boot-1', written_at_ms: now - 1000 }), now, 'boot-1'), true, 'this boot');
  assert.equal(fencerRunning(state({ written_at_ms: now - 1000 }), now, 'boot-1'), true, 'a state without boot id');
  assert.equal(fencerRunning(state({ boot_id: 'boot-0', written_at_ms: now - 1000 }), now, null), true, 'our boot id unreadable');
  assert.equal(fencerRunning(state({ boot_id: 'boot-0', written_at_ms: now - STATE_STALE_S * 1000 - E }), now, null), false);
});

test("readFencerState (the fencer's start-up): a pool entry it cannot read is dropped, not a TypeError that crash-loops the fencer; a runtime pool with settings not ours is no runtime pool; the rest is kept as it is", () => {
  const dir = mkdtempSync(join(tmpdir(), 'brick-state-'));
  try {
    const good = { path: '/p', state: 'late', armed: true, last_ok_age_s: 12, source: 'runtime', heartbeat: 'ovm', fence_when: 'always' };
    const odd = { path: '/q', state: 'late', armed: true, last_ok_age_s: 'x', source: 'runtime', heartbeat: 'nfs', fence_when: 'always' };
    writeFileSync(join(dir, 'fencer.json'), JSON.stringify({ version: 1, pid: 7, written_at_ms: Date.now(), pools: [null, 3, { state: 'late' }, good, odd] }));
    const s = readFencerState(dir)!;
    assert.deepEqual(s.pools, [good, { ...odd, source: undefined }]);
    // What start-up makes of it does not throw, and both armed pools are handed to inherit.
    assert.deepEqual(stateRecord(s).armed.map((p) => p.path), ['/p', '/q']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('leaseRecord: only clean === true is a clean stop, and armed entries that are no paths are dropped', () => {
  const lease = (o: Record<string, unknown>) => ({ version: 1, pid: 7, written_at_ms: Date.now(), armed: ['/p'], ...o }) as unknown as Lease;
  assert.equal(leaseRecord(lease({ clean: 'yes' })).clean, false, 'a crash must not read as a clean stop');
  assert.equal(leaseRecord(lease({ clean: 1 })).clean, false);
  assert.equal(leaseRecord(lease({ clean: true })).clean, true);
  assert.deepEqual(leaseRecord(lease({ armed: [null, '/p', 3] })).armed, [{ path: '/p', lastOkAgeS: null }]);
});

test("fencerNotRunning: the writer is its pid AND its start time: a fresh state whose pid another process drew since is no running fencer; a state without pid_start is judged by the pid alone", () => {
  // Before: liveness was signal 0 on the pid alone, so after a SIGKILL any process that drew the
  // fencer's pid made its last (fresh) state read "running" for up to STATE_STALE_S.
  const now = Date.now();
  const fresh = (o: Partial<FencerState>) => state({ written_at_ms: now - 1000, pid: 4242, ...o });
  const alive = { pidExists: true, pidStart: '700' };
  assert.equal(fencerNotRunning(fresh({ pid_start: '700' }), now, null, alive), null, 'same pid, same start time: running');
  assert.equal(
    fencerNotRunning(fresh({ pid_start: '699' }), now, null, alive),
    "its process (pid 4242) is gone: that pid is another process's now (started at another time)",
    'same pid, another start time: not running',
  );
  assert.equal(fencerNotRunning(fresh({ pid_start: '700' }), now, null, { pidExists: false, pidStart: undefined }), 'its process (pid 4242) is gone');
  // A state written by a brick before pid_start: the pid alone, as then.
  assert.equal(fencerNotRunning(fresh({}), now, null, alive), null, 'no pid_start: pid alive is running');
  assert.equal(fencerNotRunning(fresh({}), now, null, { pidExists: false, pidStart: undefined }), 'its process (pid 4242) is gone');
  // The process's start time unreadable (gone between the two looks, /proc hidden): the pid alone.
  assert.equal(fencerNotRunning(fresh({ pid_start: '699' }), now, null, { pidExists: true, pidStart: undefined }), null);
  // What is judged before the writer still decides first.
  assert.match(fencerNotRunning(fresh({ pid_start: '700', clean_stop: true }), now, null, alive) ?? '', /stopped cleanly/);
  assert.match(fencerNotRunning(fresh({ pid_start: '700', written_at_ms: now - STATE_STALE_S * 1000 - E }), now, null, alive) ?? '', /s old/);

  // Gathered from /proc: this process, named by its pid and its own start time, runs; by its pid and another start time, it does not.
  const mine = procStart(process.pid);
  assert.ok(mine, 'this process\'s start time is readable');
  assert.deepEqual(fencerWriter(fresh({ pid: process.pid })), { pidExists: true, pidStart: mine });
  assert.equal(fencerRunning(fresh({ pid: process.pid, pid_start: mine }), now, null), true);
  assert.equal(fencerRunning(fresh({ pid: process.pid, pid_start: String(Number(mine) + 1) }), now, null), false);
  assert.equal(fencerRunning(fresh({ pid: process.pid }), now, null), true, 'no pid_start');
});

test('loadFencerState: a pid_start that is no string is a problem the readers report, not a running fencer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'brick-state-'));
  try {
    const s = { version: 1, pid: 7, host_id: 'h', action: 'reboot', written_at_ms: Date.now(), watchdog: { device: '', open: false, petting: false }, fenced: null, pools: [] };
    writeFileSync(join(dir, 'fencer.json'), JSON.stringify({ ...s, pid_start: 12345 }));
    assert.deepEqual(loadFencerState(dir), { problem: 'pid_start is not a string' });
    writeFileSync(join(dir, 'fencer.json'), JSON.stringify({ ...s, pid_start: '12345' }));
    assert.equal(loadFencerState(dir).state?.pid_start, '12345');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
