// Footprint of the single binary (not a test: figures are printed, never asserted):
//   - dist/brick size
//   - `brick --version` start-up time, SEA vs the same bundle under plain node
//   - cold start to the first served XML-RPC call (spawn `brick serve` -> system.listMethods answered),
//     beside the same bundle under plain node and a bare fastify server built the same way
//     (bench/fastify-floor.ts: the floor of a start on this stack)
//   - idle RSS of `brick serve` after that first call
// Writes bench/out/footprint.json (see bench/lib.ts) and prints one line per figure plus the JSON.
//   node --import tsx bench/footprint.ts [runs]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evict, writeFigures, stats, type Figure } from './lib.js';
import { buildFastifyFloor } from './fastify-floor.js';
import { freePort } from '../test/fixtures/serve-process.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'dist', 'brick');
const bundle = join(root, 'dist', 'brick.cjs');
const node = process.execPath; // the pinned Node 24 (node_modules/.bin first on PATH)
const RUNS = Number(process.argv[2] ?? 11);
// As under systemd: PATH only. (An environment with NODE_*/SSL_* variables makes the binary
// re-execute itself without them first, src/cli/runtime-env.ts: a second start.)
const cleanEnv = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };

function buildBinary(): void {
  execFileSync(node, [join(root, 'scripts', 'build-binary.mjs')], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 });
}

function timeVersion(cmd: string, args: string[]): number {
  const t0 = performance.now();
  execFileSync(cmd, [...args, '--version'], { stdio: 'ignore', timeout: 30_000, env: cleanEnv });
  return performance.now() - t0;
}

