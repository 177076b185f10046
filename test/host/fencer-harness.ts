// Shared by the fencer's host tests and bench/fencer.ts: a real FUSE pool (bindfs, frozen with
// SIGSTOP to stand in for a hung NFS server) and the real fencer program with short timings, its
// watchdog device and sysrq trigger pointed at plain files the test reads.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterOutput } from '../fixtures/child-output.js';
import { parseStat } from '../../src/shared/proc-stat.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * chrt, when this machine lets a process run round-robin realtime (root, RT runtime available), as
 * the packages run the fencer; '' otherwise (the fencer then runs at normal priority, and says so once).
 */
export const RR_CHRT = (() => {
  for (const c of ['/usr/bin/chrt', '/bin/chrt']) {
    try {
      execFileSync(c, ['-R', '-r', '50', '/bin/true'], { stdio: 'ignore', timeout: 5000 });
      return c;
    } catch {
      /* next, or none */
    }
  }
  process.stderr.write('fencer-harness: chrt -R -r 50 does not work here: fencers under test run at normal priority, not as the packages run them\n');
  return '';
})();

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Why the FUSE tests cannot run here, or undefined when they can. */
export function fuseMissing(): string | undefined {
  if (!existsSync('/usr/bin/bindfs')) return 'bindfs is not installed (scripts/install-test-deps.sh)';
  if (!existsSync('/dev/fuse')) return '/dev/fuse is missing (no FUSE in this kernel/container)';
  if (process.getuid?.() !== 0) return 'needs root (FUSE mounts, sysrq stand-in)';
  return undefined;
}

function mounted(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === path);
}

