// `brick fencer`: the NFS heartbeat watchdog. One process, one main loop on a monotonic clock, a thin
// loop of gather facts → plan (planner.ts: every decision, pure) → act: start the probes that are
// due (each a chain of child processes, probe.ts), ask which pools running VMs use (vm-usage.ts),
// pet the watchdog or fence, rewrite the state file. The loop itself uses only timers, child
// processes and synchronous writes to local files and pre-opened fds: nothing it needs runs on the
// libuv threadpool, so hung pool I/O elsewhere in the process cannot delay a pet or a fence
// (reference/fencing.md §6, §7). marker_dir (the fence marker, the lease) is written by children
// too (marker.ts): one thread, one V8 isolate.
import { accessSync, existsSync, open as fsOpenAsync, stat as fsStatAsync, statSync, constants } from 'node:fs';
import { dirname } from 'node:path';
import { uptime } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import type { Config, PoolConfig } from '../config/schema.js';
import { fenceCommandArgv } from '../config/rules.js';
import { createLogger, nonBlockingStdout, type LogFormat, type Logger } from '../shared/log.js';
import { run as realRun, type Runner } from '../shared/run.js';
import { BrickError } from '../shared/errors.js';
import { STOP_SIGNALS, IGNORED_SIGNALS, FENCER_SUSPEND_SIGNALS, onSignals } from '../shared/signals.js';
import { findOnHost } from '../shared/host-tools.js';
import { procStart } from '../shared/process-identity.js';
import { sweepStaleTemps } from '../shared/stale-temps.js';
import { looseDirProblem } from '../shared/dir-mode.js';
import { heartbeatContent, heartbeatFile, type HeartbeatFormat } from './heartbeat-format.js';
import { defaultHostId } from './host-id.js';
import { tickMs, type PoolHealthState, type Timing } from './pool-health.js';
import { inherit, planTick, resumeHoldUntil, SUSPEND_NOISE_MS, vmAnswerAcrossSuspend, logRepeatNow, actionKeepsHostUp, withKillVms, type Facts, type Inherited, type Plan, type PoolPlan } from './planner.js';
import { probeSteps, resolvePoolPath, resolveTools, startProbe } from './probe.js';
import { openSysrq, openWatchdog, type SysrqTrigger, type Watchdog } from './watchdog.js';
import { isCharDevice, prepareWatchdog } from './watchdog-policy.js';
import { STATE_DIR_MODE, STATE_FILE, ensureDir, readFencerState, round3, stateRecord, verdictAgesAt, writeFencerState, type FencerState, type PoolState } from './state.js';
import { MARKER_DEADLINE_MS, MARKER_DIR_MODE, MARKER_FILE, readFenceMarker, resolveMarkerTools, startMarkerWriter, type FenceMarker, type MarkerOutcome, type MarkerWriter } from './marker.js';
import { LEASE_FILE, bootId, leasePath, leaseRecord, leaseText, readLease } from './lease.js';
import { LOCK_WAIT_S, takeInstanceLock, type InstanceLock } from './instance-lock.js';
import { queryPoolUsage, resolveVmQuery, usageByPool } from './vm-usage.js';
import { KillVms } from './kill-vms/controller.js';
import { isKillMarkerName } from './kill-vms/act.js';
import {
  entryPoolConfig,
  judgeRuntimeRead,
  readRuntimePoolsChild,
  reconcile,
  RUNTIME_POOLS_POLL_MS,
  RUNTIME_POOLS_READ_MS,
  type PoolSource,
  type RuntimePoolEntry,
  type RuntimeRaw,
} from './runtime-pools.js';
import { bootMonoMs, fencerClock } from './clock.js';

export interface FencerOptions {
  logFormat: LogFormat;
  logLevel?: string;
  /** Tests: a collector instead of stdout. */
  logger?: Logger;
  run?: Runner;
}

/** Test-only injection points, read from the environment and announced loudly at start. The shipped binary ignores them. */
export const TEST_ENV = {
  /** Seconds added to every probe (an extra `sleep` child inside the probe's deadline). */
  probeDelay: 'BRICK_TEST_PROBE_DELAY_S',
  /** A FIFO path: at start, 16 async fs.open calls on it block the whole libuv threadpool. */
  poisonThreadpool: 'BRICK_TEST_POISON_THREADPOOL',
  /** A start-up step's name: start-up waits forever there (the start-up deadline must end it). */
  startupStall: 'BRICK_TEST_STARTUP_STALL',
} as const;

/**
 * How long start-up may take in all: the instance lock's wait and answer (LOCK_WAIT_S + 10 s),
 * a pool path's resolution (one probe deadline), the host tools' version probes (3 s each, in
 * parallel), the look at marker_dir (MARKER_DIR_ANSWER_MS), the read of the runtime pools file
 * (RUNTIME_POOLS_READ_MS) and wdctl (5 s), with room for a loaded host.
 */
export function startupDeadline(t: Timing): number {
  return (LOCK_WAIT_S + 10) * 1000 + t.probeTimeoutMs + 3000 + MARKER_DIR_ANSWER_MS + RUNTIME_POOLS_READ_MS + 5000 + 30_000;
}

function testEnv(name: string): string | undefined {
  return (globalThis as { __BRICK_SEA__?: boolean }).__BRICK_SEA__ ? undefined : process.env[name];
}

/**
 * V8 flags the fencer sets for itself, first thing (`brick serve` keeps V8's defaults: the SEA's
 * fixed execArgv is shared by every command, scripts/build-binary.mjs). The loop runs a little JS
 * four times a second and waits on timers and children the rest of the time: it needs no
 * optimizing or baseline compiler (their code, feedback and compile jobs cost memory and CPU and
 * buy nothing here), and a young generation of V8's default size only holds garbage between
 * scavenges (--optimize-for-size keeps it at its minimum). None of them changes what runs when:
 * the loop's timers, its children and its synchronous writes stay as they are.
 */
export const FENCER_V8_FLAGS = ['--no-opt', '--no-maglev', '--no-sparkplug', '--optimize-for-size'] as const;

// Signals whose default action ends the process. A fencer ended without the magic close leaves the
// watchdog armed (a host reset within watchdog_timeout_s), so each is either a clean stop or ignored.
export { STOP_SIGNALS, IGNORED_SIGNALS } from '../shared/signals.js';

interface PoolRuntime {
  cfg: PoolConfig;
  /** config: a [[fencer.pool]]; runtime: added by the orchestrator (fencer.runtime_pools_file). */
  source: PoolSource;
  /** A runtime pool added while this process ran: when (monotonic ms). */
  addedMs?: number;
  /** Gone from the runtime pools file, but still guarded: removing it now would dodge a fence (why). */
  removing?: string;
  /** cfg.path with its symlinks resolved at start: what the probes stat, write and read. */
  probePath: string;
  hostId: string;
  file: string;
  lastOkMs?: number;
  inherited?: Inherited;
  lastStartMs?: number;
  firstDeadlineMs?: number;
  inFlight?: { startedMs: number; deadlineMs: number; resultIn: boolean; abort: AbortController };
  device?: string;
  mkdirDone: boolean;
  latency: { last: number | null; min: number | null; max: number | null };
  ok: number;
  failed: number;
  lastError: string | null;
  lastErrorLoggedMs: number;
  lastStuckLogMs: number;
  /** When a healthy↔late change was last logged at warning/info level (slow storage flaps every probe). */
  lastLateLogMs: number;
  prevState: PoolHealthState;
  verdict?: PoolPlan;
  /** The start-up window passed without a verified heartbeat (said once, loudly). */
  overdueSaid: boolean;
  /** Expired during a stall of the fencer's own loop: no fence before this (planner: resumeHoldUntilMs). */
  resumeHoldUntilMs?: number;
}

