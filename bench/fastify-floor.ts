// The floor of a cold start on brick's stack: a bare fastify server (POST / and /RPC2 answering a fixed
// XML-RPC reply, no logger, no auth, no metrics, no config) built the way dist/brick is built: bundled
// by esbuild, run by a single executable of the same pinned Node with the same flags
// (SEA_RUNTIME.execArgv), from an asset with a V8 code cache made after a start and one call
// (scripts/build-binary.mjs does the same for brick). footprint.ts starts it beside dist/brick.
// It takes `serve --config FILE` like brick (other arguments ignored), reads `listen = "host:port"`
// from the file, and logs {"url":"http://host:port/"} once it listens.
import { execFileSync } from 'node:child_process';
import { build } from 'esbuild';
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

const SERVER = `
const Fastify = require('fastify');
const { readFileSync } = require('node:fs');
const config = readFileSync(process.argv[process.argv.indexOf('--config') + 1], 'utf8');
const [, host, port] = /^listen = "(.+):(\\d+)"$/m.exec(config);
const REPLY = '<?xml version="1.0" encoding="UTF-8"?>\\n<methodResponse><params><param><value><string>0.1.0</string></value></param></params></methodResponse>\\n';
const app = Fastify({ logger: false });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
for (const path of ['/', '/RPC2']) app.post(path, async (_req, reply) => reply.type('text/xml; charset=utf-8').send(REPLY));
app.listen({ host, port: Number(port) }).then((address) => process.stdout.write(JSON.stringify({ url: address + '/' }) + '\\n'));
`;

const MAIN = `'use strict';
const { getRawAsset } = require('node:sea');
const { Script } = require('node:vm');
const script = new Script(Buffer.from(getRawAsset('floor.js')).toString('latin1'), { filename: 'floor.cjs', cachedData: Buffer.from(getRawAsset('floor.cache')) });
script.runInThisContext()(module.exports, require, module, __filename, __dirname);
`;

/** Build the floor binary in dir (a scratch directory); its path. node: the pinned Node 24; port: free for the cache run. */
export async function buildFastifyFloor(dir: string, node: string, port: number): Promise<string> {
  const { SEA_RUNTIME, SEA_FUSE, CODE_CACHE_MAKER } = (await import(join(root, 'scripts', 'build-binary.mjs'))) as {
    SEA_RUNTIME: { execArgv: string[]; execArgvExtension: string };
    SEA_FUSE: string;
    CODE_CACHE_MAKER: string;
  };
  const bundled = await build({
    stdin: { contents: SERVER, resolveDir: root, loader: 'js', sourcefile: 'fastify-floor.cjs' },
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'cjs',
    minifyWhitespace: true,
    minifySyntax: true,
    write: false,
    logLevel: 'error',
  });
  const js = join(dir, 'floor.js');
  writeFileSync(js, `(function (exports, require, module, __filename, __dirname) {${bundled.outputFiles[0].text}\n})`, 'latin1');
  const config = join(dir, 'floor-cache.toml');
  writeFileSync(config, `listen = "127.0.0.1:${port}"\n`);
  const cache = join(dir, 'floor.cache');
  // brick's own maker: runs the script as `serve --config CONFIG`, calls PORT once, writes the cache
  execFileSync(node, [...SEA_RUNTIME.execArgv, '-e', CODE_CACHE_MAKER, js, cache, 'floor.cjs', String(port), config], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 60_000, env: { PATH: '/usr/bin:/bin' } });
  const main = join(dir, 'floor-main.cjs');
  writeFileSync(main, MAIN);
  const blob = join(dir, 'floor.blob');
  const seaConfig = join(dir, 'floor-sea.json');
  writeFileSync(seaConfig, JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true, useSnapshot: false, assets: { 'floor.js': js, 'floor.cache': cache }, ...SEA_RUNTIME }));
  execFileSync(node, [...SEA_RUNTIME.execArgv, '--experimental-sea-config', seaConfig], { stdio: 'ignore', timeout: 120_000 });
  const exe = join(dir, 'fastify-floor');
  copyFileSync(node, exe);
  chmodSync(exe, 0o755);
  execFileSync('strip', ['-s', exe], { timeout: 120_000 });
  const { inject } = require('postject') as { inject: (file: string, name: string, data: Buffer, o: { sentinelFuse: string }) => Promise<void> };
  const [warn, log] = [console.warn, console.log];
  console.warn = console.log = () => {}; // postject's notes about the stripped binary's section names (see build-binary.mjs)
  try {
    await inject(exe, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE });
  } finally {
    [console.warn, console.log] = [warn, log];
  }
  return exe;
}
