// The fencer's local directories going wrong (issue 17 items 9, 10, and the state_dir half of 2):
// a fence marker directory that hangs does not hold the fence; a state file that cannot be written
// is said once, not every tick; a removed state_dir is made again; a state_dir that cannot be
// created is one clear line at start, not an internal error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MARKER_DIR_ANSWER_MS, startupDeadline } from '../../src/fencer/daemon.js';
import { BindfsPool, FencerRun, SHORT, faultfsMissing, fuseMissing, removeRoot, sleep, tempRoot, waitFor, fuseSuite, fencerWithFaultyMarkerDir } from './fencer-harness.js';

const { skip, cleanups } = fuseSuite(fuseMissing() ?? faultfsMissing());
const SHORT_TIMING = { probeIntervalMs: SHORT.probe_interval_s * 1000, probeTimeoutMs: SHORT.probe_timeout_s * 1000, fenceAfterMs: SHORT.fence_after_s * 1000 };


test('item 9: a marker directory that hangs does not hold the fence: sysrq b within fence_after_s + 1 s + the marker deadline', { skip }, async () => {
  const { pool, markerFs, f } = await fencerWithFaultyMarkerDir('fencer-marker-hang', cleanups);
  f.start();
  await f.armed();
  await sleep(500);
  markerFs.setMode('hang');
  await sleep(200);
  const t0 = performance.now();
  pool.freeze();
  await waitFor(`sysrq 'b':\n${f.log()}`, () => f.sysrqText().includes('b'), (SHORT.fence_after_s + 10) * 1000, 10);
  const took = performance.now() - t0;
  const bound = (SHORT.fence_after_s + 1) * 1000 + 500;
  assert.ok(took <= bound, `fenced ${Math.round(took)} ms after the freeze with the marker directory hung; bound ${bound} ms`);
  await f.logged(/the fence marker was not written within its deadline/);
});

test('item 10 + 2: state write errors are logged once, not every tick; a removed state_dir is made again', { skip }, async () => {
  const root = tempRoot('fencer-state-errors');
  const pool = new BindfsPool(root);
  const f = new FencerRun(root, [{ path: pool.mnt }], SHORT, { action: 'log-only' });
  cleanups.push(() => removeRoot(root), () => pool.cleanup(), () => f.kill());
  await pool.mount();
  f.start();
  await f.armed();
  // Removed (rm -rf /run/brick): the running fencer makes it again, so a crash now still leaves a state file.
  rmSync(f.stateDir, { recursive: true, force: true });
  await waitFor('fencer.json written again', () => existsSync(join(f.stateDir, 'fencer.json')), 3000);
  // Unwritable: a file where the directory was. 12+ ticks in 3 s; one error line.
  rmSync(f.stateDir, { recursive: true, force: true });
  writeFileSync(f.stateDir, 'not a directory\n');
  const from = f.lines.length;
  await sleep(3000);
  const errors = f.lines.slice(from).filter((l) => /cannot write the state file/.test(l));
  assert.equal(errors.length, 1, `state write errors logged ${errors.length} times in 3 s:\n${errors.join('\n')}`);
  rmSync(f.stateDir, { force: true });
  await waitFor('fencer.json written again', () => existsSync(join(f.stateDir, 'fencer.json')), 3000);
  // The fencer says so after the write; its line comes through a pipe, a moment after the file.
  await waitFor('"written again" in the fencer log', () => /written again/.test(f.lines.slice(from).join('\n')), 3000);
  assert.match(f.lines.slice(from).join('\n'), /written again/);
  assert.equal(await f.stop(), 0);
});

test('item 10: a state_dir that cannot be created (read-only mount) is one clear line at start, exit 1, no stack trace', { skip }, async () => {
  const root = tempRoot('fencer-state-ro');
  const ro = join(root, 'ro');
  mkdirSync(ro);
  execFileSync('mount', ['--bind', ro, ro]);
  execFileSync('mount', ['-o', 'remount,ro,bind', ro]);
  const f = new FencerRun(root, [], SHORT, { action: 'log-only', watchdog: false });
  cleanups.push(() => removeRoot(root), () => void execFileSync('umount', ['-l', ro]), () => f.kill());
  f.setConfig('state_dir', join(ro, 'run', 'brick'));
  f.start();
  const code = await Promise.race([f.exit!, sleep(20_000).then(() => 'running')]);
  assert.equal(code, 1, f.log());
  await sleep(300); // the last output after 'exit'
  await f.logged(/fencer\.state_dir .*\/ro\/run\/brick: cannot create it \(EROFS\)/);
  assert.doesNotMatch(f.log(), /internal error|^\s+at /m);
});

test('item 9: a marker directory that hangs before start: start-up ends (exit 1, naming marker_dir) within the look\'s deadline, the watchdog never opened', { skip, timeout: startupDeadline(SHORT_TIMING) + 120_000 }, async () => {
  // Before, start-up mkdir'd and read marker_dir on the main thread: held in the kernel there, not
  // even the start-up deadline's timer ran; the fencer never started, never exited, guarded nothing.
  const { markerFs, f } = await fencerWithFaultyMarkerDir('fencer-marker-hang-start', cleanups);
  markerFs.setMode('hang');
  const t0 = performance.now();
  f.start();
  const code = await Promise.race([f.exit!, sleep(startupDeadline(SHORT_TIMING) + 30_000).then(() => 'still running' as const)]);
  const took = performance.now() - t0;
  assert.equal(code, 1, `a start-up held by a hung marker_dir must end (exit 1); got ${code}:\n${f.log()}`);
  assert.ok(took >= MARKER_DIR_ANSWER_MS, `exited after ${Math.round(took)} ms, before the look's ${MARKER_DIR_ANSWER_MS} ms deadline`);
  await f.logged(new RegExp(`fencer\\.marker_dir ${markerFs.mnt}: no answer within ${MARKER_DIR_ANSWER_MS / 1000} s`));
  assert.equal(f.watchdogSize(), 0, 'nothing was written to the watchdog');
});
