// Bench (not a test): a trivial XML-RPC call (get_module_version() → a string) measured with wrk, an
// external load generator in its own process, against dist/brick serve as shipped (auth, the per-call
// log line and metrics on), Python's SimpleXMLRPCServer (as shipped: HTTP/1.0, single thread) and its
// ThreadingMixIn variant (HTTP/1.1 keep-alive), and, as the ceiling, bare fastify with the same body
// parser and bare node:http, each answering the same fixed reply. One run, interleaved: each round
// runs every target at 1, 4 and 32 connections. Figures per target and concurrency: calls/s, p50,
// p99 and max latency (wrk's), and server CPU per call (utime + stime of the server process over the
// run ÷ calls), each as min/median/max over the rounds. Then brick and bare fastify alone, in
// adjacent pairs: CPU per call as a ratio per pair, and p99 beside fastify's, against the goals'
// bounds (1.5x; 1 ms at 1 and 4 connections). Writes bench/out/xmlrpc.json.
//   node --import tsx bench/xmlrpc.ts [--seconds S] [--rounds N] [--pairs P]
// wrk is installed with apt-get when missing. BRICK_BIN (default dist/brick) is the binary; when it
// is missing the source runs under tsx and the notes say so.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeFigures, stats, type Figure } from './lib.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const REPLY = '<?xml version="1.0" encoding="UTF-8"?>\n<methodResponse><params><param><value><string>0.1.0</string></value></param></params></methodResponse>\n';
const BODY = '<?xml version="1.0"?><methodCall><methodName>get_module_version</methodName><params></params></methodCall>';
const PASSWORD = 'bench-password';
const AUTH = 'Basic ' + Buffer.from(`oracle:${PASSWORD}`).toString('base64');

const PY_SERVER = String.raw`
import sys
from xmlrpc.server import SimpleXMLRPCServer, SimpleXMLRPCRequestHandler
from socketserver import ThreadingMixIn
threaded = sys.argv[1] == 'threading'
class H(SimpleXMLRPCRequestHandler):
    rpc_paths = ('/', '/RPC2')
    if threaded: protocol_version = 'HTTP/1.1'
    def log_message(self, *a): pass
class T(ThreadingMixIn, SimpleXMLRPCServer):
    daemon_threads = True
cls = T if threaded else SimpleXMLRPCServer
s = cls(('127.0.0.1', 0), requestHandler=H, allow_none=True, logRequests=False)
s.register_function(lambda: '0.1.0', 'get_module_version')
print(s.server_address[1], flush=True)
s.serve_forever()
`;

// The ceilings: the same fixed reply, the body read as bytes (fastify: the parser brick used before).
const BARE = String.raw`
const kind = process.argv[2];
const REPLY = ${JSON.stringify(REPLY)};
if (kind === 'fastify') {
  const Fastify = (await import('fastify')).default;
  const app = Fastify({ logger: false });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_r, body, done) => done(null, body));
  app.post('/', async (_req, reply) => reply.type('text/xml; charset=utf-8').send(REPLY));
  await app.listen({ host: '127.0.0.1', port: 0 });
  console.log(app.server.address().port);
} else {
  const http = await import('node:http');
  const s = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      Buffer.concat(chunks);
      res.writeHead(200, { 'content-type': 'text/xml; charset=utf-8', 'content-length': Buffer.byteLength(REPLY) });
      res.end(REPLY);
    });
  });
  s.listen(0, '127.0.0.1', () => console.log(s.address().port));
}
`;

interface Target {
  name: string;
  port: number;
  proc: ChildProcess;
}

