// The portable binary on an old dom0, as near as this machine gets: ONLY what the legacy RPM installs
// (rpm2cpio of dist/packages/brick-*.legacy.x86_64.rpm) in an otherwise empty root — no libc, no
// coreutils, no iproute2 of the host — run in a private mount namespace with /proc, /dev and /sys
// bound, under ../shared/tools/oldkernel (every system call newer than kernel 4.1, or 3.0 with a 2.6
// uname, returns ENOSYS). There: --version, check-config, `serve` answering Python's xmlrpc.client
// from outside the root, and a fencer cycle (armed on a tmpfs pool → pool remounted read-only →
// the `command` fence within fence_after_s + 1 s). /proc/PID/maps of both must show no host library.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { freePort } from '../fixtures/serve-process.js';
import { RR_CHRT } from './fencer-harness.js';
import { buildLock } from '../fixtures/build-lock.js';
import { ok, pkgVersion, repoRoot, run } from '../fixtures/exec.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const repo = repoRoot;
const OLDKERNEL = join(repo, '..', 'shared', 'tools', 'oldkernel', 'oldkernel.py');
const PY = '/usr/bin/python3'; // the system python (python3-seccomp), whatever PATH says
const CI = process.env.CI === 'true';
const pkg = { version: pkgVersion };

async function waitFor<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, stepMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
const missing = [
  ...['rpm2cpio', 'cpio', 'unshare', 'nsenter', 'setarch', 'chroot'].filter((t) => !['/usr/bin', '/bin', '/usr/sbin', '/sbin'].some((d) => existsSync(join(d, t)))),
  ...(existsSync(OLDKERNEL) ? [] : ['../shared/tools/oldkernel']),
];
const skip = missing.length && !CI ? `missing ${missing.join(', ')}` : false;

let work: string;
let rootfs: string;

