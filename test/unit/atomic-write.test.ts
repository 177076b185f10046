// writeFileAtomic (src/shared/atomic-write.ts) on a real directory: a temp file that a previous
// process with this process's pid left (killed between its write and its rename) is replaced, not a
// failed write. Before, the exclusive create failed with EEXIST at the write whose number met the
// leftover's, and the start-up sweep never removes a temp file carrying the sweeper's own pid.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/shared/atomic-write.js';
import { scratchDir } from '../fixtures/scratch.js';

test("a temp file left by an earlier process with this pid is replaced by the write that draws its name; the others stay for the sweep's rules", () => {
  const dir = scratchDir('brick-atomic-write-');
  const file = join(dir, 'fencer.json');
  writeFileAtomic(file, 'old\n');
  // Leftovers under every number the next writes of this process can draw.
  const LEFT = 1000;
  for (let n = 1; n <= LEFT; n++) writeFileSync(join(dir, `.fencer.json.${process.pid}.${n}.tmp`), 'left by a killed writer\n');
  for (let i = 0; i < 3; i++) writeFileAtomic(file, `new ${i}\n`, { mode: 0o640 });
  assert.equal(readFileSync(file, 'utf8'), 'new 2\n');
  assert.equal(statSync(file).mode & 0o777, 0o640, 'the new file has the mode asked for, not the leftover\'s');
  const left = readdirSync(dir).filter((n) => n.endsWith('.tmp'));
  assert.equal(left.length, LEFT - 3, 'each write replaced the one leftover with its name, and renamed it away');
  for (const n of left) assert.equal(readFileSync(join(dir, n), 'utf8'), 'left by a killed writer\n', n);
});

test('what is in the way and is not a file is not removed: the write fails with its error and the file keeps its text', () => {
  const dir = scratchDir('brick-atomic-write-');
  const file = join(dir, 'fencer.json');
  writeFileAtomic(file, 'old\n');
  const LEFT = 1000;
  for (let n = 1; n <= LEFT; n++) mkdirSync(join(dir, `.fencer.json.${process.pid}.${n}.tmp`));
  assert.throws(() => writeFileAtomic(file, 'new\n'), (e: NodeJS.ErrnoException) => e.code !== undefined && e.code !== 'EEXIST');
  assert.equal(readFileSync(file, 'utf8'), 'old\n');
  assert.equal(readdirSync(dir).filter((n) => n.endsWith('.tmp')).length, LEFT, 'no directory removed');
});
