// esbuild plugin: dependencies' start-up requires of things brick does not use on its paths, made
// lazy in the bundle. Node's built-in modules cost RSS and start-up time when loaded (measured with
// the pinned node: http2, https/tls, cluster, zlib, worker_threads, assert and module on top of
// http + net + child_process: 46.6 -> 57.8 MB RSS), and fastify, pino and prom-client load them at
// require time whether or not the program ever serves HTTP/2 or TLS, pushes to a Pushgateway, runs
// in a cluster or uses a pino transport.
//
// Each entry names the importing file (inside node_modules) and the specifier; the import is
// replaced by a proxy that requires the real module the first time anything touches it (a property,
// a call, `new`, `in`, its keys). Text patches replace an exact piece of a dependency's source; each
// must match exactly once, or the build fails: an upgrade that moves the code cannot silently skip it.
import { readFile } from 'node:fs/promises';

/** importer (path suffix inside node_modules) -> specifiers made lazy there. */
export const LAZY = [
  // fastify/lib/server.js requires both at its top; they are used only for `http2: true` / `https: {...}`.
  { importer: 'fastify/lib/server.js', specs: ['node:https', 'node:http2'] },
  // prom-client's index requires these at its top; brick never pushes to a Pushgateway (url, http,
  // https, zlib) nor aggregates cluster workers (cluster.js calls cluster() at its top).
  { importer: 'prom-client/index.js', specs: ['./lib/pushgateway', './lib/cluster'] },
  // pino's transports (thread-stream: worker_threads, module, ...) load at its top; brick logs to a stream.
  { importer: 'pino/pino.js', specs: ['./lib/transport'] },
  { importer: 'pino/lib/tools.js', specs: ['./transport'] },
];

/**
 * assert as fastify, find-my-way and sonic-boom use it, `assert(value, message)` at route registration: a
 * truthy value returns at once; anything else (a falsy value, or any property such as
 * assert.strictEqual) goes to node:assert, loaded then, with the same arguments.
 */
export const ASSERT_IMPORTERS = [
  'fastify/lib/plugin-utils.js',
  'find-my-way/index.js',
  'find-my-way/lib/constrainer.js',
  'find-my-way/lib/strategies/accept-host.js',
  'find-my-way/lib/strategies/accept-version.js',
  'sonic-boom/index.js',
];

/**
 * Left out of the bundle: what fastify requires only when it is given no schema compilers. brick
 * always gives it its own (src/agent-extension/server.ts: they refuse, brick declares no route
 * schemas), so Ajv, fast-json-stringify and their helpers are never loaded; in the bundle they were
 * about 0.5 MB of source (0.1 MB of it minified away) that every brick process held as a string. The
 * stand-in throws when called, so a fastify without brick's compilers fails at its creation.
 */
export const EXCLUDED = [{ importer: 'fastify/lib/schema-controller.js', specs: ['@fastify/ajv-compiler', '@fastify/fast-json-stringify-compiler'] }];

export function excludedModuleCode(spec) {
  return `"use strict";
module.exports = function () {
  throw new Error(${JSON.stringify(`${spec} is not in brick's bundle: fastify was created without brick's schema compilers (src/agent-extension/server.ts)`)});
};
`;
}

/**
 * Node built-ins that brick's own code (src/) imports but that serving a plain call never uses: in
 * the whole CLI's bundle each named import of them is a small function that loads the module on its
 * first call (process.getBuiltinModule) and calls the real one. Loading them cost serve's start
 * node:crypto 7-9 ms and node:fs/promises 3-4 ms (the pinned node, bundle with its warm code cache);
 * dist/brick, spawn to the first reply: 208 -> 201 ms median, 198 -> 184 min (21 interleaved), and
 * 1.4 MiB of idle RSS. node:child_process is not here: net's listen() loads node:cluster, which
 * loads it. Only lowercase function exports
 * are offered: a class (Hash, ...) or a value (constants) imported from src/ fails the build with
 * esbuild's "No matching export", rather than becoming a wrapper that `new` or `instanceof` would
 * see through. The fencer's bundle keeps its imports as they are.
 */
