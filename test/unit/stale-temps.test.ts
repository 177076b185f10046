// Which temp files a killed writer left are removed (src/shared/stale-temps.ts), judged without a
// host: the names durable-write.ts and atomic-write.ts give their temp files, of the files the
// caller names, whose pid no process has; never this process's own, never a live pid's, never a
// name that is not such a temp file. Real writers killed mid-write: test/host/durable-files.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { staleTempFiles, tempFileOf } from '../../src/shared/stale-temps.js';

test('tempFileOf: the file and the pid in a durable (.NAME.PID.tmp) or atomic (.NAME.PID.SEQ.tmp) temp file name; nothing for any other name', () => {
  assert.deepEqual(tempFileOf('.fence-marker.json.4242.tmp'), { base: 'fence-marker.json', pid: 4242 });
  assert.deepEqual(tempFileOf('.fencer.json.77.3.tmp'), { base: 'fencer.json', pid: 77 });
  assert.deepEqual(tempFileOf('.killed-vm-ab.cd-1764530000000.json.9.tmp'), { base: 'killed-vm-ab.cd-1764530000000.json', pid: 9 });
  for (const n of ['fence-marker.json', '.fence-marker.json.tmp', '.fence-marker.json.x1.tmp', '.fence-marker.json.0.tmp', '.fence-marker.json.12', 'fence-marker.json.12.tmp', '.notes.txt.12.tmp', '.fence-marker.json.12.tmp.bak'])
    assert.equal(tempFileOf(n), undefined, n);
});

test('staleTempFiles: of the files named, those whose pid no process has; never our own, never a live pid, never another file', () => {
  const names = [
    'fence-marker.json',
    '.fence-marker.json.100.tmp', // writer gone
    '.fence-marker.json.200.tmp', // writer alive: between its write and its rename
    '.fencer-lease.json.100.tmp', // writer gone
    '.fencer-lease.json.300.tmp', // ours
    '.fencer.json.100.5.tmp', // another file's (not named): left
    '.notes.json.100.tmp', // not ours to judge
  ];
  const alive = (pid: number) => pid === 200 || pid === 300;
  const ours = (b: string) => b === 'fence-marker.json' || b === 'fencer-lease.json';
  assert.deepEqual(staleTempFiles(names, ours, alive, 300), ['.fence-marker.json.100.tmp', '.fencer-lease.json.100.tmp']);
  // Our own pid is kept even when `alive` knows nothing of it (a check of ourselves is never needed).
  assert.deepEqual(staleTempFiles(['.fencer-lease.json.300.tmp'], ours, () => false, 300), []);
  assert.deepEqual(staleTempFiles(['.fencer.json.100.5.tmp', '.fencer.json.300.1.tmp'], (b) => b === 'fencer.json', () => false, 300), ['.fencer.json.100.5.tmp']);
});
