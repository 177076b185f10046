// Bench (not a test): a trivial XML-RPC call (ping() → "pong") against brick and against Python's
// SimpleXMLRPCServer (single-threaded) and its ThreadingMixIn variant, side by side on this
// machine, with 1 and 32 concurrent keep-alive clients. Figures: calls/s, p50 and p99 latency (ms),
// each as min/median/max over repeated runs. Writes bench/out/xmlrpc.json; prints a table and JSON.
//   node --import tsx bench/xmlrpc.ts [--seconds S] [--runs N]
// Each server runs in its own process; the load generator (Node http, keep-alive agent) is this
// process, the same for every target. brick checks HTTP Basic auth on every call; the Python
// servers have none. SimpleXMLRPCServer speaks HTTP/1.0 (a connection per call, as it ships:
// keep-alive would let one client hold the single thread); the threading variant is given
// HTTP/1.1 keep-alive, its best case.
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { percentile, writeFigures, stats, type Figure } from './lib.js';

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
s.register_function(lambda: 'pong', 'ping')
print(s.server_address[1], flush=True)
s.serve_forever()
`;

const BODY = '<?xml version="1.0"?><methodCall><methodName>ping</methodName><params></params></methodCall>';

async function serveBrick(): Promise<void> {
  // Child mode: a brick server with one trivial method, its port on stdout.
  const { defaultConfig } = await import('../src/config/load.js');
  const { createServer } = await import('../src/agent-extension/server.js');
  const { createLogger } = await import('../src/shared/log.js');
  const { defineMethods } = await import('../src/rpc/catalogue.js');
  const c = defaultConfig();
  Object.assign(c.server, { listen: '127.0.0.1:0', password: 'bench', tls_cert: '', tls_key: '' });
  const methods = defineMethods([{ name: 'ping', params: [], returns: 'string', help: 'pong', handler: async () => 'pong' }]);
  const app = createServer(c, { log: createLogger({ svc: 'agent', level: 'warn' }), methods });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as { port: number };
  process.stdout.write(`${addr.port}\n`);
}

interface Target {
  name: string;
  port: number;
  auth?: string;
  proc: ChildProcess;
}

function start(name: string, cmd: string, args: string[], auth?: string): Promise<Target> {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    proc.on('error', reject);
    proc.on('exit', (c) => reject(new Error(`${name} exited ${c}`)));
    proc.stdout!.once('data', (d) => resolve({ name, port: Number(String(d).trim().split('\n')[0]), auth, proc }));
  });
}

function post(agent: http.Agent, t: Target): Promise<void> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(BODY) };
    if (t.auth) headers.authorization = t.auth;
    const req = http.request({ host: '127.0.0.1', port: t.port, path: '/', method: 'POST', agent, headers }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () => (res.statusCode === 200 && n > 0 ? resolve() : reject(new Error(`${t.name}: HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(BODY);
  });
}

interface RunResult {
  callsPerS: number;
  p50: number;
  p99: number;
  /** Mean and worst latency: a server that makes a few callers wait (a full listen backlog, a
   * SYN retried after 1 s) keeps a low p99 while the mean (clients ÷ calls/s) gives it away. */
  mean: number;
  max: number;
}

