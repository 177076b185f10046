// The bundle's lazy requires (scripts/lazy-requires.mjs): the proxy that stands for a dependency's
// start-up require must behave as the real module in every way the importer can touch it, and load
// it only then; the assert stand-in must return for a truthy value without loading node:assert and
// throw node:assert's own error otherwise.
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
  assert.throws(() => verify(), /lazy-requires: not found in the bundle .*fastify\/lib\/server\.js: require\('node:http2'\).*pino\/lib\/tools\.js: text patch/);
});
