import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgeWatchdog, prepareWatchdog, readWatchdogInfo, sysfsDirFor } from '../../src/fencer/watchdog-policy.js';
import { recordingRunner } from '../../src/shared/run.js';

function fakeSysfs(attrs: Record<string, string>) {
  const files = new Map(Object.entries(attrs));
  const read = (p: string) => {
    const v = files.get(p);
    if (v === undefined) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    return v + '\n';
  };
  return { files, read };
}

test('the legacy /dev/watchdog is watchdog0 in sysfs; /dev/watchdogN is watchdogN', () => {
  assert.equal(sysfsDirFor('/dev/watchdog'), '/sys/class/watchdog/watchdog0');
  assert.equal(sysfsDirFor('/dev/watchdog1', '/s'), '/s/watchdog1');
});

test('softdog, an unreadable timeout and nowayout off are warned about; a matching timeout needs no change', () => {
  const { read } = fakeSysfs({ '/s/watchdog0/identity': 'Software Watchdog', '/s/watchdog0/timeout': '20', '/s/watchdog0/nowayout': '0' });
  const info = readWatchdogInfo('/dev/watchdog', '/s', read);
  assert.deepEqual(info, { sysfs: '/s/watchdog0', identity: 'Software Watchdog', timeoutS: 20, nowayout: false });
  const j = judgeWatchdog('/dev/watchdog', info, 20);
  assert.equal(j.setTimeout, false);
  assert.equal(j.warnings.length, 2);
  assert.match(j.warnings[0], /softdog/);
  assert.match(j.warnings[1], /nowayout is off/);
  assert.match(judgeWatchdog('/dev/watchdog', { sysfs: '/s/watchdog0' }, 20).warnings[0], /not readable/);
});

test('a driver left at its default timeout is set with wdctl before opening, and read back', async () => {
  const { files, read } = fakeSysfs({ '/s/watchdog0/identity': 'iTCO_wdt', '/s/watchdog0/timeout': '60', '/s/watchdog0/nowayout': '1' });
  const run = recordingRunner((c) => {
    files.set('/s/watchdog0/timeout', c.args[1]); // the driver takes it
    return {};
  });
  const warnings: string[] = [];
  const info = await prepareWatchdog('/dev/watchdog', 20, { run, sysfsRoot: '/s', read, isCharDevice: () => true, warn: (m) => warnings.push(m) });
  assert.deepEqual(run.calls.map((c) => [c.cmd, ...c.args]), [['wdctl', '--settimeout', '20', '/dev/watchdog']]);
  assert.equal(info?.timeoutS, 20);
  assert.deepEqual(warnings, []);
});

test('a device that will not take the timeout stops the fencer from starting, saying what to do', async () => {
  const { read } = fakeSysfs({ '/s/watchdog0/identity': 'Software Watchdog', '/s/watchdog0/timeout': '60', '/s/watchdog0/nowayout': '1' });
  const run = recordingRunner(() => ({ code: 1, stderr: 'wdctl: cannot set timeout for /dev/watchdog\n' }));
  await assert.rejects(
    prepareWatchdog('/dev/watchdog', 20, { run, sysfsRoot: '/s', read, isCharDevice: () => true, warn: () => {} }),
    (e: any) =>
      e.fault === 'CONFLICT' &&
      /watchdog_timeout_s = 20 but \/dev\/watchdog \(Software Watchdog\) keeps a 60 s timeout \(wdctl: cannot set timeout/.test(e.message) &&
      /soft_margin/.test(e.message),
  );
});

test('a FIFO or file stand-in (tests) is not a driver: nothing is run', async () => {
  const run = recordingRunner();
  assert.equal(await prepareWatchdog('/tmp/wd-fifo', 20, { run, isCharDevice: () => false, warn: () => {} }), undefined);
  assert.equal(run.calls.length, 0);
});
