// The marker writer (src/fencer/marker.ts) with a scripted runner and mocked timers: the fence
// marker's deadline at −ε, =, +ε (the write resolves by MARKER_DEADLINE_MS whatever its children
// do, exactly once); a failed spawn answers at once; lease writes to one file run one at a time and
// the latest text wins (an older one never lands after a newer one); flush is bounded; a stuck file
// never holds another. Real children on a hung FUSE directory: test/host/fencer-marker.test.ts.
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { MARKER_DEADLINE_MS, markerPath, markerWriteSteps, startMarkerWriter, type FenceMarker, type MarkerOutcome, type MarkerTools } from '../../src/fencer/marker.js';
import { recordingRunner, type RecordedCall, type RunResult } from '../../src/shared/run.js';
import { BrickError } from '../../src/shared/errors.js';

const TOOLS: MarkerTools = { dd: '/usr/bin/dd', mv: '/usr/bin/mv', sync: '/usr/bin/sync' };
const M: FenceMarker = { at: '2026-11-29T15:00:00.000Z', pool: '/nfs/a', reason: 'test', action: 'reboot', host_id: 'h', last_ok_age_s: 30 };

/** Let every queued promise callback run (the runner's answers, the writer's chain). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** A runner whose every call waits until the test answers it. */
function heldRunner() {
  const pending: Array<{ call: RecordedCall; answer: (r: Partial<RunResult>) => void; fail: (e: Error) => void }> = [];
  const run = recordingRunner(
    (call) =>
      new Promise<Partial<RunResult>>((resolve, reject) => {
        pending.push({ call, answer: resolve, fail: reject });
      }),
  );
  /** Answer the oldest unanswered call (exit 0 by default). */
  const next = async (r: Partial<RunResult> = {}) => {
    await settle();
    const p = pending.shift();
    assert.ok(p, 'a child is running');
    p.answer(r);
    await settle();
    return p.call;
  };
  return { run, pending, next };
}

test('the steps: dd conv=fsync to a temp file beside it, mv -f -T over it, sync -- the directory (argv, no shell)', () => {
  const steps = markerWriteSteps(TOOLS, '/var/lib/brick/fencer-lease.json', 'text\n');
  const tmp = `/var/lib/brick/.fencer-lease.json.${process.pid}.tmp`;
  assert.deepEqual(
    steps.map((s) => [s.cmd, ...s.args]),
    [
      ['/usr/bin/dd', `of=${tmp}`, 'bs=4096', 'conv=fsync', 'status=none'],
      ['/usr/bin/mv', '-f', '-T', '--', tmp, '/var/lib/brick/fencer-lease.json'],
      ['/usr/bin/sync', '--', '/var/lib/brick'],
    ],
  );
  assert.equal(steps[0].input, 'text\n');
});

test(`fence marker deadline ${MARKER_DEADLINE_MS} ms: written at −ε resolves "written"; at = and +ε "timeout" at the deadline, once; a late write is reported`, async (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  let clock = 0;
  const now = () => clock;
  const tick = async (ms: number) => {
    clock += ms;
    mock.timers.tick(ms);
    await settle();
  };

  // −ε: the last child exits 1 ms before the deadline.
  {
    const h = heldRunner();
    const w = startMarkerWriter(TOOLS, h.run, { now });
    const outcomes: MarkerOutcome[] = [];
    void w.write('/var/lib/brick', M).then((o) => outcomes.push(o));
    assert.equal((await h.next()).args[0].startsWith('of=/var/lib/brick/.fence-marker.json.'), true);
    await h.next();
    await tick(MARKER_DEADLINE_MS - 1);
    assert.deepEqual(outcomes, [], 'nothing before the last step');
    await h.next(); // sync
    assert.deepEqual(outcomes, ['written']);
    assert.equal(h.run.calls[0].opts.input, JSON.stringify(M) + '\n');
    await tick(10);
    assert.deepEqual(outcomes, ['written'], 'once');
  }
  // =: no answer yet when the deadline comes; resolved then, not a millisecond before.
  {
    clock = 0;
    const h = heldRunner();
    const w = startMarkerWriter(TOOLS, h.run, { now });
    const outcomes: MarkerOutcome[] = [];
    void w.write('/var/lib/brick', M).then((o) => outcomes.push(o));
    await tick(MARKER_DEADLINE_MS - 1);
    assert.deepEqual(outcomes, []);
    await tick(1);
    assert.deepEqual(outcomes, ['timeout']);
  }
  // +ε: the chain ends 1 ms after the deadline: "timeout" at the deadline, then the late write said once.
  {
    clock = 0;
    const h = heldRunner();
    const late: Array<[unknown, number]> = [];
    const w = startMarkerWriter(TOOLS, h.run, { now });
    const outcomes: MarkerOutcome[] = [];
    void w.write('/var/lib/brick', M, MARKER_DEADLINE_MS, (o, afterMs) => late.push([o, afterMs])).then((o) => outcomes.push(o));
    await h.next();
    await h.next();
    await tick(MARKER_DEADLINE_MS);
    assert.deepEqual(outcomes, ['timeout']);
    await tick(1);
    await h.next();
    assert.deepEqual(outcomes, ['timeout'], 'resolved once');
    assert.deepEqual(late, [['written', 1]]);
  }
});

