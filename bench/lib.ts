// Shared by every bench script: each figure is a set of samples (repeated runs), reported as
// min/median/max, with an optional peer measured in the same run (the ratio is computed here).
// Each script writes bench/out/<area>.json; bench/report.ts turns them all into bench/RESULTS.md.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

export interface Series {
  name: string;
  samples: number[];
}

export interface Figure {
  /** Stable id, e.g. "xmlrpc.trivial.1client.calls_per_s". */
  id: string;
  title: string;
  unit: string;
  /** Which direction is better; decides how the ratio reads. */
  better: 'lower' | 'higher';
  brick: Series;
  peer?: Series;
  /** The configured bound where there is one (e.g. the fencer's fence_after_s + 1 s). */
  bound?: number;
  note?: string;
}

export interface Stats {
  n: number;
  min: number;
  median: number;
  max: number;
}

export function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  if (!n) return { n: 0, min: NaN, median: NaN, max: NaN };
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  return { n, min: s[0], median, max: s[n - 1] };
}

/** brick's advantage as "N× better" (>1 means brick is better), from the medians. */
export function ratio(f: Figure): number | undefined {
  if (!f.peer) return undefined;
  const b = stats(f.brick.samples).median;
  const p = stats(f.peer.samples).median;
  if (!(b > 0 && p > 0)) return undefined;
  return f.better === 'lower' ? p / b : b / p;
}

export function percentile(samples: number[], p: number): number {
  const s = [...samples].sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

const fmt = (x: number) => (Number.isFinite(x) ? (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toPrecision(3)) : '–');

export function describeFigure(f: Figure): string {
  const b = stats(f.brick.samples);
  let line = `${f.title}: ${f.brick.name} ${fmt(b.min)}/${fmt(b.median)}/${fmt(b.max)} ${f.unit} (min/median/max, n=${b.n})`;
  if (f.peer) {
    const p = stats(f.peer.samples);
    line += `; ${f.peer.name} ${fmt(p.min)}/${fmt(p.median)}/${fmt(p.max)}`;
    const r = ratio(f);
    if (r !== undefined) line += `; brick ${fmt(r)}× ${r >= 1 ? 'better' : 'worse'}`;
  }
  if (f.bound !== undefined) line += `; bound ${fmt(f.bound)} ${f.unit}`;
  return line;
}

export const OUT_DIR = join(dirname(fileURLToPath(import.meta.url)), 'out');

/** Write bench/out/<area>.json and print one human line per figure. */
export function writeFigures(area: string, figures: Figure[], extra: Record<string, unknown> = {}): void {
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(join(OUT_DIR, `${area}.json`), JSON.stringify({ area, at: new Date().toISOString(), loadavg: loadavg(), figures, ...extra }, null, 2) + '\n');
  for (const f of figures) process.stdout.write(describeFigure(f) + '\n');
}

/**
 * Drop a file's pages from the page cache (GNU dd: iflag=nocache with count=0 covers the whole file).
 * Also before measuring the RSS of a binary just built: the pages its build wrote are cached in
 * large folios, which a start then maps whole (dist/brick fresh from build-binary: 64 MiB file-backed
 * RSS 2 s after a call; evicted and read back by a start: 45 MiB).
 */
export function evict(file: string): void {
  // A page not yet written back is not dropped: a binary built a moment ago stayed as its build
  // wrote it. Write the file back first (GNU sync FILE: fsync).
  const w = spawnSync('sync', [file]);
  if (w.status !== 0) throw new Error(`could not write ${file} back before evicting it: ${w.stderr}`);
  const r = spawnSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
  if (r.status !== 0) throw new Error(`could not evict ${file} from the page cache: ${r.stderr}`);
}
