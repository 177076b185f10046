// A process named by its pid and its start time (src/shared/process-identity.ts): what the pending
// network change (safe-apply) and the fencer's state file use to tell their writer still runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { procStart, processFacts, recordedProcess } from '../../src/shared/process-identity.js';

test('processFacts: this process exists with its own start time; a pid that is no positive integer names no process (0 or a negative one would ask about a process group)', () => {
  const mine = procStart('self');
  assert.match(mine ?? '', /^\d+$/);
  assert.equal(procStart(process.pid), mine);
  assert.deepEqual(processFacts(process.pid), { pidExists: true, pidStart: mine });
  for (const pid of [0, -1, -process.pid, 1.5, Number.NaN]) assert.deepEqual(processFacts(pid), { pidExists: false, pidStart: undefined }, String(pid));
});

test('recordedProcess (pure): same pid and start time runs; another start time is a reused pid; no start time recorded or readable: the pid alone', () => {
  const f = { pidExists: true, pidStart: '700' };
  assert.equal(recordedProcess({ pid: 40, start: '700' }, f), 'runs');
  assert.equal(recordedProcess({ pid: 40, start: '699' }, f), 'reused');
  assert.equal(recordedProcess({ pid: 40 }, f), 'runs');
  assert.equal(recordedProcess({ pid: 40, start: '699' }, { pidExists: true, pidStart: undefined }), 'runs');
  assert.equal(recordedProcess({ pid: 40, start: '700' }, { pidExists: false, pidStart: undefined }), 'gone');
  assert.equal(recordedProcess({ pid: 40 }, { pidExists: false, pidStart: undefined }), 'gone');
});
