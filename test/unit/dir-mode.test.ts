// src/shared/dir-mode.ts: who else can write a directory brick keeps its files in, and which
// directories a `mkdir -p` made (they get brick's mode, whatever the umask).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { dirsMade, looseDirProblem } from '../../src/shared/dir-mode.js';
import { ensureDir } from '../../src/fencer/state.js';
import { makeDir } from '../../src/fencer/runtime-pools-writer.js';
import { scratchDir } from '../fixtures/scratch.js';

test('looseDirProblem: group or others write (a sticky bit too), or an owner other than root and brick', () => {
  assert.equal(looseDirProblem(0o040755, 0, 0), undefined);
  assert.equal(looseDirProblem(0o040700, 990, 990), undefined);
  assert.equal(looseDirProblem(0o040777, 0, 0), 'has mode 0777: its group and every user can write it');
  assert.equal(looseDirProblem(0o041733, 0, 0), 'has mode 1733: its group and every user can write it');
  assert.equal(looseDirProblem(0o040775, 0, 0), 'has mode 0775: its group can write it');
  assert.equal(looseDirProblem(0o040757, 0, 0), 'has mode 0757: every user can write it');
  assert.equal(looseDirProblem(0o040700, 1000, 0), 'is owned by uid 1000, who can change its mode and write it');
});

test('dirsMade: dir and each parent up to the first one mkdir made, deepest first; none when it made none', () => {
  assert.deepEqual(dirsMade('/a/b/c', undefined), []);
  assert.deepEqual(dirsMade('/a/b/c', '/a/b/c'), ['/a/b/c']);
  assert.deepEqual(dirsMade('/a/b/c', '/a/b'), ['/a/b/c', '/a/b']);
  assert.deepEqual(dirsMade('/a/b/c', '/a'), ['/a/b/c', '/a/b', '/a']);
  // never above the root, even for a "first" that is not an ancestor (not what mkdir returns)
  assert.deepEqual(dirsMade('/a/b', '/x'), ['/a/b', '/a', '/']);
});

test('ensureDir (sync, the fencer) and makeDir (async, the agent) give every directory they made their mode under umask 077 and 000, and leave one already there as it is', async (t) => {
  const root = scratchDir('brick-dirs-');
  const mode = (p: string) => (statSync(p).mode & 0o7777).toString(8);
  const there = join(root, 'there');
  mkdirSync(there);
  chmodSync(there, 0o775);
  for (const umask of [0o077, 0o000]) {
    const old = process.umask(umask);
    try {
      const u = umask.toString(8);
      ensureDir(join(there, `s${u}`, 'x', 'y'), 0o755);
      await makeDir(join(there, `m${u}`, 'x', 'y'));
      for (const d of ['', '/x', '/x/y']) {
        assert.equal(mode(join(there, `s${u}`) + d), '755', `ensureDir, umask ${u}: s${u}${d}`);
        assert.equal(mode(join(there, `m${u}`) + d), '700', `makeDir, umask ${u}: m${u}${d}`);
      }
      ensureDir(there, 0o755);
      await makeDir(there);
      assert.equal(mode(there), '775', 'a directory already there keeps the mode an admin chose');
    } finally {
      process.umask(old);
    }
  }
});