before(async () => {
  if (missing.length && CI) throw new Error(`portable test prerequisites missing: ${missing.join(', ')}`);
  if (skip) return;
  const seccomp = await run(PY, ['-c', 'import seccomp']);
  assert.equal(seccomp.code, 0, 'python3-seccomp is needed by oldkernel.py (scripts/install-test-deps.sh)');
  work = mkdtempSync(join(tmpdir(), 'brick-oldkernel-'));
  // One build at a time (packages.test.ts builds the same files).
  await ok('flock', [buildLock(repo), 'node', 'scripts/build-packages.mjs', '--use-binary', '--only=legacy'], { timeoutMs: 1_500_000 });
  rootfs = join(work, 'root');
  mkdirSync(rootfs);
  const rpm = join(repo, 'dist/packages', `brick-${pkg.version}-1.legacy.x86_64.rpm`);
  await ok('sh', ['-c', 'rpm2cpio "$1" | (cd "$2" && cpio -idm --quiet)', 'sh', rpm, rootfs]);
  for (const d of ['proc', 'dev', 'sys', 'tmp', 'pool']) mkdirSync(join(rootfs, d), { recursive: true });
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

type Kernel = '4.1' | '3.0';
/** argv that runs COMMAND... in the root, in a private mount namespace, under the old kernel. */
function inRoot(kernel: Kernel, command: string[], opts: { pool?: boolean } = {}): [string, string[]] {
  const old = kernel === '3.0' ? ['/usr/bin/setarch', 'x86_64', '--uname-2.6', PY, OLDKERNEL, '3.0'] : [PY, OLDKERNEL, '4.1'];
  const script = [
    'set -e',
    'R="$1"',
    'for d in proc dev sys; do mount --rbind "/$d" "$R/$d"; done',
    // The pool: its own filesystem (not the root's device), as an NFS mount would be.
    ...(opts.pool ? ['mount -t tmpfs -o size=4m brick-pool "$R/pool"'] : []),
    'shift',
    'exec "$@"',
  ].join('\n');
  return ['/usr/bin/unshare', ['--mount', '--propagation', 'private', '/bin/sh', '-c', script, 'sh', rootfs, ...old, '/usr/sbin/chroot', rootfs, ...command]];
}

function writeConfig(name: string, port: number, kernel: Kernel): string {
  const toml = [
    '[server]',
    `listen = "127.0.0.1:${port}"`,
    'password = "old-kernel-secret"',
    'generate_credentials = false',
    'tls_cert = ""',
    'tls_key = ""',
    '[fencer]',
    'action = "command"',
    `command = ["/usr/lib/brick/bin/mkdir", "/fenced-${kernel}"]`,
    'probe_interval_s = 0.5',
    'probe_timeout_s = 1',
    'fence_after_s = 3',
    'watchdog_device = ""',
    'state_dir = "/var/run/brick"',
    'marker_dir = "/var/lib/brick"',
    'host_id = "old-dom0"',
    'vm_query = "none"',
    '[[fencer.pool]]',
    'path = "/pool"',
    'heartbeat = "ovm"',
    'fence_when = "always"',
  ].join('\n');
  writeFileSync(join(rootfs, 'etc/brick', name), toml + '\n');
  return `/etc/brick/${name}`;
}

/** Every file a process maps is brick's own (the binary or /usr/lib/brick): no host library. */
function assertNoHostLibrary(pid: number): void {
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
  const files = new Set(
    maps
      .split('\n')
      .map((l) => l.split(/\s+/).slice(5).join(' '))
      .filter((p) => p.startsWith('/')),
  );
  const strip = (p: string) => (p.startsWith(rootfs) ? p.slice(rootfs.length) : p);
  const foreign = [...files].map(strip).filter((p) => !(p === '/usr/bin/brick' || p.startsWith('/usr/lib/brick/') || p.startsWith('/dev/') || p.startsWith('/memfd:') || /^\/SYSV[0-9a-f]{8} \(deleted\)$/.test(p)));
  assert.deepEqual(foreign, [], `pid ${pid} maps files that are not brick's:\n${[...files].join('\n')}`);
  assert.ok([...files].map(strip).includes('/usr/lib/brick/lib/libc.so.6'), [...files].join('\n'));
}

function collect(p: ChildProcess): string[] {
  const lines: string[] = [];
  let buf = '';
  const on = (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  };
  p.stdout!.on('data', on);
  p.stderr!.on('data', on);
  return lines;
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
  await gone;
  clearTimeout(t);
}

for (const kernel of ['4.1', '3.0'] as const) {
  test(`kernel ${kernel}: --version and check-config in the empty root`, { skip }, async () => {
    const [c, a] = inRoot(kernel, ['/usr/bin/brick', '--version']);
    const v = await ok(c, a);
    assert.match(v, new RegExp(`^brick ${pkg.version.replace(/\./g, '\\.')}\nnode v24\\.`));
    const [c2, a2] = inRoot(kernel, ['/usr/bin/brick', 'check-config', '--config', '/etc/brick/brick.toml']);
    assert.match(await ok(c2, a2), /^\/etc\/brick\/brick\.toml: ok/);
  });

  test(`kernel ${kernel}: serve in the empty root answers Python's xmlrpc.client from outside; no host library mapped`, { skip }, async () => {
    const port = await freePort();
    const cfg = writeConfig(`serve-${kernel}.toml`, port, kernel);
    const [c, a] = inRoot(kernel, ['/usr/bin/brick', 'serve', '--config', cfg]);
    const p = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = collect(p);
    try {
      await waitFor('listening', () => lines.some((l) => /listening/i.test(l)), 60_000).catch((e) => {
        throw new Error(`${e.message}\n${lines.join('\n')}`);
      });
      const client = [
        'import json, sys, xmlrpc.client',
        `s = xmlrpc.client.ServerProxy("http://oracle:old-kernel-secret@127.0.0.1:${port}/RPC2")`,
        'caps = s.host_capabilities()',
        'print(json.dumps({"methods": len(s.system.listMethods()), "brick": caps["brick_version"], "tools": {t["name"]: t["source"] for t in caps["host_tools"]}}))',
      ].join('\n');
      const out = JSON.parse(await ok(PY, ['-c', client]));
      assert.ok(out.methods > 20, JSON.stringify(out));
      assert.equal(out.brick, pkg.version);
      // In a root with no iproute2/coreutils, brick's own copies are what it runs; virsh/xl are simply missing.
      assert.equal(out.tools.ip, 'brick');
      assert.equal(out.tools.dd, 'brick');
      assert.equal(out.tools.virsh, 'missing');
      assertNoHostLibrary(p.pid!);
    } finally {
      await stop(p);
    }
    assert.ok(!lines.some((l) => /ENOSYS|Assertion failed|Aborted/.test(l)), lines.join('\n'));
  });

  test(`kernel ${kernel}: a fencer cycle in the empty root: armed, pool made read-only, command fence within fence_after_s + 1 s`, { skip }, async (t) => {
    const port = await freePort();
    const cfg = writeConfig(`fencer-${kernel}.toml`, port, kernel);
    const fenced = join(rootfs, `fenced-${kernel}`);
    rmSync(fenced, { recursive: true, force: true });
    rmSync(join(rootfs, 'var/run/brick/fencer.json'), { force: true });
    rmSync(join(rootfs, 'var/lib/brick/fence-marker.json'), { force: true });
    // As the OL6 upstart job and the inittab line start it: through the chrt the package carries,
    // round-robin realtime with its children normal (when this machine allows realtime at all). At
    // normal priority on a loaded machine the fence bound below measured the scheduler, not brick.
    const rr = RR_CHRT ? ['/usr/lib/brick/bin/chrt', '-R', '-r', '50'] : [];
    const [c, a] = inRoot(kernel, [...rr, '/usr/bin/brick', 'fencer', '--config', cfg], { pool: true });
    const p = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = collect(p);
    try {
      const state = () => {
        try {
          return JSON.parse(readFileSync(join(rootfs, 'var/run/brick/fencer.json'), 'utf8'));
        } catch {
          return undefined;
        }
      };
      await waitFor('the pool armed', () => state()?.pools?.[0]?.armed, 60_000).catch((e) => {
        throw new Error(`${e.message}\n${lines.join('\n')}`);
      });
      assert.ok(!existsSync(fenced), 'no fence while the pool answers');
      assertNoHostLibrary(p.pid!);
      // The pool stops taking writes: EROFS from every heartbeat write from now on.
      // (EBUSY while a probe's dd has its file open for writing: retry until the remount takes.)
      await waitFor('the pool remounted read-only', async () => (await run('/usr/bin/nsenter', ['--target', String(p.pid), '--mount', '/bin/mount', '-o', 'remount,ro', join(rootfs, 'pool')])).code === 0, 10_000, 20);
      const t0 = performance.now();
      await waitFor('the fence command', () => existsSync(fenced), 15_000, 20);
      const tookMs = performance.now() - t0;
      assert.ok(tookMs <= 3000 + 1000, `fenced ${Math.round(tookMs)} ms after the pool went read-only (fence_after_s = 3)`);
      // The marker goes out before the fence, which waits on it at most MARKER_DEADLINE_MS
      // (marker.ts): on a loaded machine its children (normal priority) can miss that, the fence
      // goes ahead (said in the log), and the marker lands when they finish (as fencer-errno checks).
      const markerFile = join(rootfs, 'var/lib/brick/fence-marker.json');
      const MISSED = /the fence marker was not written within its deadline/;
      await waitFor('the marker, or the line saying it missed its deadline', () => existsSync(markerFile) || lines.some((l) => MISSED.test(l)), 5000, 20);
      if (lines.some((l) => MISSED.test(l))) t.diagnostic('the marker missed its deadline (loaded machine): the fence went ahead; waiting for it to land');
      else assert.ok(existsSync(markerFile), `the marker is written before the fence: ${lines.join('\n')}`);
      await waitFor('the fence marker', () => existsSync(markerFile), 10_000, 20);
      const marker = JSON.parse(readFileSync(markerFile, 'utf8'));
      assert.equal(marker.pool, '/pool');
      // (Not before the expiry: fence_after_s counts from the start of the last verified probe, which
      // may be an interval plus a probe's latency before the remount; test/host/fencer-*.test.ts time that.)
    } finally {
      await stop(p);
    }
    assert.ok(!lines.some((l) => /Assertion failed|Aborted/.test(l)), lines.join('\n'));
  });
}

test('the root held nothing but what the package installs (plus the test configs, mount points and fence results)', { skip }, () => {
  const top = readdirSync(rootfs).sort();
  assert.deepEqual(top.filter((d) => !d.startsWith('fenced-')), ['dev', 'etc', 'pool', 'proc', 'sys', 'tmp', 'usr', 'var']);
  assert.ok(!existsSync(join(rootfs, 'lib')) && !existsSync(join(rootfs, 'lib64')) && !existsSync(join(rootfs, 'bin')));
});