function post(url: string, body: string, auth: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'text/xml', authorization: `Basic ${Buffer.from(auth).toString('base64')}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** CPU (user + system) of this process's waited-for children so far, ms. */
function childCpuMs(): number {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[13]) + Number(f[14])) * 10; // cutime + cstime (fields 16, 17)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Spawn `serve`, wait for its URL in the log, make one call; the time from spawn to the reply and the RSS 2 s later. */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

async function coldStart(cmd: string, args: string[], config: string): Promise<{ ms: number; rss: number; cpu: number }> {
  const t0 = performance.now();
  const child: ChildProcess = spawn(cmd, [...args, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'], env: cleanEnv });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error('serve did not log its URL within 30 s')), 30_000);
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const m = /"url":"(http:\/\/[^"]+)"/.exec(buf);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.once('exit', (code) => reject(new Error(`serve exited ${code} before listening`)));
    });
    const status = await post(url, '<?xml version="1.0"?><methodCall><methodName>system.listMethods</methodName><params/></methodCall>', 'oracle:bench');
    const ms = performance.now() - t0;
    const cpu = cpuMs(child.pid!);
    if (status !== 200) throw new Error(`system.listMethods answered HTTP ${status}`);
    child.stdout!.resume();
    await sleep(2000);
    return { ms, rss: rssMiB(child.pid!), cpu };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  }
}

async function main(): Promise<void> {
  // run-all.sh builds dist/brick first when it is stale (and sets BENCH_NO_BUILD); alone, build it here.
  if (!process.env.BENCH_NO_BUILD) buildBinary();
  const dir = mkdtempSync(join(tmpdir(), 'brick-footprint-'));
  try {
    const config = join(dir, 'brick.toml');
    writeFileSync(config, '[server]\nlisten = "127.0.0.1:0"\ntls_cert = ""\ntls_key = ""\npassword = "bench"\n[fencer]\nwatchdog_device = ""\n');

    const size = statSync(bin).size / 1048576;
    const sea: number[] = [];
    const plain: number[] = [];
    // Evicted, then read back by a start (warm the page cache): as a binary installed from a package
    // is cached, not as build-binary's write left it (lib.ts evict).
    evict(bin);
    timeVersion(bin, []);
    timeVersion(node, [bundle]);
    const floor: number[] = [];
    const floorCpu: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      sea.push(timeVersion(bin, []));
      plain.push(timeVersion(node, [bundle]));
      const t0 = performance.now();
      const before = childCpuMs();
      execFileSync(node, ['-e', '0'], { stdio: 'ignore', timeout: 30_000, env: cleanEnv });
      floor.push(performance.now() - t0);
      floorCpu.push(childCpuMs() - before);
    }

    const floorBin = await buildFastifyFloor(dir, node, await freePort());
    const seaServe: { ms: number; rss: number; cpu: number }[] = [];
    const plainServe: { ms: number; rss: number; cpu: number }[] = [];
    const floorServe: { ms: number; rss: number; cpu: number }[] = [];
    const serveRuns = Math.max(3, Math.ceil(RUNS / 2));
    evict(floorBin);
    await coldStart(floorBin, [], config); // read back into the page cache, as dist/brick's above
    for (let i = 0; i < serveRuns; i++) {
      seaServe.push(await coldStart(bin, [], config));
      plainServe.push(await coldStart(node, [bundle], config));
      floorServe.push(await coldStart(floorBin, [], config));
    }

    const figures: Figure[] = [
      {
        id: 'footprint.binary_size',
        title: 'dist/brick size (Node 24 SEA, stripped before injection)',
        unit: 'MiB',
        better: 'lower',
        brick: { name: 'dist/brick', samples: [size] },
      },
      {
        id: 'footprint.version_startup',
        title: 'brick --version, process start to exit',
        unit: 'ms',
        better: 'lower',
        brick: { name: 'dist/brick (SEA)', samples: sea },
        peer: { name: 'node dist/brick.cjs', samples: plain },
      },
      {
        id: 'footprint.cold_start_first_call',
        title: 'brick serve: spawn to first system.listMethods reply (HTTP, loopback, binary in the page cache)',
        unit: 'ms',
        better: 'lower',
        bound: 150,
        brick: { name: 'dist/brick (SEA)', samples: seaServe.map((s) => s.ms) },
        peer: { name: 'node dist/brick.cjs', samples: plainServe.map((s) => s.ms) },
      },
      {
        id: 'footprint.cold_start_vs_fastify',
        title: 'spawn to first reply: brick serve vs a bare fastify server built the same way (SEA of the same node and flags, warm code cache; POST routes only, no logger, auth, metrics or config)',
        unit: 'ms',
        better: 'lower',
        bound: 150,
        brick: { name: 'dist/brick (SEA)', samples: seaServe.map((s) => s.ms) },
        peer: { name: 'bare fastify SEA', samples: floorServe.map((s) => s.ms) },
      },
      {
        id: 'footprint.cold_start_first_call_cpu',
        title: 'brick serve: CPU (user + system) used from spawn to the first reply (what the start costs whatever the load)',
        unit: 'ms',
        better: 'lower',
        brick: { name: 'dist/brick (SEA)', samples: seaServe.map((s) => s.cpu) },
        peer: { name: 'node dist/brick.cjs', samples: plainServe.map((s) => s.cpu) },
      },
      {
        id: 'footprint.idle_rss',
        title: 'brick serve idle RSS, 2 s after the first call',
        unit: 'MiB',
        better: 'lower',
        brick: { name: 'dist/brick (SEA)', samples: seaServe.map((s) => s.rss) },
        peer: { name: 'node dist/brick.cjs', samples: plainServe.map((s) => s.rss) },
      },
    ];
    const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim().split('\n');
    writeFigures('footprint', figures, {
      notes: [
        `${version.join(', ')}; ${RUNS} --version runs, ${serveRuns} serve cold starts, interleaved with the same bundle under plain node and the bare fastify SEA (bench/fastify-floor.ts)`,
        `the bare fastify SEA, CPU from spawn to its first reply: ${floorServe.map((x) => x.cpu.toFixed(0)).join(', ')} ms; idle RSS 2 s later ${floorServe.map((x) => x.rss.toFixed(1)).join(', ')} MiB`,
        'started with a clean environment (PATH only), as systemd starts it; the SEA runs its bundle from the V8 code cache made at build time under the same flags',
        `plain node -e 0 on the same runtime, as the floor of any start: ${floor.map((x) => x.toFixed(0)).join(', ')} ms wall, ${floorCpu.map((x) => x.toFixed(0)).join(', ')} ms CPU`,
      ],
    });
    const summary = Object.fromEntries(figures.map((f) => [f.id, { unit: f.unit, brick: stats(f.brick.samples), peer: f.peer ? stats(f.peer.samples) : undefined }]));
    process.stdout.write(JSON.stringify(summary) + '\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`footprint: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
