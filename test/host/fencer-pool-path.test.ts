// Issue 17 item 5 against the REAL fencer program, short timings P/T/F/W = 0.5/2/5/4 s: a pool path
// configured as a symlink to the mount is resolved at start (a `realpath -e` child with a deadline),
// so the device/mount check sees the mounted filesystem: the pool arms, and a frozen mount fences
// within fence_after_s + 1 s of the freeze. (Before: `stat -c %d` on the symlink saw the root
// filesystem, the pool never armed, and a frozen pool never fenced.) And the start-up window
// (fencing.md rule 9, fencer.startup_window_s): a pool guarding VMs that never verifies fails
// start-up (exit 4, watchdog disarmed) rather than being petted over forever.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { BindfsPool, FaultFsPool, FencerRun, SHORT, faultfsMissing, fuseMissing, removeRoot, sleep, tempRoot, waitFor } from './fencer-harness.js';

const missing = fuseMissing();
const fmissing = faultfsMissing();
const skip = missing && process.env.CI !== 'true' ? missing : false;
const fskip = (missing || fmissing) && process.env.CI !== 'true' ? (missing || fmissing) : false;
const BOUND_MS = (SHORT.fence_after_s + 1) * 1000;

const cleanups: Array<() => void | Promise<unknown>> = [];
before(() => {
  if (missing && process.env.CI === 'true') throw new Error(`fencer host tests need FUSE: ${missing}`);
  if (fmissing && process.env.CI === 'true') throw new Error(`fencer host tests need faultfs: ${fmissing}`);
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('item 5: a pool configured as a symlink to a bindfs mount arms; frozen, it fences within fence_after_s + 1 s', { skip }, async () => {
  const root = tempRoot('fencer-symlink');
  const pool = new BindfsPool(root);
  const link = join(root, 'pool-link');
  symlinkSync(pool.mnt, link);
  const f = new FencerRun(root, [{ path: link, fence_when: 'always' }], SHORT);
  cleanups.push(() => removeRoot(root), () => pool.cleanup(), () => f.kill());
  await pool.mount();
  f.start();
  await f.armed(15_000).catch((e) => assert.fail(`the symlinked pool never armed: ${(e as Error).message}\n${f.log()}`));
  await f.logged(new RegExp(`pool ${link} resolves to ${pool.mnt}`), 'the resolved path is logged');
  const st = f.state();
  assert.equal(st.pools[0].path, link, 'the pool keeps its configured name');
  assert.ok(st.pools[0].heartbeat_file.startsWith(pool.mnt + '/'), `heartbeat written through the resolved path: ${st.pools[0].heartbeat_file}`);
  await sleep(1000);
  assert.equal(f.sysrqText(), '', 'no fence while the pool is healthy');
  const ageAtFreezeMs = f.lastOkAgeMs();
  const t0 = performance.now();
  pool.freeze();
  await waitFor("sysrq 'b'", () => f.sysrqText().includes('b'), BOUND_MS + 5000, 10);
  const took = performance.now() - t0;
  assert.ok(took <= BOUND_MS, `fenced ${Math.round(took)} ms after the freeze; bound ${BOUND_MS} ms`);
  assert.ok(took >= SHORT.fence_after_s * 1000 - ageAtFreezeMs - 300, `fenced too early: ${Math.round(took)} ms after the freeze, the last verified heartbeat ${Math.round(ageAtFreezeMs)} ms old then`);
  await f.logged(new RegExp(`FENCING this host: pool ${link} `));
  await f.stop();
});

test('item 5: start-up window: a pool guarding VMs that never verifies (faultfs EIO from the start) fails start-up at startup_window_s: exit 4, said loudly, in the state, watchdog disarmed, no fence', { skip: fskip }, async () => {
  const root = tempRoot('fencer-window');
  const pool = new FaultFsPool(root);
  const WINDOW_S = 3;
  const f = new FencerRun(root, [{ path: pool.mnt, fence_when: 'always' }], SHORT, { startup_window_s: WINDOW_S });
  cleanups.push(() => removeRoot(root), () => pool.cleanup(), () => f.kill());
  await pool.mount();
  pool.setMode('EIO');
  const t0 = performance.now();
  f.start();
  const code = await Promise.race([f.exit!, sleep(WINDOW_S * 1000 + 10_000).then(() => 'still running' as const)]);
  const took = performance.now() - t0;
  assert.equal(code, 4, `the fencer must fail start-up (exit 4), got ${code}:\n${f.log()}`);
  assert.ok(took >= WINDOW_S * 1000, `exited ${Math.round(took)} ms after spawn, before the window (${WINDOW_S} s)`);
  await f.logged(/"level":"?(50|error)"?.*has NOT verified within startup_window_s \(3 s\).*guards VMs, so start-up fails/);
  await f.logged(/start-up FAILED/);
  const st = f.state();
  assert.equal(st.pools[0].startup_overdue, true);
  assert.equal(st.pools[0].armed, false);
  assert.equal(st.watchdog.petting, false);
  assert.equal(f.sysrqText(), '', 'a pool never verified is never fenced on');
  assert.ok(f.watchdogBytes().includes('V'), 'the watchdog is disarmed (magic close): not petted forever, not left to reset the host');
});

test('two [[fencer.pool]] entries for one directory (a path and a symlink to it) are refused at start: exit 1 naming both, no fence', async () => {
  // Before: both were probed, racing on the one heartbeat file ("mv: cannot stat .hb-ID.new",
  // "read-back mismatch"), and the healthy local pool expired: FENCING within 40 s (P/T/F 1/2/6).
  const root = tempRoot('fencer-dup');
  cleanups.push(() => removeRoot(root));
  const dir = join(root, 'pool');
  mkdirSync(dir);
  const link = join(root, 'pool-link');
  symlinkSync(dir, link);
  const f = new FencerRun(root, [{ path: dir, fence_when: 'always', require_mount: false }, { path: link, fence_when: 'always', require_mount: false }], SHORT);
  cleanups.push(() => f.kill());
  f.start();
  const code = await Promise.race([f.exit!, sleep(20_000).then(() => 'still running')]);
  assert.equal(code, 1, f.log());
  await f.logged(new RegExp(`brick: fencer\\.pool\\[1\\]\\.path: "${link}" is the directory of fencer\\.pool\\[0\\]\\.path "${dir}" \\(both resolve to ${dir}\\): list it once`));
  assert.equal(f.sysrqText(), '', 'no fence');
  // Two heartbeat formats on one directory are two files: allowed.
  const g = new FencerRun(join(root, 'formats'), [{ path: dir, fence_when: 'always', require_mount: false }, { path: link, heartbeat: 'kvm', fence_when: 'always', require_mount: false }], SHORT);
  cleanups.push(() => g.kill());
  g.start();
  await g.armed(15_000);
  assert.equal(await g.stop(), 0);
});
