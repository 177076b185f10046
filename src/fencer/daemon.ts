// `brick fencer`: the NFS heartbeat watchdog. One process, one main loop on a monotonic clock:
// every tick it starts the probes that are due (each a chain of child processes, probe.ts), asks
// which pools running VMs use (vm-usage.ts), decides (pool-health.ts), pets the watchdog or fences,
// and rewrites the state file. The loop itself uses only timers, child processes and synchronous
// writes to local files and pre-opened fds: nothing it needs runs on the libuv threadpool, so hung
// pool I/O elsewhere in the process cannot delay a pet or a fence (reference/fencing.md §6, §7).
import { open as fsOpenAsync, stat as fsStatAsync, constants } from 'node:fs';
import { uptime } from 'node:os';
import type { Config, PoolConfig } from '../config/schema.js';
import { fenceCommandArgv } from '../config/rules.js';
import { createLogger, nonBlockingStdout, type LogFormat, type Logger } from '../shared/log.js';
import { run as realRun, type Runner } from '../shared/run.js';
import { BrickError } from '../shared/errors.js';
import { heartbeatContent, heartbeatFile, type HeartbeatFormat } from './heartbeat-format.js';
import { defaultHostId } from './host-id.js';
import { planTick, tickMs, nextProbeAt, type InUse, type PoolHealthState, type Timing, type PoolVerdict } from './pool-health.js';
import { probeSteps, resolveTools, startProbe, type ProbeTools } from './probe.js';
import { openSysrq, openWatchdog, type SysrqTrigger, type Watchdog } from './watchdog.js';
import { prepareWatchdog } from './watchdog-policy.js';
import { ensureDir, readFencerState, round3, writeFencerState, type FencerState, type PoolState } from './state.js';
import { readFenceMarker, writeFenceMarker, type FenceMarker } from './marker.js';
import { queryPoolUsage, resolveVmQuery } from './vm-usage.js';
import { KillVms } from './kill-vms/controller.js';

export interface FencerOptions {
  logFormat: LogFormat;
  logLevel?: string;
  /** Tests: a collector instead of stdout. */
  logger?: Logger;
  run?: Runner;
}

/** Test-only injection points, read from the environment and announced loudly at start. */
export const TEST_ENV = {
  /** Seconds added to every probe (an extra `sleep` child inside the probe's deadline). */
  probeDelay: 'BRICK_TEST_PROBE_DELAY_S',
  /** A FIFO path: at start, 16 async fs.open calls on it block the whole libuv threadpool. */
  poisonThreadpool: 'BRICK_TEST_POISON_THREADPOOL',
} as const;

interface PoolRuntime {
  cfg: PoolConfig;
  hostId: string;
  file: string;
  lastOkMs?: number;
  lastStartMs?: number;
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
}

/** A pool flapping between healthy and late is logged at most this often. */
const LATE_LOG_EVERY_MS = 60_000;

