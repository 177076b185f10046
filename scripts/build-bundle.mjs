#!/usr/bin/env node
// Bundle brick's CLI (and everything it imports) into one CommonJS file, dist/brick.cjs: the input
// of the Node single-executable build (a SEA's main must be CJS on Node 24, and must not use top-level
// await). The version comes from package.json; the commit from $BRICK_COMMIT or git.
//   node scripts/build-bundle.mjs            -> dist/brick.cjs
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { lazyRequiresPlugin } from './lazy-requires.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

function commit() {
  if (process.env.BRICK_COMMIT) return process.env.BRICK_COMMIT;
  try {
    const head = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: root, encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return head || 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The config validator as standalone code (ESM), from the same schema and Ajv options as at run time. */
async function configValidatorCode() {
  const gen = await build({
    stdin: {
      contents: [
        "import { Ajv } from 'ajv';",
        "import standaloneCode from 'ajv/dist/standalone/index.js';",
        "import { ConfigSchema } from './src/config/schema.ts';",
        "import { AJV_OPTIONS } from './src/config/validator.ts';",
        'const ajv = new Ajv({ ...AJV_OPTIONS, code: { source: true, esm: true } });',
        'export const code = standaloneCode(ajv, ajv.compile(ConfigSchema));',
      ].join('\n'),
      resolveDir: root,
      loader: 'ts',
      sourcefile: 'config-validator-gen.ts',
    },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    write: false,
    logLevel: 'error',
  });
  const mod = { exports: {} };
  new Function('module', 'exports', 'require', gen.outputFiles[0].text)(mod, mod.exports, createRequire(join(root, 'package.json')));
  return mod.exports.code;
}

/**
 * The fencer's own bundle: src/cli/main.ts with every module it imports on demand (one per command)
 * but the fencer's replaced by one that refuses; the binary's entry runs this bundle only for
 * `brick fencer`. The build fails if main.ts no longer imports the fencer that way.
 */
const FENCER_MODULE = '../fencer/daemon.js';
function fencerOnlyPlugin() {
  let sawFencer = false;
  const plugin = {
    name: 'brick-fencer-only',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind !== 'dynamic-import' || !/[\\/]src[\\/]cli[\\/]main\.ts$/.test(args.importer)) return undefined;
        if (args.path === FENCER_MODULE) return ((sawFencer = true), undefined);
        return { path: args.path, namespace: 'brick-not-fencer' };
      });
      b.onLoad({ filter: /.*/, namespace: 'brick-not-fencer' }, (args) => ({
        contents: `throw new Error('internal: ${args.path} is not in the fencer bundle');`,
        loader: 'js',
      }));
    },
  };
  return {
    plugin,
    /** After the build: throws if the fencer's module was never seen. */
    verify() {
      if (!sawFencer) throw new Error(`fencer bundle: src/cli/main.ts does not import('${FENCER_MODULE}')`);
    },
  };
}

export async function buildBundle({ outfile = join(root, 'dist', 'brick.cjs'), quiet = false, role = 'all' } = {}) {
  mkdirSync(dirname(outfile), { recursive: true });
  const version = pkg.version;
  const sha = commit();
  const validatorCode = await configValidatorCode();
  const lazy = lazyRequiresPlugin({ sourceRoot: role === 'fencer' ? undefined : join(root, 'src') });
  const fencerOnly = role === 'fencer' ? fencerOnlyPlugin() : undefined;
  const result = await build({
    entryPoints: [join(root, 'src', 'cli', 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'cjs',
    // Minified: the bundle's source is a string in the V8 heap of every brick process (and its
    // comments held non-ASCII characters, which made it a two-byte string: 4.9 MB for 2.5 MB of
    // source). Identifiers are kept: fastify/avvio and error messages use function and class names,
    // and esbuild's keepNames would wrap every closure made per request in a defineProperty call.
    minifyWhitespace: !process.env.BRICK_NO_MINIFY,
    minifySyntax: true,
    charset: 'ascii',
    legalComments: 'none',
    sourcemap: false,
    logLevel: quiet ? 'error' : 'warning',
    // The bundle is always the program's entry (the SEA's argv[1] is whatever the binary is called).
    banner: { js: 'globalThis.__BRICK_SEA__ = true;' },
    define: {
      // Known at build time too: what only runs outside the shipped binary (the fencer's test-only
      // injection points, the development fallbacks) is compiled out, not merely skipped.
      'globalThis.__BRICK_SEA__': 'true',
      __BRICK_VERSION__: JSON.stringify(version),
      __BRICK_COMMIT__: JSON.stringify(sha),
      // Only read by the development fallback in version.ts, which the defines above make dead.
      'import.meta.url': 'undefined',
    },
    metafile: true,
    plugins: [
      lazy.plugin,
      ...(fencerOnly ? [fencerOnly.plugin] : []),
      {
        // src/config/validator.ts compiles the config schema with Ajv at run time; the bundle gets
        // the same validator as generated code instead (no Ajv compiler loaded, nothing compiled at start).
        name: 'brick-config-validator',
        setup(b) {
          b.onLoad({ filter: /[\\/]src[\\/]config[\\/]validator\.ts$/ }, () => ({
            contents: `${validatorCode}\nexport function configValidator() { return validate; }\n`,
            loader: 'js',
            resolveDir: root,
          }));
        },
      },
    ],
  });
  // A plugin whose work no longer applies (a dependency or main.ts changed) fails the build. The
  // whole CLI holds every dependency the lazy requires name; the fencer's bundle only some.
  if (!fencerOnly) lazy.verify();
  fencerOnly?.verify();
  const bytes = statSync(outfile).size;
  if (!quiet) console.log(`build-bundle: ${outfile} (${(bytes / 1024).toFixed(0)} KiB, brick ${version}, commit ${sha})`);
  return { outfile, bytes, version, commit: sha, warnings: result.warnings.length };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildBundle().catch((e) => {
    console.error(`build-bundle: ${e.message}`);
    process.exit(1);
  });
}