/** p's outcome, or 'pending' when it has not settled within ms. */
export async function within<T>(p: Promise<T>, ms: number): Promise<{ ok: T } | { err: unknown } | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    p.then((ok) => ({ ok }), (err: unknown) => ({ err })),
    new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms))),
  ]);
  clearTimeout(timer);
  return r;
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs: number, everyMs = 20): Promise<T> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Lazy-unmount a FUSE mount and kill its daemon; quiet when either is already gone. */
function unmountAndKill(mnt: string, proc: ChildProcess | undefined): void {
  try {
    execFileSync('fusermount', ['-u', '-z', mnt], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    /* not mounted */
  }
  try {
    proc?.kill('SIGKILL');
  } catch {
    /* gone */
  }
}

/** The state letter of /proc/PID/stat (or of one thread's, /proc/PID/task/TID/stat); undefined once it is gone. */
export function procState(pid: number, tid?: string): string | undefined {
  try {
    return parseStat(readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8'))?.state;
  } catch {
    return undefined;
  }
}

/** Whether every thread of PID is stopped (state T; a thread that ended meanwhile counts as stopped). */
function threadsStopped(pid: number): boolean {
  return readdirSync(`/proc/${pid}/task`).every((tid) => (procState(pid, tid) ?? 'T') === 'T');
}

export class BindfsPool {
  readonly src: string;
  readonly mnt: string;
  proc?: ChildProcess;
  constructor(readonly root: string, name = 'pool') {
    this.src = join(root, `${name}-src`);
    this.mnt = join(root, `${name}-mnt`);
    mkdirSync(this.src, { recursive: true });
    mkdirSync(this.mnt, { recursive: true });
  }
  async mount(): Promise<void> {
    // -f: foreground, so this process holds bindfs's pid and can freeze it.
    this.proc = spawn('/usr/bin/bindfs', ['-f', this.src, this.mnt], { stdio: 'ignore' });
    await waitFor(`bindfs mount on ${this.mnt}`, () => mounted(this.mnt), 10_000);
  }
  get pid(): number {
    return this.proc!.pid!;
  }
  /**
   * Stop bindfs, and return once every thread of it has stopped. kill() returns before they do: a
   * thread still running may take one more request from the kernel and then stop holding it, and
   * its sender can then never be killed (FUSE lets SIGKILL end only a request the daemon has not
   * read). A freeze must leave every request after it unread, as a dead NFS server leaves them.
   */
  freeze(): void {
    process.kill(this.pid, 'SIGSTOP');
    const cell = new Int32Array(new SharedArrayBuffer(4));
    for (let waited = 0; !threadsStopped(this.pid); waited++) {
      if (waited >= 5000) throw new Error(`bindfs ${this.pid}: not every thread stopped 5 s after SIGSTOP`);
      Atomics.wait(cell, 0, 0, 1);
    }
  }
  thaw(): void {
    try {
      process.kill(this.pid, 'SIGCONT');
    } catch {
      /* gone */
    }
  }
  crash(): void {
    process.kill(this.pid, 'SIGKILL');
  }
  cleanup(): void {
    this.thaw();
    unmountAndKill(this.mnt, this.proc);
  }
}

export const FAULTFS = join(REPO, 'test/fixtures/faultfs.py');
export type FaultMode = 'ok' | 'EIO' | 'ESTALE' | 'EROFS' | 'hang' | 'hang-writes';

/** Why the faultfs tests cannot run here, or undefined when they can. */
export function faultfsMissing(): string | undefined {
  if (!existsSync('/dev/fuse')) return '/dev/fuse is missing (no FUSE in this kernel/container)';
  if (process.getuid?.() !== 0) return 'needs root (FUSE mounts, sysrq stand-in)';
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import fusepy'], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    return 'python3-fusepy is not installed (scripts/install-test-deps.sh)';
  }
  return undefined;
}

/**
 * A FUSE pool (test/fixtures/faultfs.py) that answers with a real errno on demand: `setMode('EIO')`
 * makes every operation fail with EIO, 'ESTALE' likewise, 'EROFS' fails writes only, 'hang' blocks.
 */
export class FaultFsPool {
  readonly src: string;
  readonly mnt: string;
  readonly control: string;
  proc?: ChildProcess;
  stderr = '';
  constructor(readonly root: string, name = 'pool') {
    this.src = join(root, `${name}-src`);
    this.mnt = join(root, `${name}-mnt`);
    this.control = join(root, `${name}-faultfs-mode`);
    mkdirSync(this.src, { recursive: true });
    mkdirSync(this.mnt, { recursive: true });
    writeFileSync(this.control, 'ok\n');
  }
  async mount(): Promise<void> {
    this.proc = spawn('/usr/bin/python3', [FAULTFS, this.src, this.mnt, this.control], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    await waitFor(`faultfs mount on ${this.mnt}`, () => mounted(this.mnt) || this.proc!.exitCode !== null, 10_000);
    if (!mounted(this.mnt)) throw new Error(`faultfs did not mount ${this.mnt}: ${this.stderr}`);
  }
  /** Switch the filesystem's behaviour; takes effect on its next operation. */
  setMode(mode: FaultMode): void {
    // Rename-atomic: a new inode, so faultfs sees the change even within one mtime tick.
    writeFileSync(this.control + '.tmp', mode + '\n');
    renameSync(this.control + '.tmp', this.control);
  }
  cleanup(): void {
    this.setMode('ok'); // release anything blocked in 'hang'
    unmountAndKill(this.mnt, this.proc);
  }
}

export interface FencerTimings {
  probe_interval_s: number;
  probe_timeout_s: number;
  fence_after_s: number;
  watchdog_timeout_s: number;
}
export const SHORT: FencerTimings = { probe_interval_s: 0.5, probe_timeout_s: 2, fence_after_s: 5, watchdog_timeout_s: 4 };

export class FencerRun {
  readonly dir: string;
  readonly sysrq: string;
  readonly watchdog: string;
  readonly stateDir: string;
  readonly markerDir: string;
  readonly configPath: string;
  /** Private to this run: the host's /var/lib/brick is never read or written by a test. */
  readonly runtimePoolsFile: string;
  proc?: ChildProcess;
  lines: string[] = [];
  exit?: Promise<number | null>;
  constructor(
    root: string,
    readonly pools: Array<{ path: string; heartbeat?: 'ovm' | 'kvm'; fence_when?: 'in-use' | 'always'; require_mount?: boolean }>,
    readonly t: FencerTimings = SHORT,
    readonly extra: { action?: string; vm_query?: string; libvirt_uri?: string; watchdog?: boolean; host_id?: string; kill_timeout_s?: number; startup_window_s?: number } = {},
  ) {
    this.dir = join(root, 'fencer');
    mkdirSync(this.dir, { recursive: true });
    this.sysrq = join(this.dir, 'sysrq-trigger');
    this.watchdog = join(this.dir, 'watchdog');
    this.stateDir = join(this.dir, 'state');
    this.markerDir = join(this.dir, 'marker');
    this.runtimePoolsFile = join(this.dir, 'lib', 'runtime-pools.json');
    writeFileSync(this.sysrq, '');
    writeFileSync(this.watchdog, '');
    this.configPath = join(this.dir, 'brick.toml');
    const toml = [
      '[server]',
      'listen = "127.0.0.1:0"',
      ...(extra.libvirt_uri ? ['[domain]', `libvirt_uri = "${extra.libvirt_uri}"`] : []),
      '[fencer]',
      `action = "${extra.action ?? 'reboot'}"`,
      ...(extra.kill_timeout_s === undefined ? [] : [`kill_timeout_s = ${extra.kill_timeout_s}`]),
      ...(extra.startup_window_s === undefined ? [] : [`startup_window_s = ${extra.startup_window_s}`]),
      `probe_interval_s = ${t.probe_interval_s}`,
      `probe_timeout_s = ${t.probe_timeout_s}`,
      `fence_after_s = ${t.fence_after_s}`,
      `watchdog_timeout_s = ${t.watchdog_timeout_s}`,
      `watchdog_device = "${extra.watchdog === false ? '' : this.watchdog}"`,
      `sysrq_trigger = "${this.sysrq}"`,
      `state_dir = "${this.stateDir}"`,
      `marker_dir = "${this.markerDir}"`,
      `runtime_pools_file = "${this.runtimePoolsFile}"`,
      `host_id = "${extra.host_id ?? 'host-under-test'}"`,
      `vm_query = "${extra.vm_query ?? 'none'}"`,
      ...pools.flatMap((p) => ['[[fencer.pool]]', `path = "${p.path}"`, `heartbeat = "${p.heartbeat ?? 'ovm'}"`, `fence_when = "${p.fence_when ?? 'in-use'}"`, ...(p.require_mount === undefined ? [] : [`require_mount = ${p.require_mount}`])]),
    ].join('\n');
    writeFileSync(this.configPath, toml + '\n');
  }

  /** Set one [fencer] key in this run's config (before start). */
  setConfig(key: string, value: string): void {
    const text = readFileSync(this.configPath, 'utf8').replace(new RegExp(`^${key} = .*$`, 'm'), `${key} = "${value}"`);
    writeFileSync(this.configPath, text);
  }

  start(env: Record<string, string> = {}): void {
    const bin = process.env.BRICK_BIN;
    const [prog, progArgs] = bin
      ? [bin, ['fencer', '--config', this.configPath]]
      : [process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'fencer', '--config', this.configPath]];
    // As every package starts it (systemd CPUSchedulingPolicy=rr, priority 50, ResetOnFork; the
    // upstart job and the inittab line: chrt -R -r 50): its loop round-robin realtime, its probes and
    // other children normal. On a loaded machine a fencer run at normal priority would miss pets and
    // probe deadlines that the shipped one keeps; what is under test is the fencer as it runs.
    const [cmd, args] = RR_CHRT ? [RR_CHRT, ['-R', '-r', '50', prog, ...progArgs]] : [prog, progArgs];
    this.proc = spawn(cmd, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      this.lines.push(...parts);
    };
    this.proc.stdout!.on('data', onData);
    this.proc.stderr!.on('data', onData);
    this.exit = afterOutput(this.proc);
  }

  state(): any {
    try {
      return JSON.parse(readFileSync(join(this.stateDir, 'fencer.json'), 'utf8'));
    } catch {
      return undefined;
    }
  }
  async armed(timeoutMs = 20_000): Promise<void> {
    await this.until('every pool armed', () => {
      const s = this.state();
      return s && s.pools.length && s.pools.every((p: any) => p.armed);
    }, timeoutMs);
  }
  /**
   * How old pool i's last verified heartbeat is now, by the state (its ages are as of
   * written_at_ms): expiry counts from it. A "fenced too early" bound taken from a switch or a
   * freeze must subtract it: on a loaded machine the last probe may have begun well before.
   */
  lastOkAgeMs(i = 0): number {
    const s = this.state();
    return s.pools[i].last_ok_age_s * 1000 + (Date.now() - s.written_at_ms);
  }
  sysrqText(): string {
    return readFileSync(this.sysrq, 'utf8');
  }
  watchdogBytes(): Buffer {
    return readFileSync(this.watchdog);
  }
  watchdogSize(): number {
    return statSync(this.watchdog).size;
  }
  log(): string {
    return this.lines.join('\n');
  }
  /**
   * waitFor, and on a timeout say whether the fencer still runs and what it logged last (a config it
   * refused, a missing tool, a probe that timed out): a bare "timed out" tells nothing about why.
   */
  async until<T>(what: string, fn: () => T | undefined | false, timeoutMs: number, everyMs = 20): Promise<T> {
    try {
      return await waitFor(what, fn, timeoutMs, everyMs);
    } catch (e) {
      const exited = this.proc?.exitCode ?? this.proc?.signalCode;
      const state = exited === null || exited === undefined ? 'still running' : `exited (${exited})`;
      throw new Error(`${(e as Error).message}; fencer ${state}; its last lines:\n${this.lines.slice(-25).join('\n')}`);
    }
  }
  /**
   * Assert that the fencer's log has a line matching `re`, waiting up to `ms` for it: a line comes
   * through a pipe, so it can be read a moment after what the fencer did next (the sysrq file it
   * wrote, the state it saved) is seen; an assert at once lost that race on a loaded machine.
   */
  async logged(re: RegExp, message?: string, ms = 5000): Promise<void> {
    await waitFor(`a line matching ${re}`, () => re.test(this.log()), ms).catch(() => {});
    assert.match(this.log(), re, message);
  }
  async stop(): Promise<number | null> {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode) return this.proc?.exitCode ?? null;
    this.proc.kill('SIGCONT');
    this.proc.kill('SIGTERM');
    const code = await Promise.race([this.exit!, sleep(5000).then(() => 'timeout' as const)]);
    if (code === 'timeout') {
      this.proc.kill('SIGKILL');
      return null;
    }
    return code;
  }
  kill(): void {
    try {
      this.proc?.kill('SIGCONT');
      this.proc?.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}

export function tempRoot(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `brick-${prefix}-`));
}

