// The runtime pools file on a disk that hangs (a failing local disk under /var/lib/brick, or a
// runtime_pools_file an admin put on a hard NFS mount): faultfs in "hang" mode holds every operation
// on it in the kernel. The fencer reads that file on its tick; a read held in the kernel on the main
// thread would freeze the loop (no pet, no state: the hardware watchdog resets the host, a false
// fence with the pools' storage healthy). The fencer must go on ticking and petting, keep the last
// good set of runtime pools, say what is wrong (naming the file, not on every tick), and pick up the
// file again once the disk answers. No duration is asserted: every wait is a generous bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FaultFsPool, FencerRun, faultfsMissing, fuseMissing, fuseSuite, removeRoot, sleep, tempRoot, waitFor, type FencerTimings } from './fencer-harness.js';
import { runtimePoolsText, type RuntimePoolEntry } from '../../src/fencer/runtime-pools.js';

const { skip, cleanups } = fuseSuite(fuseMissing() ?? faultfsMissing());
const T: FencerTimings = { probe_interval_s: 0.5, probe_timeout_s: 4, fence_after_s: 12, watchdog_timeout_s: 4 };
/** Far above anything a free loop needs on a loaded 2-core machine, far below "never". */
const ARM_MS = 30_000;
/** How long the disk hangs: well past the fencer's read deadline, its FUSE attribute cache and several watchdog timeouts. */
const HANG_MS = 25_000;

function tmpfs(dir: string): string {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir]);
  cleanups.push(() => execFileSync('umount', ['-l', dir], { stdio: 'ignore' }));
  return dir;
}

const entry = (path: string): RuntimePoolEntry => ({ path, heartbeat: 'ovm', fence_when: 'always', added_at: '2026-11-30T00:00:00.000Z', added_by: 'test' });

test('runtime_pools_file on a disk that hangs: the fencer goes on ticking and petting, keeps the last good runtime pools, says so, and reads the file again once the disk answers', { skip, timeout: 240_000 }, async () => {
  const root = tempRoot('fencer-rt-hung');
  cleanups.push(() => removeRoot(root));
  const rtFs = new FaultFsPool(root, 'rt');
  // Released (mode ok) before the fencer is killed and the mount goes: nothing stays held.
  cleanups.push(() => rtFs.cleanup());
  await rtFs.mount();
  const cfgPool = join(root, 'config-pool');
  mkdirSync(cfgPool);
  const a = tmpfs(join(root, 'mnt-a'));
  const b = tmpfs(join(root, 'mnt-b'));
  const rtFile = join(rtFs.mnt, 'runtime-pools.json');
  writeFileSync(rtFile, runtimePoolsText([entry(a)]));
  // log-only: whatever happens, nothing is reset; the watchdog is a plain file the test reads.
  const f = new FencerRun(root, [{ path: cfgPool, require_mount: false, fence_when: 'always' }], T, { action: 'log-only' });
  cleanups.push(() => f.kill());
  f.setConfig('runtime_pools_file', rtFile);
  f.start();
  const poolOf = (p: string) => f.state()?.pools.find((x: any) => x.path === p);
  await waitFor('the config pool and the runtime pool armed', () => poolOf(cfgPool)?.state === 'healthy' && poolOf(a)?.state === 'healthy', ARM_MS).catch((e: Error) => {
    throw new Error(`${e.message}\n${f.log()}`);
  });

  // ---- the disk holding the runtime pools file hangs; the pools' storage stays healthy ----
  rtFs.setMode('hang');
  const hungAt = Date.now();
  const lines0 = f.lines.length;
  const pets0 = f.watchdogSize();
  await sleep(HANG_MS);
  const s = f.state();
  assert.ok(s, 'a state file');
  const stateAge = Date.now() - s.written_at_ms;
  assert.ok(s.written_at_ms > hungAt + HANG_MS / 2 && stateAge < 5000, `the fencer must go on writing its state while the runtime pools file hangs; last written ${stateAge} ms ago, ${Date.now() - hungAt} ms after the hang began\n${f.log()}`);
  assert.ok(f.watchdogSize() > pets0 + 10, `the watchdog must go on being petted: ${f.watchdogSize() - pets0} pets in ${HANG_MS} ms`);
  assert.equal(s.watchdog.petting, true);
  assert.equal(s.fenced, null);
  assert.equal(f.sysrqText(), '', 'no fence');
  assert.equal(poolOf(cfgPool)?.state, 'healthy');
  assert.equal(poolOf(a)?.state, 'healthy', 'the last good runtime pool stays guarded');
  assert.equal(poolOf(a)?.source, 'runtime');
  assert.match(String(s.runtime_pools?.error), /no answer|could not be read/, `the state says the file could not be read: ${JSON.stringify(s.runtime_pools)}`);
  const said = f.lines.slice(lines0).filter((l) => l.includes(rtFile) && /"level":(50|"error")/.test(l));
  assert.ok(said.length >= 1, `an error naming ${rtFile}\n${f.lines.slice(lines0).join('\n')}`);
  assert.ok(said.length <= 3, `said again periodically, not on every tick: ${said.length} lines in ${HANG_MS} ms\n${said.join('\n')}`);

  // ---- the disk answers again: a change made meanwhile is picked up ----
  rtFs.setMode('ok');
  writeFileSync(rtFile, runtimePoolsText([entry(a), entry(b)]));
  await waitFor('the new runtime pool guarded', () => poolOf(b)?.source === 'runtime', ARM_MS).catch((e: Error) => {
    throw new Error(`${e.message}\n${f.log()}`);
  });
  await waitFor('the file usable again in the state', () => f.state()?.runtime_pools?.error === null, ARM_MS);
  await waitFor('the new runtime pool armed', () => poolOf(b)?.state === 'healthy', ARM_MS);
  await f.logged(/runtime pools file .* is usable again/);
  assert.equal(poolOf(a)?.state, 'healthy');
  assert.equal(f.sysrqText(), '', 'no fence');
  assert.equal(await f.stop(), 0);
});

