// brick doctor on real mounts (root): a watchdog node on a tmpfs mounted nodev really cannot be
// opened (EACCES) and doctor says so; the same node on a tmpfs without nodev is not refused for it;
// marker_dir on tmpfs and hooks_dir on a noexec tmpfs are found from the real mount table, and
// state_dir on a disk (not in memory) is a warning.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatherFacts, judge } from '../../src/cli/doctor.js';
import { parseConfigText } from '../../src/config/load.js';
import { FaultFsPool, faultfsMissing } from './fencer-harness.js';
import { prerequisite } from '../fixtures/network-ctx.js';

const root = mkdtempSync(join(tmpdir(), 'brick-doctor-mounts-'));
const cleanups: Array<() => void> = [];
after(() => {
  for (const c of cleanups.reverse()) c();
  rmSync(root, { recursive: true, force: true });
});

function tmpfs(name: string, opts: string): string {
  const dir = join(root, name);
  mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=1m,${opts}`, 'tmpfs', dir]);
  cleanups.push(() => execFileSync('umount', ['-l', dir], { stdio: 'ignore' }));
  return dir;
}

test('doctor on real mounts: a watchdog node on a nodev mount fails (and opening it really is EACCES); marker_dir on tmpfs fails; hooks_dir on noexec warns', async () => {
  const nodev = tmpfs('nodev', 'nodev');
  const dev = tmpfs('dev', 'mode=755');
  const noexec = tmpfs('noexec', 'noexec');
  // Stand-ins with /dev/null's numbers (1:3): doctor only stats the node; the test opens it.
  for (const d of [nodev, dev]) execFileSync('mknod', [join(d, 'watchdog'), 'c', '1', '3']);
  mkdirSync(join(noexec, 'hooks'));
  assert.throws(() => openSync(join(nodev, 'watchdog'), 'w'), { code: 'EACCES' });
  closeSync(openSync(join(dev, 'watchdog'), 'w'));

  const config = (wd: string, stateDir = join(dev, 'state')) =>
    parseConfigText(
      `[fencer]\naction = "log-only"\nvm_query = "none"\nwatchdog_device = "${wd}"\nstate_dir = "${stateDir}"\nmarker_dir = "${join(dev, 'marker')}"\n` +
        `[domain]\nhooks_dir = "${join(noexec, 'hooks')}"\n`,
    ).config!;
  const bad = judge(config(join(nodev, 'watchdog')), await gatherFacts(config(join(nodev, 'watchdog'))));
  const wd = bad.filter((l) => l.check === 'watchdog');
  assert.deepEqual(wd.map((l) => l.level), ['fail'], JSON.stringify(wd));
  assert.match(wd[0].what, new RegExp(`is on tmpfs ${nodev}, mounted nodev: opening it fails \\(EACCES\\)`));

  const good = judge(config(join(dev, 'watchdog')), await gatherFacts(config(join(dev, 'watchdog'))));
  const wd2 = good.filter((l) => l.check === 'watchdog');
  assert.ok(wd2.length > 0 && wd2.every((l) => !/nodev/.test(l.what)), JSON.stringify(wd2));

  const line = (key: string) => good.find((l) => l.check.startsWith(key + ' '))!;
  assert.equal(line('marker_dir').level, 'fail');
  assert.match(line('marker_dir').what, new RegExp(`on tmpfs tmpfs \\(${dev}\\) \\(to be made.*in memory`));
  assert.equal(line('hooks_dir').level, 'warn');
  assert.match(line('hooks_dir').what, /mounted noexec/);
  // state_dir in memory (tmpfs) is what the fencer's synchronous write per tick needs: ok.
  assert.equal(line('state_dir').level, 'ok', JSON.stringify(line('state_dir')));
  // On a disk it is a warning (a disk that hangs would stop the fencer's loop): judged from the real
  // mount table, so the expectation follows what this directory really is on (tmpfs on some hosts).
  const onDisk = join(root, 'state');
  mkdirSync(onDisk, { recursive: true });
  const fstype = execFileSync('findmnt', ['-n', '-o', 'FSTYPE', '-T', onDisk], { encoding: 'utf8' }).trim();
  const disk = judge(config(join(dev, 'watchdog'), onDisk), await gatherFacts(config(join(dev, 'watchdog'), onDisk)));
  const st = disk.find((l) => l.check.startsWith('state_dir '))!;
  if (fstype === 'tmpfs' || fstype === 'ramfs') assert.equal(st.level, 'ok', JSON.stringify(st));
  else {
    assert.equal(st.level, 'warn', JSON.stringify(st));
    assert.match(st.what, /not in memory: the fencer's loop writes its state there itself on every tick/);
  }
});

test('doctor with fencer.runtime_pools_file on a disk that hangs (faultfs): it looks at that directory through a child with a deadline, answers, and warns', { skip: prerequisite(!faultfsMissing(), faultfsMissing() ?? '') }, async (t) => {
  // A look from doctor's own process (statSync) would hang it for good, as the fencer's start did
  // with the first version of this check (CI caught it): never done.
  const fs = new FaultFsPool(root, 'rt');
  t.after(() => fs.cleanup());
  await fs.mount();
  const rtDir = join(fs.mnt, 'lib');
  mkdirSync(rtDir);
  const c = parseConfigText(
    `[fencer]\naction = "log-only"\nvm_query = "none"\nwatchdog_device = ""\nstate_dir = "${join(root, 'hung-state')}"\nmarker_dir = "${join(root, 'hung-marker')}"\nruntime_pools_file = "${join(rtDir, 'pools.json')}"\n`,
  ).config!;
  fs.setMode('hang');
  await new Promise((r) => setTimeout(r, 1500)); // past the kernel's FUSE attribute cache (1 s): a stat now asks the daemon
  const t0 = performance.now();
  const lines = judge(c, await gatherFacts(c));
  const took = performance.now() - t0;
  assert.ok(took < 15_000, `doctor answered after ${Math.round(took)} ms`);
  const rt = lines.filter((l) => l.check === `runtime_pools_dir ${rtDir}`);
  assert.deepEqual(rt.map((l) => l.level), ['warn'], JSON.stringify(rt));
  assert.match(rt[0].what, /stat gave no answer .*; the fencer goes on with the pools it last read from the file, and heartbeat_add_pool fails$/);
  fs.setMode('ok');
  const again = judge(c, await gatherFacts(c)).filter((l) => l.check === `runtime_pools_dir ${rtDir}`);
  assert.deepEqual(again.map((l) => l.level), ['ok'], JSON.stringify(again));
});