function freePort(): number {
  const r = spawnSync(process.execPath, ['-e', "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

function startPrinted(name: string, cmd: string, args: string[], cwd = ROOT): Promise<Target> {
  const proc = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    proc.on('error', reject);
    proc.on('exit', (c) => reject(new Error(`${name} exited ${c}`)));
    proc.stdout!.once('data', (d) => resolve({ name, port: Number(String(d).trim().split('\n')[0]), proc }));
  });
}

async function startBrick(dir: string, bin: string | undefined): Promise<Target> {
  const port = freePort();
  const config = join(dir, 'brick.toml');
  writeFileSync(config, `[server]\nlisten = "127.0.0.1:${port}"\ntls_cert = ""\ntls_key = ""\ngenerate_credentials = false\npassword = "${PASSWORD}"\n`);
  const [cmd, args] = bin ? [bin, ['serve', '--config', config]] : [process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'serve', '--config', config]];
  // The log goes where journald would take it: a pipe that is read (and dropped) here.
  const proc = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d;
      if (out.includes('brick agent extension listening')) {
        // From now on the lines are only drained, as journald would take them: scanning them here
        // (up to 1 MB per chunk) took CPU from the server on the same cores and slowed the reader.
        proc.stdout!.off('data', onData);
        proc.stdout!.on('data', () => {});
        out = '';
        resolve();
      } else if (out.length > 1e6) out = out.slice(-100);
    };
    proc.stdout!.on('data', onData);
    proc.on('exit', (c) => reject(new Error(`brick serve exited ${c}`)));
  });
  return { name: 'brick', port, proc };
}

function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]); // utime + stime (fields 14, 15)
}
const TICK_US = 1e6 / 100; // USER_HZ
/** "1 connection", "4 connections": for figure titles. */
const connections = (c: number) => `${c} connection${c === 1 ? '' : 's'}`;
/** Seconds per run in the brick / bare fastify pairs. */
const PAIR_S = 3;

interface Run {
  callsPerS: number;
  p50: number;
  p99: number;
  max: number;
  cpuUsPerCall: number;
  errors: number;
}

function ms(v: string, unit: string): number {
  const n = Number(v);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : n;
}

function wrk(t: Target, conns: number, seconds: number, script: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const before = cpuTicks(t.proc.pid!);
    const p = spawn('wrk', ['-t1', `-c${conns}`, `-d${seconds}s`, '--latency', '-s', script, `http://127.0.0.1:${t.port}/`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('exit', () => {
      const cpu = (cpuTicks(t.proc.pid!) - before) * TICK_US;
      const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
      const lat = (pct: string) => {
        const m = new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out);
        return m ? ms(m[1], m[2]) : NaN;
      };
      const maxM = /Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/.exec(out);
      const total = num(/(\d+) requests in/);
      const errors = num(/Non-2xx or 3xx responses: (\d+)/) || 0;
      const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      resolve({
        callsPerS: num(/Requests\/sec:\s+([\d.]+)/),
        p50: lat('50'),
        p99: lat('99'),
        max: maxM ? ms(maxM[1], maxM[2]) : NaN,
        cpuUsPerCall: total > 0 ? cpu / total : NaN,
        errors: errors + (sockErr ? Number(sockErr[1]) + Number(sockErr[4]) : 0),
      });
    });
  });
}