/** A pool flapping between healthy and late is logged at most this often. */
const LATE_LOG_EVERY_MS = 60_000;

/** How long start-up waits for a child's look at marker_dir before it calls the directory hung. */
export const MARKER_DIR_ANSWER_MS = 10_000;

/**
 * Whether marker_dir (or, when it does not exist yet, the way to it) answers: `stat` in a child with a
 * deadline, never a call of this process, so a hung disk holds a child and not the fencer. Any answer
 * will do, an error included (ensureLocalDir then says what is wrong); no answer throws.
 */
async function markerDirAnswers(dir: string, stat: string, run: Runner, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  // Our own timer too: a child stuck in the kernel past its SIGKILL would hold run() (as with probes).
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs + 100)));
  const look = run(stat, ['-c', '%i', '--', dir], { timeoutMs, allowFailure: true }).then(
    () => 'answered' as const,
    (e: unknown) => (e instanceof BrickError && e.fault === 'TIMEOUT' ? ('late' as const) : ('answered' as const)),
  );
  const r = await Promise.race([look, late]).finally(() => clearTimeout(timer));
  if (r === 'late')
    throw new BrickError('TIMEOUT', `fencer.marker_dir ${dir}: no answer within ${timeoutMs / 1000} s (a hung disk?); it must be a responsive local directory`);
}

/** Start-up errors on local directories are the operator's to fix: one clear line, no stack trace. */
function ensureLocalDir(dir: string, key: string, mode: number): void {
  try {
    ensureDir(dir, mode);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    // A recursive mkdir says ENOENT for a parent it could not make: name the real cause (EROFS, EACCES).
    let code = err.code ?? err.message;
    if (code === 'ENOENT') {
      let d = dirname(dir);
      while (d !== dirname(d) && !existsSync(d)) d = dirname(d);
      try {
        accessSync(d, constants.W_OK);
      } catch (e2) {
        code = (e2 as NodeJS.ErrnoException).code ?? code;
      }
    }
    throw new BrickError('COMMAND_FAILED', `fencer.${key} ${dir}: cannot create it (${code}); it must be a writable local directory`);
  }
}

export async function runFencer(config: Config, opts: FencerOptions): Promise<number> {
  // First thing: every function compiled from here on is compiled under them (FENCER_V8_FLAGS).
  setFlagsFromString(FENCER_V8_FLAGS.join(' '));
  // The start-up deadline's timer keeps the process alive while start-up waits (a promise that never
  // settles keeps nothing alive by itself: the process would end silently with exit 0); a start-up
  // that throws clears it, so the error's exit is not held back.
  const guard: StartupGuard = {};
  try {
    return await runFencerGuarded(config, opts, guard);
  } catch (e) {
    clearTimeout(guard.timer);
    // The caller reports the error and sets the exit code; a child stuck in the kernel (a look at a
    // hung marker_dir or pool path) would then keep the event loop, and the process, alive for ever.
    // It is not ours to wait for (as in stop()).
    setTimeout(() => process.exit(), 1000).unref();
    throw e;
  }
}

interface StartupGuard {
  timer?: NodeJS.Timeout;
}

