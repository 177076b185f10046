// The single executable's asset steps (scripts/build-binary.mjs): a bundle is wrapped only when it is
// ASCII, because scripts/sea-main.cjs reads the asset as latin1; the code cache the build makes is
// taken by V8 for the asset read that way (the bench's fastify floor once carried a non-ASCII
// license comment: its cache was made for the UTF-8 reading, one character shorter, and V8 rejected
// it at every start while the build's own check, reading UTF-8 too, passed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Script } from 'node:vm';
import { repoRoot } from '../fixtures/exec.js';
import { scratchDir } from '../fixtures/scratch.js';

const { wrapBundle, makeCodeCache, checkCodeCache } = (await import(join(repoRoot, 'scripts', 'build-binary.mjs'))) as {
  wrapBundle: (file: string, js: string) => void;
  makeCodeCache: (node: string, js: string, cache: string, name: string, extra?: string[]) => void;
  checkCodeCache: (node: string, js: string, cache: string, name: string) => void;
};

const dir = scratchDir('brick-build-binary-');

test('wrapBundle: an ASCII bundle becomes one function expression; a non-ASCII byte is refused, naming where', () => {
  const ok = join(dir, 'ok.cjs');
  writeFileSync(ok, 'module.exports = "x";');
  wrapBundle(ok, join(dir, 'ok.js'));
  assert.equal(readFileSync(join(dir, 'ok.js'), 'latin1'), '(function (exports, require, module, __filename, __dirname) {module.exports = "x";\n})');

  const bad = join(dir, 'bad.cjs');
  writeFileSync(bad, 'module.exports = 1;\n/*! MIT License. Jimmy W\u00e4rting */\n', 'utf8');
  assert.throws(() => wrapBundle(bad, join(dir, 'bad.js')), /bad\.cjs: a non-ASCII byte \(0xc3\) at offset 44, in ".*Jimmy W.*": build it with esbuild's charset: 'ascii' and legalComments: 'none'/);
});

test('the code cache the build makes is taken for the asset as sea-main.cjs reads it (latin1)', () => {
  const src = join(dir, 'app.cjs');
  writeFileSync(src, 'module.exports = function add(a, b) { return a + b; };');
  const js = join(dir, 'app.js');
  const cache = join(dir, 'app.cache');
  wrapBundle(src, js);
  makeCodeCache(process.execPath, js, cache, 'app.cjs');
  checkCodeCache(process.execPath, js, cache, 'app.cjs');
  // What sea-main.cjs does, here: the cache is checked by length (and V8's flags: the test runner's
  // Node options are not V8 flags), so it is taken.
  const script = new Script(readFileSync(js).toString('latin1'), { filename: 'app.cjs', cachedData: readFileSync(cache) });
  assert.equal(script.cachedDataRejected, false);
  const mod = { exports: {} as unknown };
  script.runInThisContext()(mod.exports, undefined, mod, 'app.cjs', '/');
  assert.equal((mod.exports as (a: number, b: number) => number)(2, 3), 5);
});