function ensureWrk(): void {
  if (spawnSync('wrk', ['--version']).error === undefined) return;
  process.stdout.write('bench: installing wrk (apt-get)\n');
  const r = spawnSync('apt-get', ['install', '-y', '-q', 'wrk'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('wrk is not installed and apt-get install wrk failed');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, rounds: { type: 'string', default: '3' }, pairs: { type: 'string', default: '6' } } });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const pairs = Number(values.pairs);
  ensureWrk();
  const dir = mkdtempSync(join(tmpdir(), 'brick-bench-xmlrpc-'));
  const script = join(dir, 'post.lua');
  writeFileSync(
    script,
    `wrk.method = "POST"\nwrk.body = ${JSON.stringify(BODY)}\nwrk.headers["Content-Type"] = "text/xml"\nwrk.headers["Authorization"] = ${JSON.stringify(AUTH)}\n`,
  );
  const bare = join(ROOT, 'bench', '.bare-server.mjs');
  writeFileSync(bare, BARE);
  const bin = process.env.BRICK_BIN ?? join(ROOT, 'dist/brick');
  const useBin = existsSync(bin) ? bin : undefined;
  const targets: Target[] = [];
  try {
    targets.push(await startBrick(dir, useBin));
    targets.push(await startPrinted('python SimpleXMLRPCServer', 'python3', ['-c', PY_SERVER, 'simple']));
    targets.push(await startPrinted('python ThreadingMixIn (HTTP/1.1)', 'python3', ['-c', PY_SERVER, 'threading']));
    targets.push(await startPrinted('bare fastify', process.execPath, [bare, 'fastify']));
    targets.push(await startPrinted('bare node:http', process.execPath, [bare, 'http']));
    const levels = [1, 4, 32];
    const results: Record<string, Record<number, Run[]>> = {};
    for (const t of targets) {
      results[t.name] = {};
      for (const c of levels) results[t.name][c] = [];
      await wrk(t, 4, 1, script); // warm up
    }
    for (let r = 0; r < rounds; r++)
      for (const c of levels)
        for (const t of targets) {
          const run = await wrk(t, c, seconds, script);
          results[t.name][c].push(run);
          process.stdout.write(`round ${r + 1} ${t.name} ${c} conn: ${run.callsPerS.toFixed(0)} calls/s p50 ${run.p50} p99 ${run.p99} ms, ${run.cpuUsPerCall.toFixed(0)} µs CPU/call${run.errors ? `, ${run.errors} errors` : ''}\n`);
        }
    const series = (name: string, c: number, k: keyof Run) => ({ name, samples: results[name][c].map((x) => x[k]) });
    const figures: Figure[] = [];
    const peers: Array<[string, number[]]> = [
      ['python SimpleXMLRPCServer', [1, 4, 32]],
      ['python ThreadingMixIn (HTTP/1.1)', [1, 4, 32]],
      ['bare fastify', [1, 32]],
      ['bare node:http', [1, 32]],
    ];
    for (const [peer, cs] of peers)
      for (const c of cs) {
        const tag = peer.split(' ').slice(0, 2).join('_').replace(/[^a-z_:]/gi, '').toLowerCase();
        const conn = connections(c);
        figures.push(
          { id: `xmlrpc.trivial.c${c}.calls_per_s.vs_${tag}`, title: `trivial call, ${conn}, calls/s`, unit: 'calls/s', better: 'higher', brick: series('brick', c, 'callsPerS'), peer: series(peer, c, 'callsPerS') },
          { id: `xmlrpc.trivial.c${c}.cpu_us.vs_${tag}`, title: `trivial call, ${conn}, server CPU per call`, unit: 'µs', better: 'lower', brick: series('brick', c, 'cpuUsPerCall'), peer: series(peer, c, 'cpuUsPerCall') },
          { id: `xmlrpc.trivial.c${c}.p99_ms.vs_${tag}`, title: `trivial call, ${conn}, p99 latency`, unit: 'ms', better: 'lower', brick: series('brick', c, 'p99'), peer: series(peer, c, 'p99') },
        );
        if (peer.startsWith('python'))
          figures.push(
            { id: `xmlrpc.trivial.c${c}.p50_ms.vs_${tag}`, title: `trivial call, ${conn}, p50 latency`, unit: 'ms', better: 'lower', brick: series('brick', c, 'p50'), peer: series(peer, c, 'p50') },
            { id: `xmlrpc.trivial.c${c}.max_ms.vs_${tag}`, title: `trivial call, ${conn}, max latency`, unit: 'ms', better: 'lower', brick: series('brick', c, 'max'), peer: series(peer, c, 'max') },
          );
      }
    // CPU per call against bare fastify in adjacent pairs: brick then fastify, then fastify then brick,
    // PAIR_S each, one ratio per pair. The machine's speed drifts by tens of percent over minutes (a
    // VM on shared cores); the rounds above put four other servers between brick and fastify, so
    // their medians can come from different phases. A pair's two runs are seconds apart.
    const fastify = targets.find((t) => t.name === 'bare fastify')!;
    const paired: Record<number, Array<{ brick: Run; fastify: Run }>> = {};
    for (const c of pairs > 0 ? levels : []) {
      paired[c] = [];
      for (let i = 0; i < pairs; i++) {
        const order = i % 2 ? [fastify, targets[0]] : [targets[0], fastify];
        const runs = new Map<Target, Run>();
        for (const t of order) runs.set(t, await wrk(t, c, PAIR_S, script));
        const pair = { brick: runs.get(targets[0])!, fastify: runs.get(fastify)! };
        paired[c].push(pair);
        process.stdout.write(`pair ${i + 1} ${c} conn: brick ${pair.brick.cpuUsPerCall.toFixed(1)} µs CPU/call p99 ${pair.brick.p99} ms, bare fastify ${pair.fastify.cpuUsPerCall.toFixed(1)} µs p99 ${pair.fastify.p99} ms\n`);
      }
      const conn = connections(c);
      figures.push({
        id: `xmlrpc.trivial.c${c}.cpu_ratio.pairs_vs_bare_fastify`,
        title: `trivial call, ${conn}, server CPU per call ÷ bare fastify's, ${pairs} adjacent pairs`,
        unit: '×',
        better: 'lower',
        brick: { name: 'brick', samples: paired[c].map((x) => x.brick.cpuUsPerCall / x.fastify.cpuUsPerCall) },
        bound: 1.5,
      });
      figures.push({
        id: `xmlrpc.trivial.c${c}.p99_ms.pairs_vs_bare_fastify`,
        title: `trivial call, ${conn}, p99 latency, ${pairs} adjacent pairs`,
        unit: 'ms',
        better: 'lower',
        brick: { name: 'brick', samples: paired[c].map((x) => x.brick.p99) },
        peer: { name: 'bare fastify', samples: paired[c].map((x) => x.fastify.p99) },
        ...(c <= 4 ? { bound: 1 } : {}),
      });
    }
    const errors = Object.entries(results).flatMap(([n, byC]) => Object.entries(byC).filter(([, runs]) => runs.some((x) => x.errors)).map(([c]) => `${n} at ${c}`));
    const notes = [
      `wrk 1 thread, ${rounds} rounds of ${seconds} s per target and connection count, interleaved (each round: 1, 4, 32 connections × every target)`,
      useBin ? `brick is ${useBin.replace(ROOT, '')} serve as shipped: HTTP Basic auth on each call, one log line per call on a pipe that is read, metrics on` : 'dist/brick was missing: brick is the source under tsx (not as shipped)',
      'the Python servers and the bare servers have no auth and no log; bare fastify parses the body as a buffer as brick did; both bare servers answer a fixed reply',
      'SimpleXMLRPCServer as shipped speaks HTTP/1.0 (wrk reconnects for each call); the ThreadingMixIn server was given HTTP/1.1 keep-alive',
      'CPU per call: utime + stime of the server process over the run (10 ms ticks) ÷ the calls wrk counted',
      ...(pairs > 0 ? [`CPU per call ÷ bare fastify's: after the rounds, ${pairs} pairs per connection count of ${PAIR_S} s runs, brick and bare fastify back to back (the order alternating), one ratio per pair; p99 from the same runs`] : []),
      ...(errors.length ? [`non-2xx replies or socket errors: ${errors.join(', ')}`] : []),
    ];
    writeFigures('xmlrpc', figures, { notes, paired });
    const med = (n: string, c: number, k: keyof Run) => stats(results[n][c].map((x) => x[k])).median;
    for (const t of targets)
      process.stdout.write(
        `${t.name.padEnd(34)} ${levels.map((c) => `c${c}: ${med(t.name, c, 'callsPerS').toFixed(0)}/s p99 ${med(t.name, c, 'p99').toFixed(2)} ms ${med(t.name, c, 'cpuUsPerCall').toFixed(0)} µs`).join('  ')}\n`,
      );
  } finally {
    for (const t of targets) t.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    rmSync(bare, { force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(String(e?.stack ?? e) + '\n');
    process.exit(1);
  },
);