async function runFencerGuarded(config: Config, opts: FencerOptions, guard: StartupGuard): Promise<number> {
  const f = config.fencer;
  // Never wait on the log reader: a stuck journald must not stop the watchdog being petted.
  const stdout = opts.logger ? undefined : nonBlockingStdout();
  const log = opts.logger ?? createLogger({ svc: 'fencer', format: opts.logFormat, level: opts.logLevel, destination: stdout });
  const run = opts.run ?? realRun;
  // Take the stop signals before the watchdog is opened: until a JS listener exists the kernel's
  // default kills the process, and a fencer killed with the watchdog open and no 'V' written resets
  // the host. A stop that arrives during start-up is carried out once the loop runs. The other
  // signals that would end the process are ignored (said once in the log).
  let stopRequest: string | undefined;
  let onStopRequest: ((sig: string) => void) | undefined;
  const request = (sig: string) => (onStopRequest ? onStopRequest(sig) : (stopRequest ??= sig));
  // `on`, not `once`: a listener removed after the first signal would give a second one (an impatient
  // operator, systemd's stop repeated) the kernel's default, killing the stop half-way, perhaps while
  // a fence's sysrq write waits on the marker. Once the stop runs, further stop signals are ignored.
  onSignals(STOP_SIGNALS, request);
  onSignals(IGNORED_SIGNALS, (sig) => log.warn({ signal: sig }, `${sig} ignored: the fencer stops only on SIGTERM, SIGINT or SIGQUIT`));
  onSignals(FENCER_SUSPEND_SIGNALS, (sig) => log.warn({ signal: sig }, `${sig} ignored: a suspended fencer pets nothing and the watchdog would reset this host`));
  // Every time the fencer judges by counts the host's suspends (clock.ts): a pool's age is the peers' too.
  const clock = fencerClock();
  const now = clock.now;
  /** The boot offset (fencerClock.bootOffset) for a state or lease stamp, when /proc/uptime told it: the next fencer counts a suspend between the two. */
  const optionalOffset = (): { boot_offset_ms?: number } => {
    const o = clock.bootOffset();
    return o === undefined ? {} : { boot_offset_ms: o };
  };
  const timing: Timing = { probeIntervalMs: f.probe_interval_s * 1000, probeTimeoutMs: f.probe_timeout_s * 1000, fenceAfterMs: f.fence_after_s * 1000 };
  const tick = tickMs(timing, f.watchdog_timeout_s * 1000);
  const delayS = Number(testEnv(TEST_ENV.probeDelay) ?? 0) || 0;
  // The test-only delay's sleep is the host's: the shipped fencer needs no sleep (and never reads the variable).
  const delay = delayS > 0 ? { s: delayS, sleep: findOnHost('sleep') || '/bin/sleep' } : undefined;
  if (delay) log.warn({ delay_s: delayS }, `TEST ONLY: ${TEST_ENV.probeDelay} adds ${delayS} s to every probe`);

  // ---- start-up: everything that may fail fails here, before anything is armed ----
  // Every step below has its own deadline; this one bounds them all, so a start-up that waits on
  // something that never answers ends (exit 1, the step named) for the service manager to start a
  // fresh fencer, instead of a process that runs and guards nothing. Nothing is armed yet and the
  // watchdog is opened only after the last await; a crash lease from before still holds.
  let startupStep = 'host tools';
  const startupDeadlineMs = startupDeadline(timing);
  const startupTimer = (guard.timer = setTimeout(() => {
    log.error(
      { step: startupStep, deadline_s: startupDeadlineMs / 1000, exit: 1 },
      `start-up did not finish within ${startupDeadlineMs / 1000} s (waiting on: ${startupStep}); exiting (1) so that a fresh fencer starts`,
    );
    process.exit(1);
  }, startupDeadlineMs));
  const step = async <T>(name: string, p: Promise<T>): Promise<T> => {
    startupStep = name;
    const stall = testEnv(TEST_ENV.startupStall);
    if (stall === name) {
      log.warn({ step: name }, `TEST ONLY: ${TEST_ENV.startupStall}: start-up waits forever at ${name}`);
      await new Promise(() => {});
    }
    return p;
  };
  const [tools, markerTools] = await step('host tools', Promise.all([resolveTools(), resolveMarkerTools()]));
  // A pool path that is a symlink to the mount: resolved once, by a child with a deadline.
  async function resolvePool(p: PoolRuntime): Promise<void> {
    const r = await resolvePoolPath(p.cfg.path, tools, run, timing.probeTimeoutMs);
    if (r.error) log.warn({ pool: p.cfg.path, error: r.error }, `cannot resolve pool path ${p.cfg.path} (${r.error}); probing it as ${p.source === 'config' ? 'configured' : 'added'}`);
    else if (r.path !== p.cfg.path) log.info({ pool: p.cfg.path, resolved: r.path }, `pool ${p.cfg.path} resolves to ${r.path}: probing that`);
    p.probePath = r.path;
    p.file = heartbeatFile(r.path, p.hostId, p.cfg.heartbeat);
  }
  function newPool(cfg: PoolConfig, source: PoolSource): PoolRuntime {
    const hostId = f.host_id || defaultHostId(cfg.heartbeat as HeartbeatFormat);
    if (!hostId) throw new BrickError('NOT_READY', 'fencer.host_id: not set and this host has no IPv4 address to derive it from; set host_id');
    return {
      cfg,
      source,
      probePath: cfg.path,
      hostId,
      file: heartbeatFile(cfg.path, hostId, cfg.heartbeat),
      mkdirDone: cfg.heartbeat !== 'kvm',
      latency: { last: null, min: null, max: null },
      ok: 0,
      failed: 0,
      lastError: null,
      lastErrorLoggedMs: -Infinity,
      lastStuckLogMs: -Infinity,
      lastLateLogMs: -Infinity,
      prevState: 'unverified',
      overdueSaid: false,
    };
  }
  // The modes the packages give them (tmpfiles.d, the RPM): state_dir 0755 (`brick status` and the
  // agent read the state), marker_dir 0700 (the marker, the lease, the kill markers: root's alone).
  ensureLocalDir(f.state_dir, 'state_dir', STATE_DIR_MODE);
  // marker_dir is persistent disk, which can hang (a failing disk, a root on iSCSI), and start-up
  // makes and reads it synchronously below: held in the kernel there, the main thread would run not
  // even the start-up deadline's timer (a fencer that never starts, never exits, guards nothing, its
  // service "running"). A child looks first, with a deadline; one that does not answer ends start-up.
  await step('marker_dir', markerDirAnswers(f.marker_dir, tools.stat, run, MARKER_DIR_ANSWER_MS));
  ensureLocalDir(f.marker_dir, 'marker_dir', MARKER_DIR_MODE);
  const lock: InstanceLock = await step('instance lock', takeInstanceLock(f.state_dir));
  const boot = bootId();
  // With the pid in every state written, one process across pid reuse: a reader whose process with
  // that pid started at another time knows this fencer is gone (state.fencerWriterGone).
  const pidStart = procStart('self');
  const prevState = readFencerState(f.state_dir);
  const prevLease = readLease(f.marker_dir);
  // Temp files a fencer killed between a write and its rename left (shared/stale-temps.ts): after the
  // lock (no other fencer writes this state_dir), and once a child saw marker_dir answer (above; start-up
  // reads it synchronously anyway). A temp file whose pid still runs is kept.
  for (const [dir, ours] of [
    [f.state_dir, (b: string) => b === STATE_FILE],
    [f.marker_dir, (b: string) => b === MARKER_FILE || b === LEASE_FILE || isKillMarkerName(b)],
  ] as const) {
    const swept = sweepStaleTemps(dir, ours);
    if (swept.removed.length) log.info({ removed: swept.removed }, `removed ${swept.removed.length} temp file(s) a writer that is gone left in ${dir}`);
    if (swept.errors.length) log.warn({ errors: swept.errors }, `could not remove the temp files a writer that is gone left in ${dir}`);
  }
  // One that was there already keeps its mode (an admin chose it); others who can write it can
  // replace what the fencer writes there: said, as brick doctor says it (shared/dir-mode.ts).
  // Not the runtime pools file's directory: it may be on a disk that hangs, which the fencer only
  // ever reads through a child with a deadline (below); brick doctor judges its mode.
  for (const [dir, key] of [[f.state_dir, 'state_dir'], [f.marker_dir, 'marker_dir']] as const) {
    let problem: string | undefined;
    try {
      const st = statSync(dir);
      problem = looseDirProblem(st.mode, st.uid, process.getuid?.());
    } catch {
      /* made above: a stat that fails now is said by the writes that follow */
    }
    if (problem) log.warn({ [key]: dir }, `fencer.${key} ${dir} ${problem}: others can replace what the fencer writes there (brick doctor says how to fix it)`);
  }

  // ---- runtime pools (runtime-pools.ts): the orchestrator's, from fencer.runtime_pools_file ----
  const rtFile = f.runtime_pools_file;
  const configPaths = new Set(f.pool.map((p) => p.path.replace(/\/+$/, '') || '/'));
  /** The runtime pools the file last said (the last good set when it stops parsing). */
  let rtWanted: RuntimePoolEntry[] = [];
  /** The file's content last read (runtime-pools.judgeRuntimeRead): a read with other content is applied. */
  let rtContent: string | undefined;
  let rtError: string | null = null;
  const rtLog = { msg: null as string | null, atMs: -Infinity };
  // What the previous fencer guarded at run time: the last good set when the file does not parse
  // now, and the pools it had armed when it crashed (kept even if the file no longer lists them).
  const prevRuntime: RuntimePoolEntry[] = (prevState?.pools ?? [])
    .filter((p) => p.source === 'runtime' && !configPaths.has(p.path))
    .map((p) => ({ path: p.path, heartbeat: p.heartbeat, fence_when: p.fence_when, added_at: '', added_by: 'previous fencer' }));
  {
    // Read by a child with a deadline, as on every tick: the file is on disk that can hang.
    const r = judgeRuntimeRead({ content: undefined, error: null }, await step('runtime pools file', readRuntimePoolsChild(rtFile, tools.dd, run)));
    if (r.kind !== 'same') rtContent = r.content;
    if (r.kind === 'ok') rtWanted = r.pools;
    else if (r.kind === 'unusable') {
      rtError = r.error;
      rtWanted = prevRuntime.filter((p) => !prevState?.pools.find((q) => q.path === p.path)?.removing);
      log.error(
        { file: rtFile, error: r.error, kept: rtWanted.map((p) => p.path) },
        `the runtime pools file ${rtFile} is unusable (${r.error}): keeping the previous fencer's runtime pools (${rtWanted.map((p) => p.path).join(', ') || 'none'}) until it is written again`,
      );
      rtLog.msg = r.error;
      rtLog.atMs = now();
    }
  }
  const startRuntime = rtWanted.filter((e) => !configPaths.has(e.path));
  const candidates = [...f.pool.map((c) => c.path), ...startRuntime.map((e) => e.path), ...prevRuntime.map((e) => e.path)];
  const inheritCtx = { pid: process.pid, bootId: boot, nowWallMs: Date.now(), bootWallMs: Date.now() - uptime() * 1000, nowMonoMs: now(), nowBootMonoMs: bootMonoMs(), nowBootOffsetMs: clock.bootOffset(), fenceAfterMs: timing.fenceAfterMs };
  const inherited = inherit([...new Set(candidates)], prevState && stateRecord(prevState), prevLease && leaseRecord(prevLease), inheritCtx);
  const pools: PoolRuntime[] = [...f.pool.map((cfg) => newPool(cfg, 'config')), ...startRuntime.map((e) => newPool(entryPoolConfig(e), 'runtime'))];
  // A runtime pool the orchestrator removed while the previous fencer, which then crashed, had it
  // armed: its expiry is not lost with the file's entry. It stays guarded until it may go.
  for (const e of prevRuntime) {
    if (pools.some((p) => p.cfg.path === e.path) || !inherited.some((i) => i.path === e.path)) continue;
    const p = newPool(entryPoolConfig(e), 'runtime');
    p.removing = 'removed from the runtime pools file while the previous fencer, which crashed or was restarted, had it armed';
    pools.push(p);
  }
  await step('pool paths', Promise.all(pools.map(resolvePool)));
  // Two [[fencer.pool]] entries for one heartbeat file (a path and a symlink to it): their probes
  // would race on it (mv of the other's temp file, read-back mismatch) and fence a healthy pool.
  f.pool.forEach((_, i) => {
    const k = pools.findIndex((q, j) => j < i && q.source === 'config' && q.file === pools[i].file);
    if (k >= 0)
      throw new BrickError(
        'INVALID_PARAMS',
        `fencer.pool[${i}].path: "${f.pool[i].path}" is the directory of fencer.pool[${k}].path "${f.pool[k].path}" (both resolve to ${pools[i].probePath}): list it once`,
      );
  });
  // Two entries for one directory (a runtime pool through a symlink to a configured one): the first guards it.
  for (let i = pools.length - 1; i >= 0; i--) {
    const p = pools[i];
    const dup = pools.find((q, k) => k < i && q.probePath === p.probePath);
    if (dup && p.source === 'runtime') {
      log.warn({ pool: p.cfg.path, resolved: p.probePath, guarded_as: dup.cfg.path }, `runtime pool ${p.cfg.path} is ${dup.cfg.path} (${p.probePath}), guarded already: ignored`);
      pools.splice(i, 1);
    }
  }
  for (const i of inherited) {
    const p = pools.find((x) => x.cfg.path === i.path);
    if (!p) continue;
    p.inherited = i;
    log.warn(
      { pool: i.path, previous_pid: i.fromPid, last_ok_age_s: i.ageS === null ? null : round3(i.ageS) },
      i.ageS === null
        ? `pool ${i.path} stays armed from the previous fencer (pid ${i.fromPid}), which crashed or was restarted; the age of its last verified heartbeat is lost: it must verify by the first probe's deadline`
        : `pool ${i.path} stays armed from the previous fencer (pid ${i.fromPid}), which crashed or was restarted: last verified heartbeat ${round3(i.ageS)} s ago`,
    );
  }
  const lastFence = readFenceMarker(f.marker_dir) ?? null;
  if (lastFence)
    log.warn({ last_fence: lastFence }, `this host fenced itself at ${lastFence.at} (pool ${lastFence.pool}: ${lastFence.reason}); remove ${f.marker_dir}/fence-marker.json once understood`);
  let sysrq: SysrqTrigger | undefined;
  if (f.action === 'reboot' || f.action === 'crash' || f.action === 'kill-vms') sysrq = openSysrq(f.sysrq_trigger);
  const fenceArgv = f.action === 'command' ? fenceCommandArgv(f.command) : [];
  if (f.action === 'log-only') log.warn('fencer.action = "log-only": an expired pool is only logged; this host will NOT be reset and its VMs may run twice');
  // marker_dir is written only by this writer's children once the loop runs: a hung marker_dir never blocks a pet or a fence.
  const markerWriter: MarkerWriter = startMarkerWriter(markerTools, run);
  const vmHow = await step('VM query tool', resolveVmQuery(f.vm_query));
  if (vmHow.kind === 'none' || !vmHow.bin)
    log.warn({ vm_query: f.vm_query }, 'cannot ask which pools running VMs use: every pool counts as used (expiry fences)');
  const vmUri = config.domain.libvirt_uri || undefined;
  const vm: Facts['vm'] = {
    inFlight: false,
    never: vmHow.kind === 'none' || !vmHow.bin,
    refreshMs: Math.max(1000, timing.probeIntervalMs),
    timeoutMs: f.vm_query_timeout_s * 1000,
  };
  // action = "kill-vms" (kill-vms/): an expired, used pool has its holders killed; the host is reset
  // (as "reboot") only when that cannot be shown complete and safe within kill_timeout_s.
  const killVms =
    f.action === 'kill-vms'
      ? new KillVms({
          pools: pools.map((p) => ({ path: p.cfg.path, resolved: p.probePath })),
          killTimeoutMs: f.kill_timeout_s * 1000,
          markerDir: f.marker_dir,
          writeFile: (file, text, done) => markerWriter.post(file, text, done),
          vm: { ...vmHow, uri: vmUri },
          destroyTimeoutMs: f.vm_query_timeout_s * 1000,
          run,
          log,
          now,
        })
      : undefined;
  // A fencer restarted while a pool is dead cannot record its mount again (that needs a verified
  // probe): take the previous fencer's record when the same mount is still there.
  killVms?.inherit(prevState, inheritCtx);
  // The watchdog last: once open it must be petted, and the first pet comes from the loop, after
  // the pools have been judged (a crash before that point pets nothing).
  let watchdog: Watchdog | undefined;
  let watchdogNotADevice = false;
  if (f.watchdog_device) {
    await step('watchdog', prepareWatchdog(f.watchdog_device, f.watchdog_timeout_s, { run, warn: (msg, detail) => log.warn(detail, msg) }));
    watchdog = openWatchdog(f.watchdog_device);
    // A regular file or FIFO (the tests' stand-in; on a host, typically a /dev/watchdog that
    // `echo V > /dev/watchdog` created while no driver was loaded) takes the pets and resets nothing.
    if (!isCharDevice(f.watchdog_device)) {
      watchdogNotADevice = true;
      log.error(
        { device: f.watchdog_device },
        `fencer.watchdog_device ${f.watchdog_device} is not a character device: no hardware watchdog; if the fencer itself hangs or dies, nothing resets this host ` +
          '(load the driver, e.g. iTCO_wdt or xen_wdt, and remove the file)',
      );
    }
  } else {
    log.warn('fencer.watchdog_device = "": no hardware watchdog; if the fencer itself hangs or dies, nothing resets this host');
  }
  let lastPetMs: number | undefined;

  log.info(
    {
      pools: pools.map((p) => ({ path: p.cfg.path, source: p.source, resolved: p.probePath, heartbeat: p.cfg.heartbeat, file: p.file, fence_when: p.cfg.fence_when })),
      runtime_pools_file: rtFile,
      action: f.action,
      probe_interval_s: f.probe_interval_s,
      probe_timeout_s: f.probe_timeout_s,
      fence_after_s: f.fence_after_s,
      ...(killVms ? { kill_timeout_s: f.kill_timeout_s } : {}),
      watchdog: f.watchdog_device || null,
      tick_ms: tick,
      vm_query: vmHow.kind,
    },
    'fencer started',
  );
  const startedAtMs = Date.now();
  let loopStartMs: number | undefined;
  /** Set when start-up failed (a pool guarding VMs not verified within startup_window_s): the exit code. */
  let failStartup: ((pools: string[]) => void) | undefined;
  let fenced: FenceMarker | null = null;
  /** The fence action, once fence() started it: settles when the action has run (by the marker's deadline). */
  let fenceAction: Promise<void> | undefined;
  let petting = false;
  /** When the pools' verdicts (PoolRuntime.verdict) were judged (monotonic ms): their ages are as of then. */
  let judgedAtMs: number | undefined;
  const stateLog = { msg: null as string | null, atMs: -Infinity };
  const leaseLog = { msg: null as string | null, atMs: -Infinity };
  const lockLog = { msg: null as string | null, atMs: -Infinity };
  const petLog = { msg: null as string | null, atMs: -Infinity };
  let leaseArmed: string | undefined;

  // ---- gather ----
  function facts(t: number): Facts {
    return {
      nowMs: t,
      timing,
      action: f.action,
      watchdog: Boolean(watchdog),
      fenced: fenced?.pool ?? null,
      vm,
      startup: loopStartMs === undefined ? undefined : { startedMs: loopStartMs, windowMs: f.startup_window_s * 1000 },
      pools: pools.map((p) => ({
        path: p.cfg.path,
        fenceWhen: p.cfg.fence_when,
        lastOkMs: p.lastOkMs,
        inheritedLastOkMs: p.inherited?.lastOkMs,
        firstProbeDeadlineMs: p.firstDeadlineMs,
        probeInFlight: Boolean(p.inFlight),
        lastProbeStartMs: p.lastStartMs,
        ...(p.addedMs === undefined ? {} : { addedMs: p.addedMs }),
        ...(p.resumeHoldUntilMs === undefined ? {} : { resumeHoldUntilMs: p.resumeHoldUntilMs }),
      })),
    };
  }

  // ---- act ----
  function startPoolProbe(p: PoolRuntime, t: number): void {
    const started = t;
    const content = heartbeatContent(p.cfg.heartbeat, Date.now());
    const steps = probeSteps({ poolPath: p.probePath, hostId: p.hostId, format: p.cfg.heartbeat }, tools, content, { mkdir: !p.mkdirDone, delay });
    const abort = new AbortController();
    const probe = startProbe(steps, run, timing.probeTimeoutMs, now, p.device, p.cfg.require_mount, abort.signal);
    p.lastStartMs = started;
    p.firstDeadlineMs ??= started + timing.probeTimeoutMs;
    p.inFlight = { startedMs: started, deadlineMs: started + timing.probeTimeoutMs, resultIn: false, abort };
    const flight = p.inFlight;
    probe.result.then((r) => {
      flight.resultIn = true;
      const ms = round3(r.latencyMs);
      if (r.ok) {
        p.latency = { last: ms, min: Math.min(p.latency.min ?? ms, ms), max: Math.max(p.latency.max ?? ms, ms) };
        p.ok++;
        if (p.device === undefined) p.device = r.device;
        killVms?.verified(p.cfg.path, r.device);
        p.mkdirDone = true;
        p.lastOkMs = p.lastOkMs === undefined ? started : Math.max(p.lastOkMs, started);
        if (p.lastError) log.info({ pool: p.cfg.path, latency_ms: ms }, `probe of ${p.cfg.path} verified again`);
        p.lastError = null;
      } else {
        p.latency = { ...p.latency, last: ms };
        p.failed++;
        if (p.cfg.heartbeat === 'kvm') p.mkdirDone = false;
        const t2 = now();
        if (r.error !== p.lastError || t2 - p.lastErrorLoggedMs >= 30_000) {
          p.lastErrorLoggedMs = t2;
          log.warn({ pool: p.cfg.path, error: r.error, timed_out: r.timedOut, latency_ms: ms }, `probe of ${p.cfg.path} failed: ${r.error}`);
        }
        p.lastError = r.error;
      }
    });
    probe.finished.then(() => {
      if (p.inFlight === flight) p.inFlight = undefined;
      if (flight.resultIn && now() > flight.deadlineMs + 50)
        log.info({ pool: p.cfg.path, blocked_s: round3((now() - flight.startedMs) / 1000) }, `stuck probe of ${p.cfg.path} finally exited`);
    });
  }

  function logStuck(p: PoolRuntime, t: number): void {
    if (p.inFlight?.resultIn && t - p.lastStuckLogMs >= 5000) {
      p.lastStuckLogMs = t;
      log.error({ pool: p.cfg.path, blocked_s: round3((t - p.inFlight.startedMs) / 1000) }, `probe of ${p.cfg.path} is stuck past its deadline (blocked in the kernel?); no new probe until it exits`);
    }
  }

  function startVmQuery(t: number): void {
    vm.inFlight = true;
    vm.firstStartMs ??= t;
    const paths = [...new Set(pools.flatMap((p) => [p.cfg.path, p.probePath]))];
    queryPoolUsage(paths, { ...vmHow, uri: vmUri }, run, vm.timeoutMs).then((map) => {
      vm.inFlight = false;
      vm.answer = { atMs: now(), map: map === 'unknown' ? map : usageByPool(pools.map((p) => ({ path: p.cfg.path, resolved: p.probePath })), map) };
    });
  }

  // The fence path: bounded, nothing from the failed storage, the marker never waited on past its deadline.
  function fence(v: PoolPlan, action: string, why?: string): void {
    const p = pools.find((x) => x.cfg.path === v.path)!;
    const age = v.ageMs === undefined ? null : round3(v.ageMs / 1000);
    const reason =
      (age === null ? 'no verified heartbeat since this start, age before it lost' : `no verified heartbeat for ${age} s`) +
      ` (fence_after_s ${f.fence_after_s})${p.lastError ? `; last error: ${p.lastError}` : ''}${why ? `; ${why}` : ''}`;
    fenced = { at: new Date().toISOString(), pool: v.path, reason, action, host_id: p.hostId, last_ok_age_s: age };
    log.fatal({ pool: v.path, last_ok_age_s: age, action }, `FENCING this host: pool ${v.path} ${reason}; action ${action}`);
    if (actionKeepsHostUp(action)) return;
    // Petting has stopped (planTick never pets once fenced: `fenced` is set above, before anything
    // waits) and a stop from now on leaves the watchdog armed and waits for this action; the
    // hardware watchdog backs up what follows. The action runs once: when the marker is durable, or
    // at its deadline, or at once when it cannot be written (a failed spawn included).
    let marker: Promise<MarkerOutcome>;
    try {
      marker = markerWriter.write(f.marker_dir, fenced, MARKER_DEADLINE_MS, (late, afterMs) =>
        late === 'written'
          ? log.warn({ marker_dir: f.marker_dir, after_deadline_ms: Math.round(afterMs) }, `the fence marker was written ${Math.round(afterMs)} ms after its deadline`)
          : log.error({ error: late.error }, `the fence marker could not be written after its deadline: ${late.error}`),
      );
    } catch (e) {
      marker = Promise.resolve({ error: (e as Error).message });
    }
    fenceAction = marker.then(
      (m) => fenceActionNow(action, m),
      (e: unknown) => fenceActionNow(action, { error: (e as Error)?.message ?? String(e) }),
    );
  }

  function fenceActionNow(action: string, m: MarkerOutcome): void {
    if (m === 'timeout') log.error({ marker_dir: f.marker_dir }, `the fence marker was not written within its deadline (${f.marker_dir} hangs?); fencing anyway`);
    else if (m !== 'written') log.error({ error: m.error }, 'could not write the fence marker; fencing anyway');
    try {
      switch (action) {
        case 'reboot':
        case 'kill-vms': // kill-vms resets only when killing could not be shown complete and safe
          sysrq!.write('b');
          break;
        case 'crash':
          sysrq!.write('c');
          break;
        case 'command':
          run(fenceArgv[0], fenceArgv.slice(1), { timeoutMs: 10_000, allowFailure: true }).then(
            (r) => log.error({ exit: r.code }, `fence command exited ${r.code}; waiting for the watchdog`),
            (e) => log.error({ error: (e as Error).message }, 'fence command failed; waiting for the watchdog'),
          );
          break;
        default:
          log.error({ action }, `no fence action "${action}" in this build; waiting for the watchdog`);
      }
    } catch (e) {
      log.error({ error: (e as Error).message }, 'the fence action failed; the watchdog (no longer petted) must reset the host');
    }
  }

  function act(planned: Plan, t: number): void {
    let plan = planned;
    if (killVms && !fenced) {
      const k = killVms.tick(plan.pools.map((v, i) => ({ path: v.path, fence: v.fence, lastOkMs: pools[i].lastOkMs })), t);
      for (const p of pools) if (k.abort.has(p.cfg.path)) p.inFlight?.abort.abort();
      plan = withKillVms(plan, k, Boolean(watchdog));
    }
    for (const path of plan.startProbes) startPoolProbe(pools.find((p) => p.cfg.path === path)!, t);
    for (const p of pools) if (p.inFlight) logStuck(p, t);
    if (plan.queryVms) startVmQuery(t);
    plan.pools.forEach((v, i) => transition(pools[i], v, t));
    judgedAtMs = t;
    if (plan.fence) fence(plan.fence.pool, plan.fence.action, plan.fence.why);
    if (plan.clearFenced) fenced = null;
    if (plan.failStartup && !fenced && failStartup) {
      failStartup(plan.failStartup.pools);
      return;
    }
    petting = plan.pet;
    if (plan.pet && watchdog) {
      try {
        watchdog.pet();
        lastPetMs = t;
        if (petLog.msg !== null) log.info({ device: watchdog.device }, `${watchdog.device} is petted again`);
        petLog.msg = null;
      } catch (e) {
        // Every tick would say it again (4 lines a second): on change, then once a minute.
        const err = e as NodeJS.ErrnoException;
        const key = err.code ?? err.message;
        if (logRepeatNow(petLog, key, t)) log.error({ error: err.message }, `cannot pet ${watchdog.device} (said again in a minute if it persists)`);
      }
    }
    saveState(t, false);
    saveLease(false);
    // After saveState, which makes a removed state_dir again: the lock moves to the new lock file.
    lock.check((msg) => {
      if (logRepeatNow(lockLog, msg, now())) log.error({ error: msg }, `the fencer's lock file was removed and cannot be locked again (said again in a minute if it persists): ${msg}`);
    });
  }

  function saveState(t: number, clean: boolean): void {
    try {
      writeFencerState(f.state_dir, snapshot(clean));
      if (stateLog.msg !== null) log.info(`the state file in ${f.state_dir} is written again`);
      stateLog.msg = null;
    } catch (e) {
      // Keyed by the errno (the message names a different temp file every time).
      const err = e as NodeJS.ErrnoException;
      const key = err.code ?? err.message;
      if (logRepeatNow(stateLog, key, t)) log.error({ error: err.message }, `cannot write the state file in ${f.state_dir} (said again in a minute if it persists)`);
    }
  }

  function saveLease(clean: boolean): void {
    const armed = pools.filter((p) => p.verdict?.armed).map((p) => p.cfg.path);
    const key = JSON.stringify([clean, armed]);
    if (key === leaseArmed) return;
    leaseArmed = key;
    const text = leaseText({ version: 1, pid: process.pid, boot_id: boot ?? null, written_at_ms: Date.now(), written_at_mono_ms: bootMonoMs(), ...optionalOffset(), clean, armed });
    const write = (): void =>
      markerWriter.post(leasePath(f.marker_dir), text, (error) => {
        if (error === null) {
          leaseLog.msg = null;
          return;
        }
        const errKey = error.replace(/\S*\.tmp\S*/g, '');
        if (logRepeatNow(leaseLog, errKey, now())) log.error({ error }, `cannot write the fencer lease in ${f.marker_dir}; retrying`);
        // Retry while it is still the latest word (a later change posts its own).
        setTimeout(() => leaseArmed === key && write(), 5000).unref();
      });
    write();
  }

  // ---- runtime pools: the file is read by a child every RUNTIME_POOLS_POLL_MS, never by this thread
  // (it is on disk that can hang); what the read gave is applied on the tick after it came ----
  const resolving = new Set<string>();
  /** Entries of the file's current content that are not added (another path to a guarded pool), and what was said once; cleared when the file changes. */
  const rtIgnored = new Set<string>();
  const rtSaid = new Set<string>();
  let rtReading = false;
  let rtReadAtMs = now();
  let rtRead: RuntimeRaw | undefined;
  function readRuntimePoolsLater(t: number): void {
    if (rtReading || t - rtReadAtMs < RUNTIME_POOLS_POLL_MS) return;
    rtReading = true;
    rtReadAtMs = t;
    void readRuntimePoolsChild(rtFile, tools.dd, run).then((r) => {
      rtReading = false;
      rtRead = r;
    });
  }
  function applyRuntimeRead(r: RuntimeRaw, t: number): void {
    const j = judgeRuntimeRead({ content: rtContent, error: rtError }, r);
    if (j.kind === 'same') return;
    if (j.changed) {
      rtContent = j.content;
      rtIgnored.clear();
      rtSaid.clear();
    }
    if (j.kind === 'unusable') {
      if (logRepeatNow(rtLog, j.error, t))
        log.error(
          { file: rtFile, error: j.error, kept: rtWanted.map((p) => p.path) },
          `the runtime pools file ${rtFile} is unusable (${j.error}): keeping the last good set of runtime pools (${rtWanted.map((p) => p.path).join(', ') || 'none'}); said again in a minute if it persists`,
        );
      rtError = j.error;
    } else {
      if (rtError !== null) log.info({ file: rtFile }, `the runtime pools file ${rtFile} is usable again`);
      rtError = null;
      rtLog.msg = null;
      rtWanted = j.pools;
    }
  }
  function syncRuntimePools(t: number): void {
    if (rtRead) {
      const r = rtRead;
      rtRead = undefined;
      applyRuntimeRead(r, t);
    }
    readRuntimePoolsLater(t);
    const wanted = rtWanted.filter((e) => !resolving.has(e.path));
    const rec = reconcile(
      pools.map((p) => ({
        path: p.cfg.path,
        source: p.source,
        heartbeat: p.cfg.heartbeat,
        fence_when: p.cfg.fence_when,
        view: {
          state: p.verdict?.state ?? 'unverified',
          armed: p.verdict?.armed ?? false,
          fenced: fenced?.pool === p.cfg.path || (killVms?.snapshot(p.cfg.path)?.phase ?? 'idle') !== 'idle',
        },
      })),
      wanted,
    );
    for (const p of pools)
      if (p.removing && rtWanted.some((e) => e.path === p.cfg.path)) {
        p.removing = undefined;
        log.info({ pool: p.cfg.path }, `runtime pool ${p.cfg.path} is in the runtime pools file again: its removal is off`);
      }
    for (const i of rec.ignore) {
      if (rtSaid.has(i.path)) continue;
      rtSaid.add(i.path);
      log.warn({ pool: i.path, why: i.why }, `runtime pool ${i.path} in ${rtFile} is not applied: ${i.why}`);
    }
    for (const u of rec.update) {
      const p = pools.find((x) => x.cfg.path === u.path)!;
      log.info({ pool: u.path, from: p.cfg.fence_when, to: u.fence_when }, `runtime pool ${u.path}: fence_when is now ${u.fence_when}`);
      p.cfg = { ...p.cfg, fence_when: u.fence_when };
    }
    for (const path of rec.remove) {
      const i = pools.findIndex((x) => x.cfg.path === path);
      const p = pools[i];
      pools.splice(i, 1);
      p.inFlight?.abort.abort();
      killVms?.untrack(path);
      log.info({ pool: path, state: p.verdict?.state ?? 'unverified' }, `runtime pool ${path} removed (it was ${p.verdict?.state ?? 'unverified'}): no longer guarded`);
    }
    for (const d of rec.defer) {
      const p = pools.find((x) => x.cfg.path === d.path)!;
      if (p.removing === undefined || !p.removing.startsWith('removed from the runtime pools file:'))
        log.warn({ pool: d.path, why: d.why }, `runtime pool ${d.path} was removed from the runtime pools file, but ${d.why}: it stays guarded until it verifies again`);
      p.removing = `removed from the runtime pools file: ${d.why}`;
    }
    for (const e of rec.add) {
      if (configPaths.has(e.path) || rtIgnored.has(e.path)) continue;
      resolving.add(e.path);
      const p = newPool(entryPoolConfig(e), 'runtime');
      resolvePool(p).then(() => {
        resolving.delete(e.path);
        const still = rtWanted.find((x) => x.path === e.path);
        if (!still || still.heartbeat !== e.heartbeat || pools.some((q) => q.cfg.path === e.path)) return;
        p.cfg = entryPoolConfig(still);
        const dup = pools.find((q) => q.probePath === p.probePath);
        if (dup) {
          rtIgnored.add(e.path);
          log.warn({ pool: e.path, resolved: p.probePath, guarded_as: dup.cfg.path }, `runtime pool ${e.path} is ${dup.cfg.path} (${p.probePath}), guarded already: ignored`);
          return;
        }
        p.addedMs = now();
        pools.push(p);
        killVms?.track(e.path, p.probePath);
        log.info(
          { pool: e.path, resolved: p.probePath, heartbeat: p.cfg.heartbeat, fence_when: p.cfg.fence_when, added_by: e.added_by },
          `runtime pool ${e.path} added: guarded from now on; it arms on its first verified heartbeat`,
        );
      });
    }
  }

  let lastLoopMs: number | undefined;
  let suspendedMs = clock.sample();
  function loop(): void {
    // A resume from a suspend to RAM or disk is first seen here: the clock takes the suspend in.
    const suspendedBefore = suspendedMs;
    suspendedMs = clock.sample();
    const suspended = suspendedMs - suspendedBefore;
    const t0 = now();
    if (suspended > SUSPEND_NOISE_MS) {
      // Softdog and every timer slept with the host; the peers did not. No pet, no hold: a pool whose
      // age, suspend included, is past fence_after_s fences now, though its storage may answer again.
      log.warn(
        { suspended_s: round3(suspended / 1000) },
        `the host was suspended for ${round3(suspended / 1000)} s (the watchdog does not count a suspend, the peers do): pool ages include it, and a pool expired across it fences now`,
      );
      vm.answer = vmAnswerAcrossSuspend(vm.answer, suspended);
    }
    // The loop itself stalled (SIGSTOP, a paused VM, swap): that is the watchdog's job, and it was not
    // petted meanwhile. A pool that was not expired before the stall gets one fresh probe before its
    // age, measured across the stall, fences (sbd's inquisitor likewise judges its servants' fresh
    // liveness on resume). Once per expiry: a pool already expired before a stall gets no new hold.
    const until = resumeHoldUntil(lastLoopMs, t0, tick, timing, suspended);
    if (until !== undefined) {
      const held = pools.filter((p) => p.verdict !== undefined && p.verdict.state !== 'expired' && !fenced);
      for (const p of held) p.resumeHoldUntilMs = until;
      log.warn(
        { stalled_s: round3((t0 - lastLoopMs!) / 1000), pools: held.map((p) => p.cfg.path) },
        `the fencer's loop stalled for ${round3((t0 - lastLoopMs!) / 1000)} s (the watchdog was not petted meanwhile); a pool that expires on the age measured across it fences only if a fresh probe does not verify within probe_timeout_s`,
      );
    }
    lastLoopMs = t0;
    act(planTick(facts(t0)), t0);
    // After this tick's verdicts, never before: whether a runtime pool gone from the file may go is
    // decided on its verdict, and a pool not judged yet (the first tick of a start, whose pool the
    // crashed fencer had armed and late) has none: it would read as unverified and go, its expiry with it.
    try {
      syncRuntimePools(now());
    } catch (e) {
      log.error({ error: (e as Error).message }, 'cannot apply the runtime pools file');
    }
  }

  function transition(p: PoolRuntime, v: PoolPlan, t: number): void {
    p.verdict = v;
    if (v.overdue && !p.overdueSaid) {
      p.overdueSaid = true;
      const guards = p.cfg.fence_when === 'always' || v.inUse !== false;
      log.error(
        { pool: p.cfg.path, startup_window_s: f.startup_window_s, in_use: v.inUse, fence_when: p.cfg.fence_when, last_error: p.lastError },
        overdueMessage(p.cfg.path, f.startup_window_s, p.lastError, { armed: v.armed, guards, runtime: p.addedMs !== undefined }),
      );
    }
    if (v.state === p.prevState) return;
    const fields = { pool: p.cfg.path, from: p.prevState, to: v.state, last_ok_age_s: v.ageMs === undefined ? null : round3(v.ageMs / 1000) };
    // Storage that is slow but answers flips healthy ↔ late with every probe: say so once a minute,
    // and at debug level in between (the state file and brick status always show the current state).
    const flap = (v.state === 'late' && p.prevState === 'healthy') || (v.state === 'healthy' && p.prevState === 'late');
    const quiet = flap && t - p.lastLateLogMs < LATE_LOG_EVERY_MS;
    if (flap && !quiet) p.lastLateLogMs = t;
    if (quiet) log.debug(fields, `pool ${p.cfg.path} is ${v.state}`);
    else if (v.state === 'late') log.warn(fields, `pool ${p.cfg.path} is late: no verified heartbeat for ${fields.last_ok_age_s} s (fences at ${f.fence_after_s} s)`);
    else if (v.state === 'dead') log.error(fields, `pool ${p.cfg.path} is DEAD (no verified heartbeat for ${fields.last_ok_age_s} s); no running VM uses it, so the host is not fenced`);
    else if (v.state === 'expired') log.error(fields, v.held ? `pool ${p.cfg.path} expired; no pet, and it fences unless its first probe since this start (or since the fencer's stall) verifies` : `pool ${p.cfg.path} expired`);
    else if (p.prevState === 'unverified') log.info(fields, `pool ${p.cfg.path} armed: first verified heartbeat in ${p.file}`);
    else log.info(fields, `pool ${p.cfg.path} is ${v.state} again`);
    p.prevState = v.state;
  }

  function snapshot(clean: boolean): FencerState {
    // Every age in the file is as of its written_at (state.ts), the verdicts' included: they were
    // judged at the last tick, and a stop writes up to a tick after it (longer after a stall of the
    // loop). Written as judged, a restart would take the last verified heartbeat for that much
    // younger than it is, and fence that much late.
    const t = now();
    const monoAt = bootMonoMs();
    const sinceJudged = judgedAtMs === undefined ? 0 : t - judgedAtMs;
    return {
      version: 1,
      pid: process.pid,
      ...(pidStart ? { pid_start: pidStart } : {}),
      boot_id: boot ?? null,
      clean_stop: clean,
      host_id: f.host_id || (pools[0]?.hostId ?? ''),
      written_at_ms: Date.now(),
      written_at_mono_ms: monoAt,
      ...optionalOffset(),
      started_at_ms: startedAtMs,
      action: f.action,
      fence_after_s: f.fence_after_s,
      probe_interval_s: f.probe_interval_s,
      probe_timeout_s: f.probe_timeout_s,
      watchdog: {
        device: f.watchdog_device,
        open: Boolean(watchdog),
        petting,
        last_pet_age_s: lastPetMs === undefined ? null : round3((t - lastPetMs) / 1000),
        timeout_s: f.watchdog_timeout_s,
        ...(watchdogNotADevice ? { not_a_device: true } : {}),
      },
      fenced,
      last_fence: lastFence,
      runtime_pools: { file: rtFile, error: rtError },
      pools: pools.map((p): PoolState => {
        const v = p.verdict;
        const stuck = p.inFlight && p.inFlight.resultIn ? 1 : 0;
        return {
          path: p.cfg.path,
          source: p.source,
          removing: p.removing ?? null,
          resolved: p.probePath,
          heartbeat: p.cfg.heartbeat,
          heartbeat_file: p.file,
          fence_when: p.cfg.fence_when,
          state: v?.state ?? 'unverified',
          armed: v?.armed ?? false,
          in_use: v?.inUse ?? 'unknown',
          ...verdictAgesAt(v, sinceJudged),
          probe_latency_ms: p.latency,
          stuck_probes: stuck,
          stuck_for_s: stuck ? round3((t - p.inFlight!.startedMs) / 1000) : null,
          probes_ok: p.ok,
          probes_failed: p.failed,
          last_error: p.lastError,
          startup_overdue: v?.overdue ?? false,
          ...(killVms ? { kill_vms: killVms.snapshot(p.cfg.path) } : {}),
        };
      }),
      ...(killVms ? { kill_vms: killVms.counters() } : {}),
    };
  }

  const poisonFifo = testEnv(TEST_ENV.poisonThreadpool);
  if (poisonFifo) poisonThreadpool(poisonFifo, log);

  return await new Promise<number>((resolve) => {
    clearTimeout(startupTimer);
    loopStartMs = now();
    let timer: NodeJS.Timeout | undefined;
    // A failed start-up (rule 9) ends like a crash for what is armed (the next start inherits it:
    // no expiry is lost) but disarms the watchdog: the fencer is not there to pet it, and a host
    // whose pool path is wrong must not be reset for it. It exits non-zero (4: not protected).
    const stop = (sig: string, exitCode = 0) => {
      clearInterval(timer);
      let saidIgnored = false;
      onStopRequest = (again) => {
        if (saidIgnored) return;
        saidIgnored = true;
        log.warn({ signal: again }, `${again} ignored: the stop (${sig}) is already under way`);
      };
      const failed = exitCode !== 0;
      const resets = fenced && !actionKeepsHostUp(f.action);
      if (watchdog) {
        if (resets) {
          watchdog.abandon();
          log.error(`${sig} after fencing: the watchdog stays armed`);
        } else {
          try {
            watchdog.disarm();
            log.info(failed ? `${sig}: watchdog disarmed (magic close); armed pools are handed to the next start` : `${sig}: clean stop; watchdog disarmed (magic close)`);
          } catch (e) {
            log.error({ error: (e as Error).message }, `${sig}: could not disarm the watchdog`);
          }
        }
      } else log.info(`${sig}: clean stop`);
      petting = false;
      // A clean stop carries nothing to a start more than fence_after_s later (a restart within it
      // keeps the armed pools: planner.inherit); after a fence the next fencer keeps what was armed.
      saveState(now(), !resets && !failed);
      saveLease(!resets && !failed);
      // The clean-stop lease must be on disk before exit (a bounded wait: its children may be stuck),
      // and a fence under way still runs its action (by the marker's deadline) before the exit.
      void Promise.all([markerWriter.flush(1000), fenceAction]).finally(async () => {
        lock.release();
        // The last lines (the stop's) reach a slow log reader before the exit; a stuck one gets 1 s.
        await stdout?.writeOut(1000);
        // Children stuck in D state would keep the event loop alive; they are not ours to wait for.
        setTimeout(() => process.exit(exitCode), 100).unref();
        resolve(exitCode);
      });
    };
    failStartup = (paths) => {
      log.error({ pools: paths, startup_window_s: f.startup_window_s, exit: 4 }, `start-up FAILED: ${paths.join(', ')} guarding VMs did not verify within startup_window_s (${f.startup_window_s} s); exiting (4) rather than pet the watchdog over unverified storage`);
      stop('start-up window', 4);
    };
    onStopRequest = stop;
    if (stopRequest) {
      // Stopped during start-up, before any tick: judge the pools once (no probe, no pet) so that the
      // state and lease this stop writes keep what was inherited; unjudged, every pool would be
      // written unarmed and a restart would begin fresh over the storage the crashed fencer had armed.
      const t = now();
      planTick(facts(t)).pools.forEach((v, i) => (pools[i].verdict = v));
      judgedAtMs = t;
      stop(stopRequest);
    } else {
      timer = setInterval(loop, tick);
      loop();
    }
  });
}

