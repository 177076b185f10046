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
