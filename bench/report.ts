// Render bench/out/*.json into bench/RESULTS.md: the machine, the date, and each figure as
// min/median/max over repeated runs, with the peer measured in the same run and the ratio.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, release, loadavg } from 'node:os';
import { join } from 'node:path';
import { OUT_DIR, stats, ratio, type Figure } from './lib.js';

const fmt = (x: number | undefined) =>
  x === undefined || !Number.isFinite(x) ? '–' : Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toPrecision(3);

// Other work on the machine (tests, builds) skews timings: say how loaded it was. run-all.sh
// records the load average when the run starts (BENCH_LOADAVG_START); this adds the one at the end.
function loadLine(): string {
  const now = loadavg().map((x) => x.toFixed(2)).join(' ');
  const start = process.env.BENCH_LOADAVG_START?.trim().split(/\s+/).slice(0, 3).join(' ');
  const took = process.env.BENCH_STARTED_AT ? ` (the whole run took ${Math.round(Date.now() / 1000 - Number(process.env.BENCH_STARTED_AT))} s)` : '';
  return `load average (1/5/15 min) ${start ? `${start} at the start, ` : ''}${now} at the end${took}`;
}

const files = readdirSync(OUT_DIR).filter((f) => f.endsWith('.json')).sort();
const lines: string[] = [
  '# brick benchmark results',
  '',
  `Written by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}.`,
  '',
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${release()}, Node ${process.version}; ${loadLine()}.`,
  '',
  'Each figure: min / median / max over n repeated runs. "vs" is the peer measured in the same run; the ratio compares medians and reads "× better" for brick (above 1) or "× worse" (below 1).',
  '',
];
for (const file of files) {
  const data = JSON.parse(readFileSync(join(OUT_DIR, file), 'utf8')) as { area: string; at: string; loadavg?: number[]; figures: Figure[]; notes?: string[] };
  const load = data.loadavg ? ` (load average ${data.loadavg.map((x) => x.toFixed(2)).join(' ')} when written)` : '';
  lines.push(`## ${data.area}`, '', `Measured ${data.at}${load}.`, '');
  lines.push('| figure | unit | brick min / median / max (n) | peer | peer min / median / max | ratio | bound |', '|---|---|---|---|---|---|---|');
  for (const f of data.figures) {
    const b = stats(f.brick.samples);
    const p = f.peer ? stats(f.peer.samples) : undefined;
    const r = ratio(f);
    lines.push(
      `| ${f.title} | ${f.unit} | ${fmt(b.min)} / ${fmt(b.median)} / ${fmt(b.max)} (${b.n}) | ${f.peer?.name ?? ''} | ${
        p ? `${fmt(p.min)} / ${fmt(p.median)} / ${fmt(p.max)}` : ''
      } | ${r === undefined ? '' : `${fmt(r)}× ${r >= 1 ? 'better' : 'worse'}`} | ${f.bound === undefined ? '' : fmt(f.bound)} |`,
    );
  }
  const notes = [...(data.notes ?? []), ...data.figures.filter((f) => f.note).map((f) => `${f.title}: ${f.note}`)];
  if (notes.length) lines.push('', ...notes.map((n) => `- ${n}`));
  lines.push('');
}
writeFileSync(join(OUT_DIR, '..', 'RESULTS.md'), lines.join('\n'));
process.stdout.write(`bench/RESULTS.md: ${files.length} areas\n`);