/** TEST ONLY: fill the libuv threadpool with opens of a FIFO nobody writes, then check it is blocked. */
function poisonThreadpool(fifo: string, log: Logger): void {
  log.warn({ fifo }, `TEST ONLY: ${TEST_ENV.poisonThreadpool}: blocking the libuv threadpool with 16 opens of a FIFO with no writer`);
  for (let i = 0; i < 16; i++) fsOpenAsync(fifo, constants.O_RDONLY, () => {});
  fsStatAsync('/', () => log.warn('threadpool canary completed: the threadpool is NOT blocked'));
}

/**
 * The error logged once when a pool has not verified within startup_window_s: what happens next
 * depends on the pool. `runtime`: added by the orchestrator while this process ran (addedMs), whose
 * window runs from its adding and which never fails start-up (planner.ts).
 */
export function overdueMessage(
  path: string,
  windowS: number,
  lastError: string | null | undefined,
  p: { armed: boolean; guards: boolean; runtime: boolean },
): string {
  const what = p.runtime ? `runtime pool ${path} has NOT verified within startup_window_s (${windowS} s) of being added` : `pool ${path} has NOT verified within startup_window_s (${windowS} s) of start`;
  const why = lastError ? ` (last error: ${lastError})` : '';
  if (p.armed) return `${what}${why}: it is armed from the previous fencer, so its expiry fences unless it verifies first`;
  if (p.runtime)
    return `${what}${why}: ` +
      (p.guards ? 'VMs may use it, unguarded until it verifies' : 'no running VM uses it') +
      '; the fencer keeps guarding the other pools and arms this one on its first verified heartbeat';
  if (p.guards) return `${what}${why}: it guards VMs, so start-up fails`;
  return `${what}${why}: no running VM uses it, so the fencer keeps running (it arms on its first verified heartbeat; start-up fails if a VM uses it before then)`;
}
