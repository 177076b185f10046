// Render bench/out/*.json into bench/RESULTS.md: the machine, the date, and each figure as
// min/median/max over repeated runs, with the peer measured in the same run and the ratio.
//   node --import tsx bench/report.ts            the whole file from bench/out (npm run bench)
//   node --import tsx bench/report.ts --update   only the areas in bench/out are rewritten; the other
//                                                sections of RESULTS.md stay as they were, and the
//                                                header says which sections were measured when
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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

const update = process.argv.includes('--update');
const resultsPath = join(OUT_DIR, '..', 'RESULTS.md');
const files = readdirSync(OUT_DIR).filter((f) => f.endsWith('.json')).sort();
const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${release()}, Node ${process.version}`;

function section(file: string): { area: string; text: string[] } {
  const data = JSON.parse(readFileSync(join(OUT_DIR, file), 'utf8')) as { area: string; at: string; loadavg?: number[]; figures: Figure[]; notes?: string[] };
  const load = data.loadavg ? ` (load average ${data.loadavg.map((x) => x.toFixed(2)).join(' ')} when written)` : '';
  const lines = [`## ${data.area}`, '', `Measured ${data.at}${load}.`, ''];
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
  return { area: data.area, text: lines };
}

const fresh = files.map(section);
let out: string[];
if (update && existsSync(resultsPath)) {
  // Keep the header and every section whose area was not measured now; replace the others in place
  // (a new area goes in alphabetical order, as the full render orders them).
  const old = readFileSync(resultsPath, 'utf8').split('\n');
  const header: string[] = [];
  const sections: Array<{ area: string; text: string[] }> = [];
  for (const line of old) {
    const m = /^## (.+)$/.exec(line);
    if (m) sections.push({ area: m[1], text: [line] });
    else if (sections.length) sections[sections.length - 1].text.push(line);
    else header.push(line);
  }
  for (const f of fresh) {
    const i = sections.findIndex((x) => x.area === f.area);
    if (i >= 0) sections[i] = f;
    else sections.push(f);
  }
  // The order of the full render: by file name (so footprint-idle.json before footprint.json).
  const key = (x: { area: string }) => `${x.area}.json`;
  sections.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const areas = fresh.map((f) => f.area).join(', ');
  // An earlier update's note keeps the areas not measured now (their machine and load line stays
  // true of them), and goes when all its areas were measured again.
  const now = new Set(fresh.map((f) => f.area));
  for (let i = header.length - 1; i >= 0; i--) {
    const m = /^Sections (.+?)( rewritten on .*)$/.exec(header[i]);
    if (!m) continue;
    const kept = m[1].split(', ').filter((a) => !now.has(a));
    if (kept.length) header[i] = `Sections ${kept.join(', ')}${m[2]}`;
    else header.splice(i, header[i + 1] === '' ? 2 : 1);
  }
  while (header.length && header[header.length - 1] === '') header.pop();
  header.push('', `Sections ${areas} rewritten on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC by \`bench/report.ts --update\` from their bench scripts run alone: ${machine}; ${loadLine()}.`, '');
  out = [...header, ...sections.flatMap((x) => x.text)];
} else {
  out = [
    '# brick benchmark results',
    '',
    `Written by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}.`,
    '',
    `Machine: ${machine}; ${loadLine()}.`,
    '',
    'Each figure: min / median / max over n repeated runs. "vs" is the peer measured in the same run; the ratio compares medians and reads "× better" for brick (above 1) or "× worse" (below 1).',
    '',
    ...fresh.flatMap((x) => x.text),
  ];
}
writeFileSync(resultsPath, out.join('\n'));
process.stdout.write(`bench/RESULTS.md: ${update ? `${fresh.length} areas rewritten` : `${files.length} areas`}\n`);