test('a marker that cannot be written answers at once (a failed spawn, a failing step), never at the deadline', async (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  // The spawn itself fails (EAGAIN): run rejects.
  const failing = recordingRunner(() => {
    throw new BrickError('COMMAND_FAILED', 'spawn EAGAIN');
  });
  const outcomes: MarkerOutcome[] = [];
  void startMarkerWriter(TOOLS, failing).write('/m', M).then((o) => outcomes.push(o));
  await settle();
  assert.deepEqual(outcomes, [{ error: 'spawn EAGAIN' }]);
  // dd exits 1 (ENOSPC): the error names the step; mv and sync never run.
  const full = recordingRunner((c) => (c.cmd === TOOLS.dd ? { code: 1, stderr: 'dd: error writing: No space left on device\n' } : {}));
  const o2: MarkerOutcome[] = [];
  void startMarkerWriter(TOOLS, full).write('/m', M).then((o) => o2.push(o));
  await settle();
  assert.deepEqual(o2, [{ error: 'write failed (exit 1): dd: error writing: No space left on device' }]);
  assert.deepEqual(full.calls.map((c) => c.cmd), [TOOLS.dd]);
});

test('lease writes: one at a time per file, the latest text wins (an older one never lands after a newer), done for each that ran', async () => {
  const h = heldRunner();
  const w = startMarkerWriter(TOOLS, h.run);
  const file = '/m/fencer-lease.json';
  const done: string[] = [];
  w.post(file, 'A', (e) => done.push(`A:${e}`));
  await settle();
  assert.equal(h.pending.length, 1, 'A started');
  w.post(file, 'B', (e) => done.push(`B:${e}`));
  w.post(file, 'C', (e) => done.push(`C:${e}`));
  await settle();
  assert.equal(h.pending.length, 1, 'B and C wait for A: never two writes of one file at once');
  await h.next();
  await h.next();
  await h.next(); // A done
  assert.deepEqual(done, ['A:null']);
  await h.next();
  await h.next();
  await h.next(); // C done
  assert.deepEqual(done, ['A:null', 'C:null'], 'B was replaced by C before it started');
  const writes = h.run.calls.filter((c) => c.cmd === TOOLS.dd).map((c) => c.opts.input);
  assert.deepEqual(writes, ['A', 'C']);
  const renames = h.run.calls.filter((c) => c.cmd === TOOLS.mv).map((c) => c.args.at(-1));
  assert.deepEqual(renames, [file, file]);
  assert.equal(h.pending.length, 0);
});

test('flush: true once drained, false at its deadline while a child hangs; a hung file never holds another file', async (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  const h = heldRunner();
  const w = startMarkerWriter(TOOLS, h.run);
  assert.equal(await w.flush(1000), true, 'nothing posted: at once');
  w.post('/m/fencer-lease.json', 'A');
  await settle();
  let flushed: boolean | undefined;
  void w.flush(1000).then((v) => (flushed = v));
  mock.timers.tick(999);
  await settle();
  assert.equal(flushed, undefined);
  mock.timers.tick(1);
  await settle();
  assert.equal(flushed, false, 'the lease write hangs: flush gives up at its deadline');
  // The lease's dd still hangs; the marker (another file) goes ahead and is written.
  const outcomes: MarkerOutcome[] = [];
  void w.write('/m', M).then((o) => outcomes.push(o));
  await settle();
  assert.equal(h.pending.length, 2, "the marker's dd runs beside the lease's hung one");
  const answerNewest = async () => {
    const p = h.pending.pop()!;
    p.answer({});
    await settle();
    return [p.call.cmd, p.call.args.at(-1)];
  };
  assert.deepEqual(await answerNewest(), [TOOLS.dd, 'status=none']);
  assert.deepEqual(await answerNewest(), [TOOLS.mv, markerPath('/m')]);
  assert.deepEqual(await answerNewest(), [TOOLS.sync, '/m']);
  assert.deepEqual(outcomes, ['written']);
  // The lease's hung child exits at last: its chain ends, a new flush is immediate.
  let flushed2: boolean | undefined;
  void w.flush(1000).then((v) => (flushed2 = v));
  await h.next();
  await h.next();
  await h.next();
  assert.equal(flushed2, true);
});