export const SOURCE_LAZY = ['node:crypto', 'node:fs/promises'];

/** The ESM module standing for the built-in `spec` in the bundle: one loader, one wrapper per function. */
export function lazyBuiltinEsm(spec) {
  const real = process.getBuiltinModule(spec);
  const names = Object.keys(real).filter((k) => /^[a-z][A-Za-z0-9]*$/.test(k) && typeof real[k] === 'function');
  return [
    `let real;`,
    `const load = () => (real ??= process.getBuiltinModule(${JSON.stringify(spec)}));`,
    ...names.map((k) => `export function ${k}(...args) { return load().${k}(...args); }`),
    '',
  ].join('\n');
}

export const PATCHES = [
  {
    file: 'pino/lib/tools.js',
    // read where it is used (only for an asynchronous destination), not at the top
    replace: [
      ["const { isMainThread } = require('worker_threads')\n", ''],
      ['if (!opts.sync && isMainThread) {', "if (!opts.sync && require('worker_threads').isMainThread) {"],
    ],
  },
];

/** The proxy's code: `load` is an expression that returns the real module. */
export function lazyModuleCode(load) {
  return `"use strict";
let real;
const load = () => (real ??= ${load});
const proxy = new Proxy(function () {}.bind(), {
  get: (_, k) => load()[k],
  set: (_, k, v) => ((load()[k] = v), true),
  has: (_, k) => k in load(),
  apply: (_, self, args) => Reflect.apply(load(), self, args),
  construct: (_, args, nt) => Reflect.construct(load(), args, nt === proxy ? load() : nt),
  ownKeys: () => Reflect.ownKeys(load()),
  getOwnPropertyDescriptor: (_, k) => {
    const d = Reflect.getOwnPropertyDescriptor(load(), k);
    if (d) d.configurable = true;
    return d;
  },
  getPrototypeOf: () => Reflect.getPrototypeOf(load()),
});
module.exports = proxy;
`;
}

export const ASSERT_CODE = `"use strict";
const real = () => process.getBuiltinModule('node:assert');
module.exports = new Proxy(function () {}.bind(), {
  apply: (_, self, args) => (args.length && args[0] ? undefined : Reflect.apply(real(), self, args)),
  get: (_, k) => real()[k],
  has: (_, k) => k in real(),
});
`;

const norm = (p) => p.replace(/\\/g, '/');
const inModules = (path, suffix) => norm(path).endsWith(`/node_modules/${suffix}`);

/**
 * { plugin: the esbuild plugin, verify(): after the build, throws naming every entry that did not apply }.
 * sourceRoot: the directory of brick's own source, whose imports of SOURCE_LAZY are made lazy (none when unset).
 */
