// The agent's deadlines on one Node timer (src/agent-extension/deadlines.ts): a deadline never runs
// before its time on the clock it was given, runs once, never after it was cancelled, and the ones due
// run in order of their time (then of their making). The clock is the test's own where exact times
// matter (the Node timer under it is real: only "not yet" and "eventually" are asserted of it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Deadlines } from '../../src/agent-extension/deadlines.js';

/** Wait until cond() holds (polling), at most `ms`. */
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(2);
  }
}

test('at its time on the clock: not at -eps, run at = and at +eps, once', async () => {
  let clock = 1000;
  const d = new Deadlines(() => clock);
  const ran: string[] = [];
  d.after(5, () => ran.push('eq'));
  d.after(5.5, () => ran.push('plus'));
  clock = 1004.999; // the Node timer fires (and fires again) while the clock is short of 1005
  await sleep(40);
  assert.deepEqual(ran, [], 'nothing before its time');
  assert.equal(d.size, 2);
  clock = 1005;
  await until(() => ran.length === 1);
  await sleep(20);
  assert.deepEqual(ran, ['eq'], 'the one at 1005 ran; 1005.5 has not');
  clock = 1005.5 + 1e-6;
  await until(() => ran.length === 2);
  await sleep(20);
  assert.deepEqual(ran, ['eq', 'plus'], 'each ran once');
  assert.equal(d.size, 0);
});

test('a cancelled deadline never runs; cancel twice or after it ran is harmless', async () => {
  let clock = 0;
  const d = new Deadlines(() => clock);
  const ran: number[] = [];
  const a = d.after(1, () => ran.push(1));
  const b = d.after(2, () => ran.push(2));
  const c = d.after(3, () => ran.push(3));
  b.cancel();
  b.cancel();
  a.cancel();
  assert.equal(d.size, 1);
  clock = 10;
  await until(() => ran.length === 1);
  c.cancel();
  await sleep(20);
  assert.deepEqual(ran, [3]);
  assert.equal(d.size, 0);
});

test('the Node timer is left armed for a cancelled early deadline: a later one still runs, and one made earlier than it re-arms', async () => {
  const d = new Deadlines();
  const ran: string[] = [];
  const t0 = performance.now();
  d.after(60_000, () => ran.push('late')); // arms the timer a minute out
  d.after(5, () => ran.push('x')).cancel(); // armed for 5 ms, then cancelled: the timer stays armed
  const at = performance.now() + 15;
  d.after(15, () => ran.push(performance.now() >= at ? 'on time' : 'early'));
  await until(() => ran.length === 1);
  assert.deepEqual(ran, ['on time']);
  assert.ok(performance.now() - t0 < 60_000);
  assert.equal(d.size, 1, 'the minute-long one is still waiting');
});

test('many deadlines, half cancelled, in random order: exactly the others run, in order of time then of making, none early', async () => {
  let clock = 0;
  const d = new Deadlines(() => clock);
  const want: number[] = [];
  const got: number[] = [];
  const handles = [];
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const at: number[] = [];
  for (let i = 0; i < 2000; i++) {
    at.push(Math.floor(rnd() * 50)); // many equal times
    handles.push(d.after(at[i], () => got.push(i)));
  }
  for (let i = 0; i < 2000; i++) if (rnd() < 0.5) handles[i].cancel();
  else want.push(i);
  want.sort((x, y) => at[x] - at[y] || x - y);
  for (clock = 0; clock <= 50; clock += 5) {
    await until(() => got.length === want.filter((i) => at[i] <= clock).length);
    assert.ok(got.every((i) => at[i] <= clock), 'nothing ran before its time');
  }
  assert.deepEqual(got, want);
  assert.equal(d.size, 0);
});

test('a deadline made or cancelled from inside another runs or not as asked; one that throws does not stop the rest', async () => {
  let clock = 0;
  const d = new Deadlines(() => clock);
  const ran: string[] = [];
  let victim = d.after(4, () => ran.push('victim'));
  d.after(1, () => {
    ran.push('first');
    victim.cancel();
    d.after(0, () => ran.push('made inside'));
  });
  d.after(2, () => {
    throw new Error('boom');
  });
  d.after(3, () => ran.push('after the throw'));
  const errors: unknown[] = [];
  const listeners = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  process.on('uncaughtException', (e) => errors.push(e));
  try {
    clock = 10;
    await until(() => ran.length === 3);
    await sleep(20);
  } finally {
    process.removeAllListeners('uncaughtException');
    for (const l of listeners) process.on('uncaughtException', l);
  }
  assert.deepEqual(ran, ['first', 'after the throw', 'made inside']);
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]), /boom/);
  victim = d.after(0, () => ran.push('again'));
  await until(() => ran.length === 4);
});