test('runtime_pools_file on a disk that hangs before the fencer starts: start-up goes on without it (its read has a deadline), the config pool arms, the state says why', { skip, timeout: 240_000 }, async () => {
  const root = tempRoot('fencer-rt-hung-start');
  cleanups.push(() => removeRoot(root));
  const rtFs = new FaultFsPool(root, 'rt');
  cleanups.push(() => rtFs.cleanup());
  await rtFs.mount();
  const cfgPool = join(root, 'config-pool');
  mkdirSync(cfgPool);
  const a = tmpfs(join(root, 'mnt-a'));
  const rtFile = join(rtFs.mnt, 'runtime-pools.json');
  writeFileSync(rtFile, runtimePoolsText([entry(a)]));
  const f = new FencerRun(root, [{ path: cfgPool, require_mount: false, fence_when: 'always' }], T, { action: 'log-only' });
  cleanups.push(() => f.kill());
  f.setConfig('runtime_pools_file', rtFile);
  rtFs.setMode('hang');
  f.start();
  await f.armed(ARM_MS + 20_000).catch((e: Error) => {
    throw new Error(`${e.message}\n${f.log()}`);
  });
  const s = f.state();
  assert.match(String(s.runtime_pools?.error), /no answer/, JSON.stringify(s.runtime_pools));
  assert.deepEqual(s.pools.map((p: any) => p.path), [cfgPool], 'no runtime pool is known yet');
  await f.logged(new RegExp(`runtime pools file ${rtFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is unusable \\(no answer`));
  const pets = f.watchdogSize();
  await waitFor('the watchdog petted', () => f.watchdogSize() > pets + 4, ARM_MS);
  // The disk answers: the runtime pool in the file is picked up and arms.
  rtFs.setMode('ok');
  await waitFor('the runtime pool armed once the disk answers', () => f.state()?.pools.find((p: any) => p.path === a)?.state === 'healthy', ARM_MS).catch((e: Error) => {
    throw new Error(`${e.message}\n${f.log()}`);
  });
  assert.equal(f.state().runtime_pools.error, null);
  assert.equal(f.sysrqText(), '', 'no fence');
  assert.equal(await f.stop(), 0);
});