export function removeRoot(root: string): void {
  try {
    rmSync(root, { recursive: true, force: true });
  } catch {
    /* a stuck mount under it; left for the OS */
  }
}

/**
 * The common frame of a fencer host test file: `skip` when FUSE (or what `missing` names) is absent
 * on a developer's machine, a failing `before` in CI instead, and `cleanups` run in reverse by `after`.
 */
export function fuseSuite(missing: string | undefined = fuseMissing()): { skip: string | false; cleanups: Array<() => unknown> } {
  const cleanups: Array<() => unknown> = [];
  before(() => {
    if (missing && process.env.CI === 'true') throw new Error(`fencer host tests need FUSE: ${missing}`);
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  return { skip: missing && process.env.CI !== 'true' ? missing : false, cleanups };
}

/**
 * A fencer guarding one bindfs pool (fence_when "always") whose marker_dir is a faultfs mount the
 * test can make hang (markerFs.setMode('hang')); both mounted, everything in `cleanups`.
 */
export async function fencerWithFaultyMarkerDir(name: string, cleanups: Array<() => unknown>): Promise<{ root: string; pool: BindfsPool; markerFs: FaultFsPool; f: FencerRun }> {
  const root = tempRoot(name);
  const pool = new BindfsPool(root);
  const markerFs = new FaultFsPool(root, 'marker');
  const f = new FencerRun(root, [{ path: pool.mnt, fence_when: 'always' }], SHORT);
  cleanups.push(() => removeRoot(root), () => pool.cleanup(), () => markerFs.cleanup(), () => f.kill());
  await pool.mount();
  await markerFs.mount();
  f.setConfig('marker_dir', markerFs.mnt);
  return { root, pool, markerFs, f };
}
