// The floor of a cold start on brick's stack: a bare fastify server (POST / and /RPC2 answering a fixed
// XML-RPC reply, no logger, no auth, no metrics, no config) built the way dist/brick is built: bundled
// by esbuild, run by a single executable of the same pinned Node with the same flags and main, from
// an asset with a V8 code cache made after a start and one call: scripts/build-binary.mjs's own
// steps (wrapBundle, makeCodeCache, checkCodeCache, assembleSea). footprint.ts starts it beside
// dist/brick.
// It takes `serve --config FILE` like brick (other arguments ignored), reads `listen = "host:port"`
// from the file, and logs {"url":"http://host:port/"} once it listens.
import { build } from 'esbuild';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

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

/**
 * Build the floor binary in dir (a scratch directory of its own); its path. node: the pinned Node 24;
 * port: free, for the run that makes the code cache. Its asset takes the whole CLI's names
 * (brick.js, brick.cache), so scripts/sea-main.cjs runs it as it runs brick's.
 */
export async function buildFastifyFloor(dir: string, node: string, port: number): Promise<string> {
  const { wrapBundle, makeCodeCache, checkCodeCache, assembleSea } = (await import(join(root, 'scripts', 'build-binary.mjs'))) as {
    wrapBundle: (file: string, js: string) => void;
    makeCodeCache: (node: string, js: string, cache: string, name: string, extra?: string[]) => void;
    checkCodeCache: (node: string, js: string, cache: string, name: string) => void;
    assembleSea: (o: { node: string; work: string; assets: Record<string, string>; exeName: string; quiet?: boolean }) => Promise<string>;
  };
  const bundle = join(dir, 'floor.cjs');
  await build({
    stdin: { contents: SERVER, resolveDir: root, loader: 'js', sourcefile: 'fastify-floor.cjs' },
    outfile: bundle,
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'cjs',
    minifyWhitespace: true,
    minifySyntax: true,
    // as scripts/build-bundle.mjs builds brick's: ASCII only (wrapBundle refuses anything else)
    charset: 'ascii',
    legalComments: 'none',
    logLevel: 'error',
  });
  const js = join(dir, 'brick.js');
  wrapBundle(bundle, js);
  const config = join(dir, 'floor-cache.toml');
  writeFileSync(config, `listen = "127.0.0.1:${port}"\n`);
  const cache = join(dir, 'brick.cache');
  // warm, as brick's: the script runs as `serve --config CONFIG` and answers one call on PORT
  makeCodeCache(node, js, cache, 'brick.cjs', [String(port), config]);
  checkCodeCache(node, js, cache, 'brick.cjs');
  return assembleSea({ node, work: dir, assets: { 'brick.js': js, 'brick.cache': cache }, exeName: 'fastify-floor', quiet: true });
}
