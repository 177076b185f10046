// The bundle's lazy requires (scripts/lazy-requires.mjs): the proxy that stands for a dependency's
// start-up require must behave as the real module in every way the importer can touch it, and load
// it only then; the assert stand-in must return for a truthy value without loading node:assert and
// throw node:assert's own error otherwise; the source stand-ins (SOURCE_LAZY) must load their
// built-in on the first call, give the real results, and refuse at build time what a wrapper
// cannot stand for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AssertionError } from 'node:assert';
import { ASSERT_CODE, lazyModuleCode } from '../../scripts/lazy-requires.mjs';

/** Evaluate a CommonJS module's code with `real` as what its load expression returns; count the loads. */
function lazy<T>(real: T): { proxy: any; loads: () => number } {
  let n = 0;
  const mod = { exports: {} as unknown };
  const loadReal = () => {
    n++;
    return real;
  };
  new Function('module', 'loadReal', lazyModuleCode('loadReal()'))(mod, loadReal);
  return { proxy: mod.exports, loads: () => n };
}

test('lazy module: nothing is loaded until touched, then it is loaded once and acts as the real module', () => {
  class Gateway {
    constructor(public url: string) {}
    hello() {
      return `hi ${this.url}`;
    }
  }
  const real = Object.assign(function inject(a: number, b: number) {
    return a + b;
  }, { Gateway, constants: { X: 1 }, createServer: (o: string) => `server ${o}` });
  const { proxy, loads } = lazy(real);
  assert.equal(loads(), 0, 'requiring it loads nothing');
  assert.equal(proxy.createServer('tls'), 'server tls');
  assert.equal(loads(), 1);
  assert.equal(proxy(2, 3), 5, 'a call goes to the real function');
  const g = new proxy.Gateway('u');
  assert.ok(g instanceof Gateway);
  assert.equal(g.hello(), 'hi u');
  assert.deepEqual(proxy.constants, { X: 1 });
  assert.ok('Gateway' in proxy);
  assert.ok(!('nope' in proxy));
  assert.deepEqual(Object.keys(proxy).sort(), Object.keys(real).sort());
  proxy.extra = 7;
  assert.equal((real as unknown as { extra: number }).extra, 7, 'a property set reaches the real module');
  assert.equal(loads(), 1, 'loaded once');
});

test('lazy module: `new` on the module itself (a class export) makes an instance of the real class', () => {
  class Registry {
    made = true;
  }
  const { proxy, loads } = lazy(Registry);
  assert.equal(loads(), 0);
  const r = new proxy();
  assert.ok(r instanceof Registry);
  assert.equal(r.made, true);
  class Sub extends proxy {}
  assert.ok(new Sub() instanceof Registry, 'a subclass of the stand-in extends the real class');
});

test('assert stand-in: a truthy value returns without loading node:assert; a falsy one throws its AssertionError', () => {
  const loaded: string[] = [];
  const mod = { exports: {} as any };
  const fakeProcess = { getBuiltinModule: (id: string) => (loaded.push(id), process.getBuiltinModule(id)) };
  new Function('module', 'process', ASSERT_CODE)(mod, fakeProcess);
  const a = mod.exports;
  a(true, 'never');
  a(1);
  a('x', 'fine');
  assert.deepEqual(loaded, [], 'truthy values never load node:assert');
  assert.throws(() => a(false, 'Path should be a string'), (e: unknown) => e instanceof AssertionError && e.message === 'Path should be a string');
  assert.throws(() => a(0), AssertionError);
  assert.throws(() => a(), AssertionError, 'no argument at all is a failure, as in node:assert');
  assert.throws(() => a.strictEqual(1, 2), AssertionError, 'other members are node:assert');
  assert.equal(typeof a.ok, 'function');
  assert.ok(loaded.every((id) => id === 'node:assert') && loaded.length > 0);
});

test('lazy requires: a bundle in which an entry no longer applies (a dependency changed) fails the build, naming it', async () => {
  const { build } = await import('esbuild');
  const { lazyRequiresPlugin } = await import('../../scripts/lazy-requires.mjs');
  const { plugin, verify } = lazyRequiresPlugin();
  // a bundle without fastify, pino or prom-client: none of the entries can apply
  await build({ stdin: { contents: 'module.exports = 1;', loader: 'js' }, bundle: true, platform: 'node', format: 'cjs', write: false, logLevel: 'silent', plugins: [plugin] });
  assert.throws(() => verify(), /lazy-requires: not found in the bundle .*fastify\/lib\/server\.js: require\('node:http2'\).*pino\/lib\/tools\.js: text patch.*schema-controller\.js: require\('@fastify\/ajv-compiler'\) \(left out\)/);
});

