// The agent's write of the runtime pools file (src/fencer/runtime-pools-writer.ts) with a scripted
// runner and mocked timers: the write deadline at −ε, =, +ε (answered once, by the deadline, a late
// end reported); a call while a write that outlived its call is still under way waits for it and
// then reads, or answers NOT_READY (nothing changed) when it does not end; what each outcome's
// fault says (writeFault: nothing changed / may or may not / replaced but not known durable; never
// a success). Real children on a hung FUSE directory: test/host/serve-hung-write.test.ts.
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import {
  RuntimePoolsWriter, writeFault, RUNTIME_POOLS_SETTLE_WAIT_MS, RUNTIME_POOLS_WRITE_DEADLINE_MS, type WriteOutcome,
} from '../../src/fencer/runtime-pools-writer.js';
import { parseRuntimePools, type RuntimePoolEntry } from '../../src/fencer/runtime-pools.js';
import { recordingRunner, type RecordedCall, type RunResult } from '../../src/shared/run.js';
import { BrickError } from '../../src/shared/errors.js';

const TOOLS = { dd: '/usr/bin/dd', mv: '/usr/bin/mv', sync: '/usr/bin/sync' };
const FILE = '/var/lib/brick/runtime-pools.json';
const POOLS: RuntimePoolEntry[] = [{ path: '/nfs/a', heartbeat: 'ovm', fence_when: 'in-use', added_at: '2026-11-30T19:00:00.000Z', added_by: 'heartbeat_add_pool' }];
const D = RUNTIME_POOLS_WRITE_DEADLINE_MS;

async function settle(): Promise<void> {
  for (let i = 0; i < 30; i++) await Promise.resolve();
}

/** A runner whose every call waits until the test answers it. */
function heldRunner() {
  const pending: Array<{ call: RecordedCall; answer: (r: Partial<RunResult>) => void; fail: (e: Error) => void }> = [];
  const run = recordingRunner((call) => new Promise<Partial<RunResult>>((resolve, reject) => pending.push({ call, answer: resolve, fail: reject })));
  const next = async (r: Partial<RunResult> = {}) => {
    await settle();
    const p = pending.shift();
    assert.ok(p, 'a child is running');
    p.answer(r);
    await settle();
    return p.call;
  };
  const failNext = async (e: Error) => {
    await settle();
    const p = pending.shift();
    assert.ok(p, 'a child is running');
    p.fail(e);
    await settle();
    return p.call;
  };
  return { run, pending, next, failNext };
}

function timers(t: { after: (fn: () => void) => void }) {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  const clock = { ms: 0 };
  const tick = async (ms: number) => {
    clock.ms += ms;
    mock.timers.tick(ms);
    await settle();
  };
  const writer = () => new RuntimePoolsWriter({ tools: async () => TOOLS, mkdir: async () => undefined, sweep: async () => [], now: () => clock.ms });
  return { clock, tick, writer };
}

test('the write: dd of the file\'s text to a temp file beside it, mv over it, sync of the directory; "written" once all three exited 0', async (t) => {
  const { writer } = timers(t);
  const h = heldRunner();
  const w = writer();
  const outcomes: WriteOutcome[] = [];
  void w.write(h.run, FILE, POOLS, D).then((o) => outcomes.push(o));
  const dd = await h.next();
  assert.equal(dd.cmd, TOOLS.dd);
  assert.match(dd.args[0], /^of=\/var\/lib\/brick\/\.runtime-pools\.json\.\d+\.tmp$/);
  assert.deepEqual(parseRuntimePools(String(dd.opts.input)), { ok: true, pools: POOLS });
  assert.deepEqual((await h.next()).args.slice(0, 4), ['-f', '-T', '--', dd.args[0].slice(3)]);
  assert.deepEqual((await h.next()).args, ['--', '/var/lib/brick']);
  assert.deepEqual(outcomes, ['written']);
  assert.equal(w.busy(FILE), false);
});

test(`write deadline ${D} ms: written at −ε is "written"; no answer at = is "timeout" then, once; an end at +ε is reported late`, async (t) => {
  const { tick, writer } = timers(t);
  // −ε
  {
    const h = heldRunner();
    const outcomes: WriteOutcome[] = [];
    void writer().write(h.run, FILE, POOLS, D).then((o) => outcomes.push(o));
    await h.next();
    await h.next();
    await tick(D - 1);
    assert.deepEqual(outcomes, []);
    await h.next();
    assert.deepEqual(outcomes, ['written']);
    await tick(10);
    assert.deepEqual(outcomes, ['written'], 'once');
  }
  // = and +ε
  {
    const h = heldRunner();
    const w = writer();
    const outcomes: WriteOutcome[] = [];
    const late: unknown[] = [];
    void w.write(h.run, FILE, POOLS, D, (o) => late.push(o)).then((o) => outcomes.push(o));
    await h.next();
    await tick(D - 1);
    assert.deepEqual(outcomes, []);
    await tick(1);
    assert.deepEqual(outcomes, ['timeout']);
    assert.equal(w.busy(FILE), true, 'the write goes on');
    await tick(1);
    await h.next();
    await h.next();
    assert.deepEqual(outcomes, ['timeout'], 'resolved once');
    assert.deepEqual(late, ['written']);
    assert.equal(w.busy(FILE), false);
  }
});