export async function runFencer(config: Config, opts: FencerOptions): Promise<number> {
  const f = config.fencer;
  // Never wait on the log reader: a stuck journald must not stop the watchdog being petted.
  const log = opts.logger ?? createLogger({ svc: 'fencer', format: opts.logFormat, level: opts.logLevel, destination: nonBlockingStdout() });
  const run = opts.run ?? realRun;
  // Take SIGTERM/SIGINT before the watchdog is opened: until a JS listener exists the kernel's
  // default kills the process, and a fencer killed with the watchdog open and no 'V' written resets
  // the host. A stop that arrives during start-up is carried out once the loop runs.
  let stopRequest: string | undefined;
  let onStopRequest: ((sig: string) => void) | undefined;
  const request = (sig: string) => (onStopRequest ? onStopRequest(sig) : (stopRequest ??= sig));
  process.once('SIGTERM', () => request('SIGTERM'));
  process.once('SIGINT', () => request('SIGINT'));
  const now = () => performance.now();
  const timing: Timing = { probeIntervalMs: f.probe_interval_s * 1000, probeTimeoutMs: f.probe_timeout_s * 1000, fenceAfterMs: f.fence_after_s * 1000 };
  const tick = tickMs(timing, f.watchdog_timeout_s * 1000);
  const delayS = Number(process.env[TEST_ENV.probeDelay] ?? 0) || 0;
  if (delayS > 0) log.warn({ delay_s: delayS }, `TEST ONLY: ${TEST_ENV.probeDelay} adds ${delayS} s to every probe`);

  // ---- start-up: everything that may fail fails here, before anything is armed ----
  const tools: ProbeTools = await resolveTools();
  const pools: PoolRuntime[] = f.pool.map((cfg) => {
    const hostId = f.host_id || defaultHostId(cfg.heartbeat as HeartbeatFormat);
    if (!hostId) throw new BrickError('NOT_READY', 'fencer.host_id: not set and this host has no IPv4 address to derive it from; set host_id');
    return {
      cfg,
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
    };
  });
  ensureDir(f.state_dir);
  ensureDir(f.marker_dir);
  inheritArmedPools(pools, readFencerState(f.state_dir), now(), log);
  const lastFence = readFenceMarker(f.marker_dir) ?? null;
  if (lastFence)
    log.warn({ last_fence: lastFence }, `this host fenced itself at ${lastFence.at} (pool ${lastFence.pool}: ${lastFence.reason}); remove ${f.marker_dir}/fence-marker.json once understood`);
  let sysrq: SysrqTrigger | undefined;
  if (f.action === 'reboot' || f.action === 'crash' || f.action === 'kill-vms') sysrq = openSysrq(f.sysrq_trigger);
  const fenceArgv = f.action === 'command' ? fenceCommandArgv(f.command) : [];
  if (f.action === 'log-only') log.warn('fencer.action = "log-only": an expired pool is only logged; this host will NOT be reset and its VMs may run twice');
  let watchdog: Watchdog | undefined;
  if (f.watchdog_device) {
    await prepareWatchdog(f.watchdog_device, f.watchdog_timeout_s, { run, warn: (msg, detail) => log.warn(detail, msg) });
    watchdog = openWatchdog(f.watchdog_device);
    watchdog.pet();
  } else {
    log.warn('fencer.watchdog_device = "": no hardware watchdog; if the fencer itself hangs or dies, nothing resets this host');
  }
  let lastPetMs: number | undefined = watchdog ? now() : undefined;
  const vmHow = await resolveVmQuery(f.vm_query);
  if (vmHow.kind === 'none' || !vmHow.bin)
    log.warn({ vm_query: f.vm_query }, 'cannot ask which pools running VMs use: every pool counts as used (expiry fences)');
  const vmUri = config.domain.libvirt_uri || undefined;
  let vmUsage: { at: number; map: Map<string, boolean> | 'unknown' } | undefined;
  let vmQueryInFlight = false;
  const vmRefreshMs = Math.max(1000, timing.probeIntervalMs);
  // action = "kill-vms" (kill-vms/): an expired, used pool has its holders killed; the host is reset
  // (as "reboot") only when that cannot be shown complete and safe within kill_timeout_s.
  const killVms =
    f.action === 'kill-vms'
      ? new KillVms({
          pools: pools.map((p) => p.cfg.path),
          killTimeoutMs: f.kill_timeout_s * 1000,
          markerDir: f.marker_dir,
          vm: { ...vmHow, uri: vmUri },
          destroyTimeoutMs: f.vm_query_timeout_s * 1000,
          run,
          log,
          now,
        })
      : undefined;
  let killHold = new Set<string>();

  log.info(
    {
      pools: pools.map((p) => ({ path: p.cfg.path, heartbeat: p.cfg.heartbeat, file: p.file, fence_when: p.cfg.fence_when })),
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
  let fenced: FenceMarker | null = null;

  // ---- probes ----
  function maybeProbe(p: PoolRuntime, t: number): void {
    if (p.inFlight) {
      if (p.inFlight.resultIn && t - p.lastStuckLogMs >= 5000) {
        p.lastStuckLogMs = t;
        log.error({ pool: p.cfg.path, blocked_s: round3((t - p.inFlight.startedMs) / 1000) }, `probe of ${p.cfg.path} is stuck past its deadline (blocked in the kernel?); no new probe until it exits`);
      }
      return;
    }
    if (killHold.has(p.cfg.path)) return;
    if (t < nextProbeAt(p.lastStartMs, timing)) return;
    const started = t;
    const wallMs = Date.now();
    const content = heartbeatContent(p.cfg.heartbeat, wallMs);
    const steps = probeSteps({ poolPath: p.cfg.path, hostId: p.hostId, format: p.cfg.heartbeat }, tools, content, { mkdir: !p.mkdirDone, delayS });
    const abort = new AbortController();
    const probe = startProbe(steps, run, timing.probeTimeoutMs, now, p.device, p.cfg.require_mount, abort.signal);
    p.lastStartMs = started;
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

  function maybeQueryVms(t: number): void {
    if (vmQueryInFlight || (vmUsage && t - vmUsage.at < vmRefreshMs)) return;
    vmQueryInFlight = true;
    queryPoolUsage(pools.map((p) => p.cfg.path), { ...vmHow, uri: vmUri }, run, f.vm_query_timeout_s * 1000).then((map) => {
      vmQueryInFlight = false;
      vmUsage = { at: now(), map };
    });
  }

  function inUse(p: PoolRuntime, t: number): InUse {
    // An answer older than a few refreshes is no answer.
    if (!vmUsage || vmUsage.map === 'unknown' || t - vmUsage.at > 3 * vmRefreshMs + f.vm_query_timeout_s * 1000) return 'unknown';
    return vmUsage.map.get(p.cfg.path) ?? 'unknown';
  }

  // ---- the fence path: bounded, nothing from the failed storage ----
  function fence(v: PoolVerdict, why?: string): void {
    const p = pools.find((x) => x.cfg.path === v.path)!;
    const age = v.ageMs === undefined ? null : round3(v.ageMs / 1000);
    const reason = `no verified heartbeat for ${age} s (fence_after_s ${f.fence_after_s})${p.lastError ? `; last error: ${p.lastError}` : ''}${why ? `; ${why}` : ''}`;
    fenced = { at: new Date().toISOString(), pool: v.path, reason, action: f.action, host_id: p.hostId, last_ok_age_s: age };
    log.fatal({ pool: v.path, last_ok_age_s: age, action: f.action }, `FENCING this host: pool ${v.path} ${reason}; action ${f.action}`);
    if (f.action === 'log-only') return;
    // Petting has stopped (planTick never pets once fenced); the hardware watchdog backs up what follows.
    try {
      writeFenceMarker(f.marker_dir, fenced);
    } catch (e) {
      log.error({ error: (e as Error).message }, 'could not write the fence marker; fencing anyway');
    }
    try {
      if (f.action === 'reboot' || f.action === 'kill-vms') sysrq!.write('b');
      else if (f.action === 'crash') sysrq!.write('c');
      else if (f.action === 'command')
        run(fenceArgv[0], fenceArgv.slice(1), { timeoutMs: 10_000, allowFailure: true }).then(
          (r) => log.error({ exit: r.code }, `fence command exited ${r.code}; waiting for the watchdog`),
          (e) => log.error({ error: (e as Error).message }, 'fence command failed; waiting for the watchdog'),
        );
    } catch (e) {
      log.error({ error: (e as Error).message }, 'the fence action failed; the watchdog (no longer petted) must reset the host');
    }
  }

  // ---- the main loop ----
  let lastPlanVerdicts: PoolVerdict[] = [];
  let petting = Boolean(watchdog);
  function loop(): void {
    const t = now();
    for (const p of pools) maybeProbe(p, t);
    if (pools.length) maybeQueryVms(t);
    const facts = pools.map((p) => ({ path: p.cfg.path, fenceWhen: p.cfg.fence_when, lastOkMs: p.lastOkMs, inUse: inUse(p, t) }));
    let plan = planTick(facts, t, timing, { fenced: fenced !== null, action: f.action });
    lastPlanVerdicts = plan.verdicts;
    plan.verdicts.forEach((v, i) => transition(pools[i], v, t));
    if (killVms && !fenced) {
      const k = killVms.tick(plan.verdicts.map((v, i) => ({ path: v.path, fence: v.fence, lastOkMs: pools[i].lastOkMs })), t);
      killHold = k.hold;
      for (const p of pools) if (k.abort.has(p.cfg.path)) p.inFlight?.abort.abort();
      plan = { ...plan, pet: !k.reset, fence: undefined };
      if (k.reset) fence(plan.verdicts.find((v) => v.path === k.reset!.pool)!, k.reset.reason);
    }
    if (plan.fence) fence(plan.fence);
    if (f.action === 'log-only' && fenced && !plan.verdicts.some((v) => v.fence)) fenced = null;
    petting = Boolean(watchdog) && plan.pet && !(fenced && f.action !== 'log-only');
    if (petting && watchdog) {
      try {
        watchdog.pet();
        lastPetMs = t;
      } catch (e) {
        log.error({ error: (e as Error).message }, `cannot pet ${watchdog.device}`);
      }
    }
    try {
      writeFencerState(f.state_dir, snapshot(t, facts.map((x) => x.inUse)));
    } catch (e) {
      log.error({ error: (e as Error).message }, `cannot write the state file in ${f.state_dir}`);
    }
  }

  function transition(p: PoolRuntime, v: PoolVerdict, t: number): void {
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
    else if (v.state === 'expired') log.error(fields, `pool ${p.cfg.path} expired`);
    else if (p.prevState === 'unverified') log.info(fields, `pool ${p.cfg.path} armed: first verified heartbeat in ${p.file}`);
    else log.info(fields, `pool ${p.cfg.path} is ${v.state} again`);
    p.prevState = v.state;
  }

  function snapshot(t: number, uses: InUse[]): FencerState {
    return {
      version: 1,
      pid: process.pid,
      host_id: f.host_id || (pools[0]?.hostId ?? ''),
      written_at_ms: Date.now(),
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
      },
      fenced,
      last_fence: lastFence,
      pools: pools.map((p, i): PoolState => {
        const v = lastPlanVerdicts[i];
        const stuck = p.inFlight && p.inFlight.resultIn ? 1 : 0;
        return {
          path: p.cfg.path,
          heartbeat: p.cfg.heartbeat,
          heartbeat_file: p.file,
          fence_when: p.cfg.fence_when,
          state: v?.state ?? 'unverified',
          armed: v?.armed ?? false,
          in_use: uses[i],
          last_ok_age_s: v?.ageMs === undefined ? null : round3(v.ageMs / 1000),
          fence_in_s: v?.fenceInMs === undefined ? null : round3(v.fenceInMs / 1000),
          probe_latency_ms: p.latency,
          stuck_probes: stuck,
          stuck_for_s: stuck ? round3((t - p.inFlight!.startedMs) / 1000) : null,
          probes_ok: p.ok,
          probes_failed: p.failed,
          last_error: p.lastError,
          ...(killVms ? { kill_vms: killVms.snapshot(p.cfg.path) } : {}),
        };
      }),
      ...(killVms ? { kill_vms: killVms.counters() } : {}),
    };
  }

  const poisonFifo = process.env[TEST_ENV.poisonThreadpool];
  if (poisonFifo) poisonThreadpool(poisonFifo, log);

  return await new Promise<number>((resolve) => {
    const timer = setInterval(loop, tick);
    loop();
    const stop = (sig: string) => {
      clearInterval(timer);
      if (watchdog) {
        if (fenced && f.action !== 'log-only') {
          watchdog.abandon();
          log.error(`${sig} after fencing: the watchdog stays armed`);
        } else {
          try {
            watchdog.disarm();
            log.info(`${sig}: clean stop; watchdog disarmed (magic close)`);
          } catch (e) {
            log.error({ error: (e as Error).message }, `${sig}: could not disarm the watchdog`);
          }
        }
      } else log.info(`${sig}: clean stop`);
      petting = false;
      try {
        writeFencerState(f.state_dir, snapshot(now(), pools.map((p) => inUse(p, now()))));
      } catch {
        /* best effort */
      }
      // Children stuck in D state would keep the event loop alive; they are not ours to wait for.
      setTimeout(() => process.exit(0), 100).unref();
      resolve(0);
    };
    onStopRequest = stop;
    if (stopRequest) stop(stopRequest);
  });
}

/**
 * A fencer restarted within the same boot (crash, kill, upgrade: state_dir is /run, kept across
 * service restarts) carries on where the last one stopped: a pool it had armed stays armed, with the
 * age of its last verified heartbeat carried over by wall clock. Otherwise a fencer that crashed while
 * the storage was dead would come back "unverified", never arm, and pet the watchdog forever.
 */
export function inheritArmedPools(
  pools: Array<{ cfg: { path: string }; lastOkMs?: number }>,
  prev: FencerState | undefined,
  nowMono: number,
  log: Logger,
  nowWallMs = Date.now(),
): void {
  if (!prev || prev.pid === process.pid) return;
  // Only from this boot: a state_dir that survived a reboot must not make the new boot fence at once.
  if (prev.written_at_ms < nowWallMs - uptime() * 1000) return;
  const gapS = Math.max(0, (nowWallMs - prev.written_at_ms) / 1000);
  for (const p of pools) {
    const old = prev.pools.find((x) => x.path === p.cfg.path);
    if (!old || !old.armed || old.last_ok_age_s === null) continue;
    const ageS = Math.max(0, old.last_ok_age_s) + gapS;
    p.lastOkMs = nowMono - ageS * 1000;
    log.warn(
      { pool: p.cfg.path, previous_pid: prev.pid, last_ok_age_s: round3(ageS) },
      `pool ${p.cfg.path} stays armed from the previous fencer (pid ${prev.pid}): last verified heartbeat ${round3(ageS)} s ago`,
    );
  }
}

/** TEST ONLY: fill the libuv threadpool with opens of a FIFO nobody writes, then check it is blocked. */
function poisonThreadpool(fifo: string, log: Logger): void {
  log.warn({ fifo }, `TEST ONLY: ${TEST_ENV.poisonThreadpool}: blocking the libuv threadpool with 16 opens of a FIFO with no writer`);
  for (let i = 0; i < 16; i++) fsOpenAsync(fifo, constants.O_RDONLY, () => {});
  fsStatAsync('/', () => log.warn('threadpool canary completed: the threadpool is NOT blocked'));
}
