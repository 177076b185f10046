// The fencer's clock (src/fencer/clock.ts): CLOCK_MONOTONIC plus the time the host was suspended,
// from readings of /proc/uptime (CLOCK_BOOTTIME). Pure parts with readings of the test's own, then
// the real clocks of this machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fencerClock, parseUptimeMs, SuspendMeter, bootMonoMs } from '../../src/fencer/clock.js';

test('parseUptimeMs reads /proc/uptime\'s first field in ms, and nothing else', () => {
  assert.equal(parseUptimeMs('57695.46 45654.56\n'), 57_695_460);
  assert.equal(parseUptimeMs('12.5 3.00\n'), 12_500);
  assert.equal(parseUptimeMs('7 1\n'), 7000);
  for (const bad of ['', '\n', 'x 1\n', '-1.00 2.00\n', '1.00', '1e3 2\n']) assert.equal(parseUptimeMs(bad), undefined, JSON.stringify(bad));
  const real = parseUptimeMs(readFileSync('/proc/uptime', 'latin1'));
  assert.ok(real !== undefined && real > 0, 'this machine\'s /proc/uptime parses');
});

test('SuspendMeter: only a growth of CLOCK_BOOTTIME over CLOCK_MONOTONIC counts; it never decreases; an unreadable uptime changes nothing', () => {
  const m = new SuspendMeter();
  // boottime = monotonic + 1 000 000 (a time namespace's offset, or suspends before the fencer): the base.
  assert.equal(m.sample(1_001_000, 1000), 0);
  assert.equal(m.offsetMs, 1_000_000);
  assert.equal(m.sample(1_002_000, 2000), 0, 'both clocks ran');
  assert.equal(m.sample(1_002_990, 3000), 0, '/proc/uptime 10 ms behind: not negative');
  assert.equal(m.sample(1_013_000, 3000), 10_000, 'boottime ran 10 s while monotonic stood: a 10 s suspend');
  assert.equal(m.sample(undefined, 4000), 10_000);
  assert.equal(m.sample(Number.NaN, 4000), 10_000);
  assert.equal(m.sample(1_013_990, 4000), 10_000, 'a reading 10 ms low does not take it back');
  assert.equal(m.sample(1_020_000, 5000), 15_000, 'another 5 s suspend adds up');
  assert.equal(m.totalMs, 15_000);
  assert.equal(m.offsetMs, 1_015_000, 'the offset as of the last reading: the first one\'s plus the suspends');
  assert.equal(new SuspendMeter().offsetMs, undefined);
});

test('fencerClock: runs on the monotonic clock, takes a suspend in at a sample (not before), never goes back', () => {
  let mono = 500;
  let boot: number | undefined = 900_500;
  const c = fencerClock(() => boot, () => mono);
  assert.equal(c.now(), 0);
  mono = 1500;
  boot = 901_500;
  assert.equal(c.now(), 1000);
  assert.equal(c.sample(), 0);
  // Suspended 20 s: monotonic stood at 1 500 meanwhile, then ran 100 ms after resume.
  boot = 921_600;
  mono = 1600;
  assert.equal(c.now(), 1100, 'between samples: the monotonic clock alone');
  assert.equal(c.bootOffset(), 900_000, 'before the sample that sees the suspend');
  assert.equal(c.sample(), 20_000);
  assert.equal(c.now(), 21_100);
  assert.equal(c.bootOffset(), 920_000);
  boot = undefined;
  mono = 1700;
  assert.equal(c.sample(), 20_000, 'an unreadable /proc/uptime keeps what was learnt');
  assert.equal(c.now(), 21_200);
});

test('fencerClock on this machine: not suspended, it keeps to CLOCK_MONOTONIC within /proc/uptime\'s steps', async () => {
  const c = fencerClock();
  const m0 = bootMonoMs();
  const f0 = c.now();
  await new Promise((r) => setTimeout(r, 300));
  const s = c.sample();
  const df = c.now() - f0;
  const dm = bootMonoMs() - m0;
  assert.ok(s >= 0 && s <= 10, `suspended ${s} ms on a machine that did not sleep (10 ms steps at most)`);
  assert.ok(Math.abs(df - dm) <= 11, `fencer clock ran ${df} ms, CLOCK_MONOTONIC ${dm} ms`);
});
