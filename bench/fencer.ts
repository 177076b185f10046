// Bench (not a test): how fast the real fencer fences a frozen FUSE pool, against its bound, and what
// probing costs. Prints JSON, then human lines. Figures are printed, never asserted.
//   node --import tsx bench/fencer.ts            (BENCH_RUNS=20 by default; BRICK_BIN to bench the binary)
// Writes bench/out/fencer.json (see bench/lib.ts).
import { readFileSync } from 'node:fs';
import { writeFigures, type Figure } from './lib.js';
import { BindfsPool, FencerRun, SHORT, fuseMissing, removeRoot, sleep, tempRoot, waitFor } from '../test/host/fencer-harness.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const COST_RUNS = Number(process.env.BENCH_COST_RUNS ?? 3);
const COST_S = Number(process.env.BENCH_COST_S ?? 6);
const CLK_TCK = 100;

function procStat(pid: number): { cpuMs: number; childCpuMs: number } {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // fields after "pid (comm) ": state=0 ... utime=11 stime=12 cutime=13 cstime=14
  return { cpuMs: ((+f[11] + +f[12]) * 1000) / CLK_TCK, childCpuMs: ((+f[13] + +f[14]) * 1000) / CLK_TCK };
}
function rssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, min: s[0], median: s[Math.floor(s.length / 2)], max: s[s.length - 1] };
};

async function detectionRun(): Promise<number> {
  const root = tempRoot('bench-fencer');
  const pool = new BindfsPool(root);
  const f = new FencerRun(root, [{ path: pool.mnt }]);
  try {
    await pool.mount();
    f.start();
    await f.armed();
    await sleep(500 + Math.random() * 500); // freeze at a random phase of the probe cycle
    const t0 = performance.now();
    pool.freeze();
    await waitFor('fence', () => f.sysrqText().includes('b'), (SHORT.fence_after_s + 10) * 1000, 5);
    return performance.now() - t0;
  } finally {
    f.kill();
    pool.cleanup();
    removeRoot(root);
  }
}

async function probeCost(pools: number, seconds: number) {
  const root = tempRoot('bench-cost');
  const ps = Array.from({ length: pools }, (_, i) => new BindfsPool(root, `p${i}`));
  const f = new FencerRun(root, ps.map((p) => ({ path: p.mnt })));
  try {
    for (const p of ps) await p.mount();
    f.start();
    await f.armed();
    const pid = f.proc!.pid!;
    const okBefore = f.state().pools.reduce((n: number, p: any) => n + p.probes_ok, 0);
    const a = procStat(pid);
    await sleep(seconds * 1000);
    const b = procStat(pid);
    const st = f.state();
    const probes = st.pools.reduce((n: number, p: any) => n + p.probes_ok, 0) - okBefore;
    return {
      pools,
      seconds,
      probes,
      fencer_cpu_ms_per_s: (b.cpuMs - a.cpuMs) / seconds,
      probe_children_cpu_ms_per_probe: probes ? (b.childCpuMs - a.childCpuMs) / probes : null,
      fencer_rss_kb: rssKb(pid),
      probe_latency_ms: st.pools.map((p: any) => p.probe_latency_ms),
    };
  } finally {
    f.kill();
    for (const p of ps) p.cleanup();
    removeRoot(root);
  }
}

async function main() {
  const why = fuseMissing();
  if (why) {
    console.log(JSON.stringify({ skipped: why }));
    writeFigures('fencer', [], { notes: [`not measured: ${why}`] });
    return;
  }
  const bound = (SHORT.fence_after_s + 1) * 1000;
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push(await detectionRun());
  const costs: Record<number, Awaited<ReturnType<typeof probeCost>>[]> = { 1: [], 4: [] };
  for (let i = 0; i < COST_RUNS; i++) for (const n of [1, 4]) costs[n].push(await probeCost(n, COST_S));
  const result = {
    timings: SHORT,
    freeze_to_fence_ms: { ...stats(times), bound_ms: bound, within_bound: times.filter((t) => t <= bound).length, runs: times.map(Math.round) },
    probe_cost: costs,
  };
  console.log(JSON.stringify(result, null, 2));
  const d = result.freeze_to_fence_ms;
  const program = process.env.BRICK_BIN ? `the binary ${process.env.BRICK_BIN}` : 'the source under tsx (set BRICK_BIN to bench the binary)';
  const figures: Figure[] = [
    {
      id: 'fencer.freeze_to_fence_ms',
      title: `storage freeze (bindfs SIGSTOP) → fence action (sysrq written), probe every ${SHORT.probe_interval_s} s, fence_after_s ${SHORT.fence_after_s}`,
      unit: 'ms',
      better: 'lower',
      brick: { name: 'brick fencer', samples: times },
      bound,
      note: `${d.within_bound}/${d.n} runs within the bound (fence_after_s + 1 s); frozen at a random phase of the probe cycle`,
    },
  ];
  for (const n of [1, 4] as const) {
    const c = costs[n];
    figures.push(
      {
        id: `fencer.probe_cost.${n}pool.cpu_ms_per_s_per_pool`,
        title: `fencer CPU per pool, ${n} pool${n > 1 ? 's' : ''} probed every ${SHORT.probe_interval_s} s`,
        unit: 'ms CPU/s',
        better: 'lower',
        brick: { name: 'brick fencer', samples: c.map((x) => x.fencer_cpu_ms_per_s / n) },
        note: `probe children ${c.map((x) => x.probe_children_cpu_ms_per_probe?.toFixed(2) ?? '–').join(', ')} ms CPU per probe; slowest probe per pool ${c
          .flatMap((x) => x.probe_latency_ms)
          .map((x: any) => (typeof x === 'number' ? x : x?.max))
          .filter((x) => typeof x === 'number')
          .map((x) => Number(x).toFixed(0))
          .join(', ')} ms`,
      },
      {
        id: `fencer.probe_cost.${n}pool.rss_mib`,
        title: `fencer RSS with ${n} pool${n > 1 ? 's' : ''} (after ${COST_S} s probing)`,
        unit: 'MiB',
        better: 'lower',
        brick: { name: 'brick fencer', samples: c.map((x) => x.fencer_rss_kb / 1024) },
      },
    );
  }
  writeFigures('fencer', figures, {
    timings: SHORT,
    notes: [`${program}; ${RUNS} freeze runs; probe cost over ${COST_RUNS} runs of ${COST_S} s for 1 and 4 bindfs pools`],
  });
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
