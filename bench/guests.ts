// Real guests under libvirt (test/e2e/guests.test.ts), repeated for min/median/max: domain_define →
// the guest's init on the console and → first ping on the libvirt network (KVM path), dpdk_add_port
// ×2 → first ping between two guests through OVS-DPDK vhost-user and dpdk_del_port → silence (DPDK
// path), and how long the whole test file takes (what it adds to `npm test`, the guest image being
// built already). Each run is the test itself; its figures (bench/out/guests.json) are collected
// after every run and written back with all samples. Not a test: it never fails on a time.
//   node --import tsx bench/guests.ts [runs, default 1: one run takes 4-6 minutes on 2 loaded cores]
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { OUT_DIR, type Figure } from './lib.js';
import { recordE2e } from '../test/e2e/support.js';
import { ensureImage } from '../test/e2e/image.js';

const FILE = join(OUT_DIR, 'guests.json');

async function main(): Promise<void> {
  const runs = Math.max(1, Number(process.argv[2] ?? 1));
  await ensureImage(); // built once, outside the timed runs (npm test shares it with the other e2e files)
  const samples = new Map<string, { figure: Figure; samples: number[] }>();
  const add = (f: Figure, v: number) => {
    const e = samples.get(f.id) ?? { figure: f, samples: [] };
    e.samples.push(v);
    samples.set(f.id, e);
  };
  const fileFigure: Figure = {
    id: 'guests.test_file_s',
    title: 'test/e2e/guests.test.ts, whole file: the e2e harness ensureImage (image cached; it rebuilds the brick binary, about 50 s here, as every e2e file does), libvirtd and OVS-DPDK start, both paths, teardown',
    unit: 's',
    better: 'lower',
    brick: { name: 'brick', samples: [] },
  };
  const loads: number[] = [];
  for (let i = 0; i < runs; i++) {
    rmSync(FILE, { force: true });
    const t0 = performance.now();
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=dot', 'test/e2e/guests.test.ts'], {
      cwd: join(OUT_DIR, '..', '..'),
      stdio: ['ignore', 'pipe', 'inherit'],
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    const took = Math.round(performance.now() - t0) / 1000;
    loads.push(loadavg()[0]);
    if (r.status !== 0) {
      process.stderr.write(`bench guests: run ${i + 1} failed (exit ${r.status}); its figures are not used\n${r.stdout.split('\n').slice(-40).join('\n')}\n`);
      continue;
    }
    add(fileFigure, took);
    if (!existsSync(FILE)) continue;
    const doc = JSON.parse(readFileSync(FILE, 'utf8')) as { figures: Figure[] };
    for (const f of doc.figures) for (const v of f.brick.samples) add(f, v);
  }
  const figures = [...samples.values()].map(({ figure, samples: s }) => ({ ...figure, brick: { name: 'brick', samples: s } }));
  rmSync(FILE, { force: true });
  recordE2e(
    figures,
    `guests: bench/guests.ts, ${runs} run(s) of the test file; qemu TCG (no KVM here), 256 MB guests booting the e2e kernel and initramfs; load average (1 min) after each run: ${loads.map((l) => l.toFixed(2)).join(', ')}`,
    'guests',
  );
}

main().catch((e) => {
  process.stderr.write(`bench guests: ${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
