// Bench (not a test): how fast the real fencer fences a frozen FUSE pool, against its bound, and what
// probing costs. Prints JSON, then human lines. Figures are printed, never asserted.
//   node --import tsx bench/fencer.ts            (BENCH_RUNS=20 by default; BRICK_BIN to bench the binary)
import { readFileSync } from 'node:fs';
import { BindfsPool, FencerRun, SHORT, fuseMissing, removeRoot, sleep, tempRoot, waitFor } from '../test/host/fencer-harness.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
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
    return;
  }
  const bound = (SHORT.fence_after_s + 1) * 1000;
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push(await detectionRun());
  const cost1 = await probeCost(1, 10);
  const cost4 = await probeCost(4, 10);
  const result = {
    timings: SHORT,
    freeze_to_fence_ms: { ...stats(times), bound_ms: bound, within_bound: times.filter((t) => t <= bound).length, runs: times.map(Math.round) },
    probe_cost: [cost1, cost4],
  };
  console.log(JSON.stringify(result, null, 2));
  const d = result.freeze_to_fence_ms;
  console.log(`freeze → fence action over ${d.n} runs: min ${Math.round(d.min)} ms, median ${Math.round(d.median)} ms, max ${Math.round(d.max)} ms; bound ${bound} ms (fence_after_s + 1 s); ${d.within_bound}/${d.n} within`);
  for (const c of result.probe_cost)
    console.log(
      `${c.pools} pool(s), probe every ${SHORT.probe_interval_s} s: fencer ${c.fencer_cpu_ms_per_s.toFixed(1)} ms CPU/s, probe children ${c.probe_children_cpu_ms_per_probe?.toFixed(2)} ms CPU/probe, fencer RSS ${Math.round(c.fencer_rss_kb / 1024)} MiB`,
    );
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