export function lazyRequiresPlugin({ sourceRoot } = {}) {
  const applied = new Set(); // "importer spec", "assert importer", "patch file", "source spec": the entries that applied
  const ownSource = sourceRoot ? norm(sourceRoot).replace(/\/?$/, '/') : undefined;
  const plugin = {
    name: 'brick-lazy-requires',
    setup(b) {
      b.onResolve({ filter: /^node:/ }, (args) => {
        if (!ownSource || args.kind !== 'import-statement' || !SOURCE_LAZY.includes(args.path) || !norm(args.importer).startsWith(ownSource)) return undefined;
        applied.add(`source ${args.path}`);
        return { path: args.path, namespace: 'brick-lazy-esm' };
      });
      b.onLoad({ filter: /.*/, namespace: 'brick-lazy-esm' }, (args) => ({ contents: lazyBuiltinEsm(args.path), loader: 'js' }));
      b.onResolve({ filter: /.*/ }, async (args) => {
        if (args.namespace !== 'file' || args.kind !== 'require-call' || args.pluginData?.lazyReal) return undefined;
        const assertImporter = args.path === 'node:assert' || args.path === 'assert' ? ASSERT_IMPORTERS.find((s) => inModules(args.importer, s)) : undefined;
        if (assertImporter) {
          applied.add(`assert ${assertImporter}`);
          return { path: 'assert', namespace: 'brick-lazy-assert' };
        }
        const excluded = EXCLUDED.find((l) => l.specs.includes(args.path) && inModules(args.importer, l.importer));
        if (excluded) {
          applied.add(`excluded ${excluded.importer} ${args.path}`);
          return { path: args.path, namespace: 'brick-excluded' };
        }
        const entry = LAZY.find((l) => l.specs.includes(args.path) && inModules(args.importer, l.importer));
        if (!entry) return undefined;
        applied.add(`${entry.importer} ${args.path}`);
        if (args.path.startsWith('node:')) return { path: args.path, namespace: 'brick-lazy', pluginData: { load: `process.getBuiltinModule(${JSON.stringify(args.path)})` } };
        const r = await b.resolve(args.path, { resolveDir: args.resolveDir, kind: 'require-call', importer: args.importer, pluginData: { lazyReal: true } });
        if (r.errors.length) return { errors: r.errors };
        return { path: r.path, namespace: 'brick-lazy', pluginData: { load: `require(${JSON.stringify(r.path)})` } };
      });
      b.onLoad({ filter: /.*/, namespace: 'brick-lazy' }, (args) => ({ contents: lazyModuleCode(args.pluginData.load), loader: 'js', resolveDir: '/' }));
      b.onLoad({ filter: /.*/, namespace: 'brick-lazy-assert' }, () => ({ contents: ASSERT_CODE, loader: 'js' }));
      b.onLoad({ filter: /.*/, namespace: 'brick-excluded' }, (args) => ({ contents: excludedModuleCode(args.path), loader: 'js' }));
      // The real module, required by absolute path from the proxy, must not be made lazy again.
      b.onResolve({ filter: /^\// }, (args) => (args.namespace === 'brick-lazy' ? { path: args.path } : undefined));
      b.onLoad({ filter: /\.js$/ }, async (args) => {
        const patch = PATCHES.find((p) => inModules(args.path, p.file));
        if (!patch) return undefined;
        let text = await readFile(args.path, 'utf8');
        for (const [from, to] of patch.replace) {
          const n = text.split(from).length - 1;
          if (n !== 1) return { errors: [{ text: `lazy-requires: ${patch.file}: expected ${JSON.stringify(from)} once, found it ${n} times (dependency changed? update scripts/lazy-requires.mjs)` }] };
          text = text.replace(from, () => to);
        }
        applied.add(`patch ${patch.file}`);
        return { contents: text, loader: 'js' };
      });
    },
  };
  return {
    plugin,
    verify() {
      const missing = [
        ...LAZY.flatMap((l) => l.specs.filter((s) => !applied.has(`${l.importer} ${s}`)).map((s) => `${l.importer}: require('${s}')`)),
        ...ASSERT_IMPORTERS.filter((s) => !applied.has(`assert ${s}`)).map((s) => `${s}: require('node:assert')`),
        ...PATCHES.filter((p) => !applied.has(`patch ${p.file}`)).map((p) => `${p.file}: text patch`),
        ...EXCLUDED.flatMap((l) => l.specs.filter((s) => !applied.has(`excluded ${l.importer} ${s}`)).map((s) => `${l.importer}: require('${s}') (left out)`)),
        ...(ownSource ? SOURCE_LAZY.filter((s) => !applied.has(`source ${s}`)).map((s) => `src/: import from '${s}'`) : []),
      ];
      if (missing.length) throw new Error(`lazy-requires: not found in the bundle (dependency changed? update scripts/lazy-requires.mjs): ${missing.join('; ')}`);
    },
  };
}
