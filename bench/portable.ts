// The portable binary beside today's (not a test: figures only):
//   - size: dist/brick vs the portable set (patched binary + /usr/lib/brick/lib + /usr/lib/brick/bin)
//   - cold start: `brick --version` of dist/brick (host loader, host glibc) vs the portable binary in a
//     chroot of dist/portable (its own loader and glibc), each in a chroot-free / chroot exec alike
//   - cold start to the first served call is footprint.ts's figure for dist/brick; here the same
//     `--version` path is what differs (the loader and libraries), so that is what is compared.
// Writes bench/out/portable.json.   node --import tsx bench/portable.ts [runs]
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFigures, type Figure } from './lib.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.argv[2] ?? 11);
const bin = join(root, 'dist', 'brick');
const portable = join(root, 'dist', 'portable');

if (!existsSync(join(portable, 'usr/bin/brick')) || statSync(join(portable, 'usr/bin/brick')).mtimeMs < statSync(bin).mtimeMs) {
  execFileSync(process.execPath, [join(root, 'scripts/build-portable.mjs'), '--use-binary'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600_000 });
}

function du(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? du(join(dir, e.name)) : statSync(join(dir, e.name)).size;
  return n;
}
const MiB = (b: number) => b / 1048576;

function time(cmd: string, args: string[]): number {
  const t0 = performance.now();
  execFileSync(cmd, args, { stdio: 'ignore', timeout: 30_000, env: { PATH: '/nonexistent' } });
  return performance.now() - t0;
}

const today: number[] = [];
const port: number[] = [];
time(bin, ['--version']);
time('/usr/sbin/chroot', [portable, '/usr/bin/brick', '--version']);
for (let i = 0; i < RUNS; i++) {
  // Interleaved, so load on the machine hits both alike; both through chroot(8) for the same exec cost.
  today.push(time('/usr/sbin/chroot', ['/', bin, '--version']));
  port.push(time('/usr/sbin/chroot', [portable, '/usr/bin/brick', '--version']));
}

const figures: Figure[] = [
  {
    id: 'portable.size_mib',
    title: 'size on disk',
    unit: 'MiB',
    better: 'lower',
    brick: { name: 'portable (usr/bin/brick + usr/lib/brick)', samples: [MiB(statSync(join(portable, 'usr/bin/brick')).size + du(join(portable, 'usr/lib/brick')))] },
    peer: { name: 'dist/brick (host glibc >= 2.28)', samples: [MiB(statSync(bin).size)] },
    note: `of which the private libraries ${MiB(du(join(portable, 'usr/lib/brick/lib'))).toFixed(1)} MiB and the carried tools ${MiB(du(join(portable, 'usr/lib/brick/bin'))).toFixed(1)} MiB`,
  },
  {
    id: 'portable.version_ms',
    title: 'cold start: brick --version',
    unit: 'ms',
    better: 'lower',
    brick: { name: 'portable (own loader + glibc 2.36)', samples: port },
    peer: { name: 'dist/brick (host loader + glibc)', samples: today },
  },
];
writeFigures('portable', figures, { notes: [`${RUNS} runs each, interleaved`] });