/** Bundle `source` as src/a.ts of a temporary tree with the plugin's source stand-ins; the bundle's text or esbuild's errors. */
async function bundleSource(source: string): Promise<{ code?: string; errors?: string }> {
  const { build } = await import('esbuild');
  const { lazyRequiresPlugin } = await import('../../scripts/lazy-requires.mjs');
  const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'brick-lazy-src-'));
  try {
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src', 'a.ts'), source);
    const { plugin } = lazyRequiresPlugin({ sourceRoot: join(dir, 'src') });
    const out = await build({ entryPoints: [join(dir, 'src', 'a.ts')], bundle: true, platform: 'node', format: 'cjs', write: false, logLevel: 'silent', plugins: [plugin] });
    return { code: out.outputFiles[0].text };
  } catch (e) {
    return { errors: (e as { errors: Array<{ text: string }> }).errors.map((x) => x.text).join('; ') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("source stand-ins: src/'s imports of node:crypto and node:fs/promises load them on the first call, with the real results", async () => {
  const { code, errors } = await bundleSource(
    [
      "import { createHash } from 'node:crypto';",
      "import { readFile } from 'node:fs/promises';",
      "const loaded = () => ['crypto', 'fs/promises'].filter((m) => process.moduleLoadList.includes('NativeModule ' + m)).join(',');",
      'module.exports = async (file) => {',
      '  const before = loaded();',
      "  const digest = createHash('sha256').update('brick').digest('hex');",
      "  const text = await readFile(file, 'utf8');",
      '  return { before, after: loaded(), digest, text };',
      '};',
    ].join('\n'),
  );
  assert.equal(errors, undefined);
  assert.doesNotMatch(code!, /require\("node:(crypto|fs\/promises)"\)/, 'no require of either left in the bundle');
  // Run as a file in a fresh node: this test process loaded both long ago (and `node -e` loads crypto).
  const { execFileSync } = await import('node:child_process');
  const { createHash } = await import('node:crypto');
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'brick-lazy-run-'));
  const runner = join(dir, 'run.cjs');
  writeFileSync(runner, `${code}\nmodule.exports(process.argv[2]).then((r) => console.log(JSON.stringify(r)));\n`);
  const file = new URL(import.meta.url).pathname;
  let got: Record<string, string>;
  try {
    got = JSON.parse(execFileSync(process.execPath, [runner, file], { encoding: 'utf8' })) as Record<string, string>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(got.before, '', 'neither loaded before the first call');
  assert.equal(got.after, 'crypto,fs/promises');
  assert.equal(got.digest, createHash('sha256').update('brick').digest('hex'));
  assert.match(got.text, /source stand-ins/, 'readFile read this file');
});

test('source stand-ins: importing a class or a value (not a function) from them fails the build, not a wrapper', async () => {
  assert.match((await bundleSource("import { constants } from 'node:crypto'; console.log(constants);")).errors ?? '', /No matching export .*"constants"/);
  assert.match((await bundleSource("import { Hash } from 'node:crypto'; console.log(Hash);")).errors ?? '', /No matching export .*"Hash"/);
  assert.equal((await bundleSource("import { randomBytes } from 'node:crypto'; console.log(randomBytes(1));")).errors, undefined);
});

test('left out of the bundle: the stand-in for a schema compiler throws naming it when fastify asks for it', async () => {
  const { excludedModuleCode, EXCLUDED } = await import('../../scripts/lazy-requires.mjs');
  assert.deepEqual(EXCLUDED.flatMap((e) => e.specs), ['@fastify/ajv-compiler', '@fastify/fast-json-stringify-compiler']);
  const mod = { exports: undefined as unknown };
  new Function('module', excludedModuleCode('@fastify/ajv-compiler'))(mod);
  assert.equal(typeof mod.exports, 'function', 'requiring it succeeds (fastify requires it only when it is given no compilers)');
  assert.throws(() => (mod.exports as () => unknown)(), /@fastify\/ajv-compiler is not in brick's bundle: fastify was created without brick's schema compilers/);
});