async function load(t: Target, clients: number, seconds: number): Promise<RunResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const lat: number[] = [];
  // Warm up.
  for (let i = 0; i < 50; i++) await post(agent, t);
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        await post(agent, t);
        lat.push(performance.now() - s);
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  agent.destroy();
  return {
    callsPerS: lat.length / elapsed,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    mean: lat.reduce((a, b) => a + b, 0) / lat.length,
    max: Math.max(...lat),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' }, runs: { type: 'string', default: '3' } } });
  const seconds = Number(values.seconds);
  const runs = Number(values.runs);
  const self = fileURLToPath(import.meta.url);
  const targets = [
    await start('brick', process.execPath, ['--import', 'tsx', self, '--serve-brick'], 'Basic ' + Buffer.from('oracle:bench').toString('base64')),
    await start('python SimpleXMLRPCServer', 'python3', ['-c', PY_SERVER, 'simple']),
    await start('python ThreadingMixIn', 'python3', ['-c', PY_SERVER, 'threading']),
  ];
  const results: Record<string, Record<string, RunResult[]>> = {};
  try {
    for (const clients of [1, 32]) {
      for (let r = 0; r < runs; r++) {
        for (const t of targets) {
          // Interleaved so drift on the machine hits every target alike.
          const res = await load(t, clients, seconds);
          ((results[t.name] ??= {})[`c${clients}`] ??= []).push(res);
        }
      }
    }
  } finally {
    for (const t of targets) t.proc.kill('SIGKILL');
  }

  const figures: Figure[] = [];
  const series = (name: string, c: string, k: keyof RunResult) => ({ name, samples: results[name][c].map((x) => x[k]) });
  for (const c of ['c1', 'c32']) {
    const n = c.slice(1);
    for (const [peer, tag] of [['python SimpleXMLRPCServer', 'simple'], ['python ThreadingMixIn', 'threading']] as const) {
      figures.push(
        { id: `xmlrpc.trivial.${n}clients.calls_per_s.vs_${tag}`, title: `trivial call, ${n} client${n === '1' ? '' : 's'}, calls/s`, unit: 'calls/s', better: 'higher', brick: series('brick', c, 'callsPerS'), peer: series(peer, c, 'callsPerS') },
        { id: `xmlrpc.trivial.${n}clients.p50_ms.vs_${tag}`, title: `trivial call, ${n} client${n === '1' ? '' : 's'}, p50 latency`, unit: 'ms', better: 'lower', brick: series('brick', c, 'p50'), peer: series(peer, c, 'p50') },
        { id: `xmlrpc.trivial.${n}clients.p99_ms.vs_${tag}`, title: `trivial call, ${n} client${n === '1' ? '' : 's'}, p99 latency`, unit: 'ms', better: 'lower', brick: series('brick', c, 'p99'), peer: series(peer, c, 'p99') },
        { id: `xmlrpc.trivial.${n}clients.mean_ms.vs_${tag}`, title: `trivial call, ${n} client${n === '1' ? '' : 's'}, mean latency`, unit: 'ms', better: 'lower', brick: series('brick', c, 'mean'), peer: series(peer, c, 'mean') },
        { id: `xmlrpc.trivial.${n}clients.max_ms.vs_${tag}`, title: `trivial call, ${n} client${n === '1' ? '' : 's'}, max latency`, unit: 'ms', better: 'lower', brick: series('brick', c, 'max'), peer: series(peer, c, 'max') },
      );
    }
  }
  const notes = [
    `${runs} runs of ${seconds} s per target and concurrency, interleaved; keep-alive Node http client in the bench process`,
    'brick checks HTTP Basic auth on each call; the Python servers have no auth',
    'SimpleXMLRPCServer as shipped speaks HTTP/1.0 (one connection per call); the ThreadingMixIn server was given HTTP/1.1 keep-alive',
    'with 32 clients a low p50/p99 next to few calls/s means some callers waited far longer than the rest: compare the mean and max latency (mean ≈ clients ÷ calls/s)',
    'brick here is the source under tsx (src/agent-extension/server.ts with one ping method), not dist/brick; the footprint and upload areas measure the binary',
  ];
  writeFigures('xmlrpc', figures, { notes });

  // A human table (medians) and the raw JSON.
  const rows = targets.map((t) => {
    const m = (c: string, k: keyof RunResult) => stats(results[t.name][c].map((x) => x[k])).median;
    return [t.name, m('c1', 'callsPerS').toFixed(0), m('c1', 'p50').toFixed(3), m('c1', 'p99').toFixed(3), m('c32', 'callsPerS').toFixed(0), m('c32', 'p50').toFixed(3), m('c32', 'p99').toFixed(3)];
  });
  const head = ['server', '1 client calls/s', 'p50 ms', 'p99 ms', '32 clients calls/s', 'p50 ms', 'p99 ms'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((x, i) => (i ? x.padStart(w[i]) : x.padEnd(w[i]))).join('  ');
  process.stdout.write('\n' + line(head) + '\n' + line(w.map((n) => '-'.repeat(n))) + '\n' + rows.map(line).join('\n') + '\n\n');
  process.stdout.write(JSON.stringify({ area: 'xmlrpc', medians: Object.fromEntries(rows.map((r) => [r[0], { c1: { calls_per_s: +r[1], p50_ms: +r[2], p99_ms: +r[3] }, c32: { calls_per_s: +r[4], p50_ms: +r[5], p99_ms: +r[6] } }])), notes }, null, 2) + '\n');
}

if (process.argv.includes('--serve-brick')) {
  serveBrick().catch((e) => {
    process.stderr.write(String(e?.stack ?? e) + '\n');
    process.exit(2);
  });
} else {
  main().then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(String(e?.stack ?? e) + '\n');
      process.exit(1);
    },
  );
}