test('a call while a write that outlived its call is under way: waits for its end, or answers NOT_READY at the wait\'s end (nothing read, nothing written)', async (t) => {
  const { tick, writer } = timers(t);
  const h = heldRunner();
  const w = writer();
  void w.write(h.run, FILE, POOLS, D);
  await settle();
  await tick(D);
  // It ends within the wait: the next call goes on.
  let ok = false;
  void w.settled(FILE).then(() => (ok = true));
  await tick(RUNTIME_POOLS_SETTLE_WAIT_MS - 1);
  await h.next();
  await h.next();
  await h.next();
  assert.equal(ok, true);
  // It does not end (dd stuck in the kernel): NOT_READY at the wait's end, never before.
  void w.write(h.run, FILE, POOLS, D);
  await settle();
  await tick(D);
  const got: unknown[] = [];
  void w.settled(FILE).then(() => got.push('settled'), (e: unknown) => got.push(e));
  await tick(RUNTIME_POOLS_SETTLE_WAIT_MS - 1);
  assert.deepEqual(got, []);
  await tick(1);
  assert.equal(got.length, 1);
  const e = got[0] as unknown;
  assert.ok(e instanceof BrickError && e.fault === 'NOT_READY', String(e));
  assert.match(e.message, /earlier write of the runtime pools file .*runtime-pools\.json has not finished after 7 s .*nothing changed/);
  assert.equal(h.run.calls.filter((c) => c.cmd === TOOLS.dd).length, 2, 'no child started for the call that waited');
  // No write under way: at once.
  await h.failNext(new BrickError('TIMEOUT', 'dd: no answer within 10000 ms; killed'));
  let now = false;
  void w.settled(FILE).then(() => (now = true));
  await settle();
  assert.equal(now, true);
});

test('each step\'s failure: which outcome it is (did the rename happen?)', async (t) => {
  const { writer } = timers(t);
  const cases: Array<{ answers: Array<Partial<RunResult> | Error>; want: WriteOutcome }> = [
    { answers: [{ code: 1, stderr: 'dd: error writing: No space left on device\n' }], want: { step: 'write', error: 'write failed (exit 1): dd: error writing: No space left on device', exited: true } },
    { answers: [new BrickError('COMMAND_FAILED', 'spawn EAGAIN')], want: { step: 'write', error: 'spawn EAGAIN', exited: false } },
    { answers: [{}, { code: 1, stderr: 'mv: cannot move: Read-only file system\n' }], want: { step: 'rename', error: 'rename failed (exit 1): mv: cannot move: Read-only file system', exited: true } },
    { answers: [{}, new BrickError('TIMEOUT', 'mv: no answer within 10000 ms; killed')], want: { step: 'rename', error: 'mv: no answer within 10000 ms; killed', exited: false } },
    { answers: [{}, {}, { code: 1, stderr: 'sync: error syncing: Input/output error\n' }], want: { step: 'fsync of the directory', error: 'fsync of the directory failed (exit 1): sync: error syncing: Input/output error', exited: true } },
  ];
  for (const c of cases) {
    const h = heldRunner();
    const outcomes: WriteOutcome[] = [];
    void writer().write(h.run, FILE, POOLS, D).then((o) => outcomes.push(o));
    for (const a of c.answers) await (a instanceof Error ? h.failNext(a) : h.next(a));
    assert.deepEqual(outcomes, [c.want]);
    assert.equal(h.pending.length, 0, 'no step after a failed one');
  }
  // The directory cannot be made, a tool is missing: before the write, nothing changed.
  const noDir = new RuntimePoolsWriter({ tools: async () => TOOLS, mkdir: async () => Promise.reject(new Error('EACCES: permission denied')), sweep: async () => [] });
  const h = heldRunner();
  assert.deepEqual(await noDir.write(h.run, FILE, POOLS, D), { step: 'write', error: 'EACCES: permission denied', exited: true });
  assert.equal(h.run.calls.length, 0);
});

test('writeFault: written is no fault; every other outcome says truthfully what is known, never that it changed unless it did', () => {
  const f = (o: WriteOutcome) => writeFault(FILE, o, D, 'pool /nfs/b added', '/nfs/b may or may not be added');
  assert.equal(f('written'), undefined);
  const timeout = f('timeout')!;
  assert.equal(timeout.fault, 'TIMEOUT');
  assert.equal(timeout.message, `the runtime pools file ${FILE} could not be written within 5 s (no answer: a hung disk?); /nfs/b may or may not be added: the write goes on in the background; heartbeat_status or a later call tells`);
  for (const o of [{ step: 'write', error: 'write failed (exit 1): ENOSPC', exited: true }, { step: 'write', error: 'spawn EAGAIN', exited: false }, { step: 'rename', error: 'rename failed (exit 1): EROFS', exited: true }] as const) {
    const e = f(o)!;
    assert.equal(e.fault, 'COMMAND_FAILED');
    assert.match(e.message, /could not be written \(.*\); nothing changed$/);
  }
  const killedMv = f({ step: 'rename', error: 'mv: no answer within 10000 ms; killed', exited: false })!;
  assert.equal(killedMv.fault, 'COMMAND_FAILED');
  assert.match(killedMv.message, /\/nfs\/b may or may not be added: heartbeat_status or a later call tells$/);
  const sync = f({ step: 'fsync of the directory', error: 'fsync of the directory failed (exit 1): EIO', exited: true })!;
  assert.equal(sync.fault, 'COMMAND_FAILED');
  assert.match(sync.message, /was replaced \(pool \/nfs\/b added; the fencer applies it on its next tick\), but its fsync of the directory failed .*may not survive a reset/);
});
