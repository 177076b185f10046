// kill-vms inside the fencer's loop: keeps each pool's kill state, runs rounds of facts (gather.ts)
// asynchronously with deadlines, feeds them to the pure planner (decide.ts) every tick, and carries
// out its plan (act.ts). The daemon asks it each tick whether to reset the host and which pools'
// probes to hold; everything else (petting, the reset itself) stays the daemon's.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../shared/log.js';
import type { Runner } from '../../shared/run.js';
import { round3 } from '../state.js';
import { sameBoot, type InheritContext } from '../planner.js';
import { planPoolKill, describeHolders, type KillFacts, type PoolKillState, type KilledProc } from './decide.js';
import { gatherKillFacts, poolMount, HOST_PATHS, type GatherPaths, type KillTarget } from './gather.js';
import { destroyDomains, killHolders, killMarkerFile, markerOf, type KillFn, type KillMarker } from './act.js';
import { devFromStDev, mountOf, parseMountinfo, type MountEntry } from './proc-parse.js';
import type { KillVmsCounters, PoolKillSnapshot } from './snapshot.js';

export type { KillVmsCounters, PoolKillSnapshot };

export interface KillVmsOptions {
  /**
   * Each pool as configured and as the fencer resolved it at start (`realpath -e`): a pool path may
   * be a symlink to the mount, and the mount is looked up under the path the probes really use.
   */
  pools: Array<{ path: string; resolved?: string }>;
  killTimeoutMs: number;
  markerDir: string;
  /** Writes a file in marker_dir durably without waiting (the fencer's marker writer: children, never this thread). */
  writeFile: (file: string, text: string, done: (error: string | null) => void) => void;
  vm: { kind: 'libvirt' | 'xl' | 'none'; bin?: string; uri?: string };
  destroyTimeoutMs: number;
  run: Runner;
  log: Logger;
  now: () => number;
  kill?: KillFn;
  paths?: GatherPaths;
}

interface PoolRt {
  path: string;
  /** Where the mount is looked up: the resolved path (the configured one if it could not be resolved). */
  resolved: string;
  target?: KillTarget;
  recording: boolean;
  state: PoolKillState;
  facts?: KillFacts;
  round?: Promise<void>;
  roundStartMs: number;
  killErrors: Array<{ pid: number; comm: string; error: string }>;
  fencedSinceWall: string | null;
  killedWall: Map<string, string>;
  lastKilled: KilledProc[];
  lastKillAt: string | null;
  processesKilled: number;
  vmsKilled: number;
  spared: number;
  lastWaitLogMs: number;
}

/** What of the previous fencer's state file (state.ts FencerState) decides which mount records a start takes. */
export interface PreviousMounts {
  pid: number;
  boot_id?: string | null;
  written_at_ms: number;
  pools: Array<{ path: string; kill_vms?: Pick<PoolKillSnapshot, 'mount'> }>;
}

/** This boot's id (/proc/sys/kernel/random/boot_id) and wall clock at boot: planner.inherit's context serves. */
export type MountInheritContext = Pick<InheritContext, 'bootId' | 'bootWallMs'>;

/**
 * The mount records a new fencer takes from the previous one of this boot: a pool it guards, not
 * recorded yet, whose recorded mount (device and mount point) is still the one its resolved path is
 * on now. A restarted fencer cannot record a dead pool's mount again (that needs a verified probe),
 * and without a record an expiry of the pool resets the host (tick), killing every VM on it.
 *
 * The boot is judged as planner.inherit judges it (sameBoot: boot id first, the wall clock only for
 * a record without one), and the pid never drops a record: start-up reads the state file under the
 * instance lock before this process writes it, so a record with our pid is a previous fencer's whose
 * pid came round again (pid_max 32768 wraps within hours).
 */
export function inheritMounts(prev: PreviousMounts, c: MountInheritContext, pools: Array<{ path: string; resolved: string; recorded: boolean }>, mounts: MountEntry[]): KillTarget[] {
  if (!sameBoot({ bootId: prev.boot_id ?? undefined, writtenAtMs: prev.written_at_ms }, c)) return [];
  const out: KillTarget[] = [];
  for (const old of prev.pools) {
    const p = pools.find((x) => x.path === old.path);
    const rec = old.kill_vms?.mount;
    if (!p || !rec || p.recorded || out.some((t) => t.path === p.path)) continue;
    const m = mountOf(p.resolved, mounts);
    if (!m || m.dev !== rec.dev || m.mountPoint !== rec.mount_point) continue;
    out.push({ path: old.path, mount: m });
  }
  return out;
}

const FENCED_SCAN_EVERY_MS = 1000;
const key = (k: { pid: number; start: string }) => `${k.pid}:${k.start}`;

export class KillVms {
  private readonly pools = new Map<string, PoolRt>();
  private readonly paths: GatherPaths;
  constructor(private readonly o: KillVmsOptions) {
    this.paths = o.paths ?? HOST_PATHS;
    // sysfs/debugfs directories, not pool paths: a stat here cannot hang on the storage
    if (!existsSync(join(this.paths.debugfs, 'bdi')))
      o.log.warn(
        { debugfs: this.paths.debugfs },
        `kill-vms: debugfs is not mounted on ${this.paths.debugfs}: brick cannot show that no write is pending, so every expiry of a used pool will reset the host (mount -t debugfs debugfs ${this.paths.debugfs})`,
      );
    for (const { path, resolved } of o.pools) this.track(path, resolved);
  }

  /** A pool the fencer guards from now on (also a runtime pool added by the orchestrator). */
  track(path: string, resolved?: string): void {
    if (this.pools.has(path)) return;
    this.pools.set(path, {
      path, resolved: resolved ?? path, recording: false, state: { phase: 'idle' }, roundStartMs: -Infinity, killErrors: [], fencedSinceWall: null,
      killedWall: new Map(), lastKilled: [], lastKillAt: null, processesKilled: 0, vmsKilled: 0, spared: 0, lastWaitLogMs: -Infinity,
    });
  }

  /** A runtime pool the fencer no longer guards (only ever while its phase is idle: the daemon defers any other removal). */
  untrack(path: string): void {
    if (this.pools.get(path)?.state.phase === 'idle') this.pools.delete(path);
  }

  /**
   * A verified probe: record the pool's mount from /proc/self/mountinfo while the storage answers,
   * checked against the device the probe saw. A pool on the root filesystem is never recorded:
   * killing "everything with a file open on /" is not a fence.
   */
  verified(path: string, stDev: string): void {
    const p = this.pools.get(path);
    const dev = devFromStDev(stDev);
    if (!p || !dev || p.recording || (p.target && p.target.mount.dev === dev)) return;
    p.recording = true;
    poolMount(p.resolved, this.paths).then(
      (m) => {
        p.recording = false;
        if (!m || m.dev !== dev) {
          this.o.log.warn({ pool: path, resolved: p.resolved, dev, mount: m ?? null }, `kill-vms: the mount of ${p.resolved} does not match the device its probe saw; not recorded`);
          return;
        }
        if (m.mountPoint === '/') {
          this.o.log.error({ pool: path }, `kill-vms: ${path} is on the root filesystem; an expiry of it resets the host`);
          return;
        }
        p.target = { path, mount: m };
        this.o.log.info({ pool: path, resolved: p.resolved, dev: m.dev, fstype: m.fstype, mount_point: m.mountPoint, source: m.source }, `kill-vms: recorded the mount of ${path}`);
      },
      (e: unknown) => {
        p.recording = false;
        this.o.log.warn({ pool: path, error: (e as Error).message }, 'kill-vms: cannot read /proc/self/mountinfo');
      },
    );
  }

  /**
   * Take the pools' mount records from the previous fencer of this boot, where the same mount
   * (device and mount point) is still mounted (inheritMounts decides).
   */
  inherit(prev: PreviousMounts | undefined, c: MountInheritContext): void {
    if (!prev) return;
    let mounts;
    try {
      mounts = parseMountinfo(readFileSync(join(this.paths.proc, 'self/mountinfo'), 'utf8'));
    } catch {
      return;
    }
    const pools = [...this.pools.values()].map((p) => ({ path: p.path, resolved: p.resolved, recorded: Boolean(p.target) }));
    for (const t of inheritMounts(prev, c, pools, mounts)) {
      const p = this.pools.get(t.path)!;
      p.target = t;
      this.o.log.info({ pool: t.path, dev: t.mount.dev, previous_pid: prev.pid }, `kill-vms: the mount of ${t.path} recorded by the previous fencer is still there`);
    }
  }

  /**
   * One tick. `pools` carries each pool's verdict (fence: expired and in use) and the start of its
   * last verified probe. Returns a reset reason when the host must be reset, and the pools whose
   * probes must be held (or aborted now).
   */
  tick(pools: Array<{ path: string; fence: boolean; lastOkMs: number | undefined }>, now: number): { reset?: { pool: string; reason: string }; hold: Set<string>; abort: Set<string> } {
    const hold = new Set<string>();
    const abort = new Set<string>();
    let reset: { pool: string; reason: string } | undefined;
    for (const v of pools) {
      const p = this.pools.get(v.path);
      if (!p) continue;
      const was = p.state.phase;
      const plan = planPoolKill(p.state, { fence: v.fence, lastOkMs: v.lastOkMs, facts: p.facts, killErrors: p.killErrors }, now, this.o.killTimeoutMs);
      p.killErrors = [];
      if (plan.next.phase === 'killing' && was !== 'killing') {
        p.facts = undefined;
        if (was === 'idle') {
          p.fencedSinceWall = new Date().toISOString();
          this.o.log.error({ pool: v.path, kill_timeout_s: this.o.killTimeoutMs / 1000 }, `kill-vms: pool ${v.path} expired while in use: killing every process that holds a file on it`);
        } else this.o.log.error({ pool: v.path, holders: describeHolders(plan.kill) }, `kill-vms: pool ${v.path} is fenced and something started on it: killing ${describeHolders(plan.kill)}`);
      }
      if (plan.next.phase === 'killing' && !p.target && !reset)
        reset = { pool: v.path, reason: 'kill-vms has no record of the pool\'s mount from while it was healthy, so it cannot tell what holds it' };
      p.state = plan.next;
      if (plan.kill.length) this.killNow(p, plan.kill);
      if (plan.reset && !reset) reset = { pool: v.path, reason: plan.reset };
      if (plan.spared) this.spared(p, plan.spared, now);
      if (plan.verifiedAgain) {
        this.o.log.info({ pool: v.path, fenced_since: p.fencedSinceWall }, `kill-vms: pool ${v.path} verified again; no longer fenced`);
        p.fencedSinceWall = null;
      }
      if (plan.next.phase === 'killing' && now - p.lastWaitLogMs >= 2000 && plan.next.lastFacts) {
        p.lastWaitLogMs = now;
        this.o.log.warn({ pool: v.path, waiting_for: plan.next.lastFacts, reset_in_s: round3((plan.next.deadlineMs - now) / 1000) }, `kill-vms: pool ${v.path} not spared yet: ${plan.next.lastFacts}`);
      }
      if (plan.abortSockets) this.abortSockets(p, plan.abortSockets);
      if (plan.holdProbes) hold.add(v.path);
      if (plan.abortProbe) abort.add(v.path);
      if (plan.gather) this.maybeGather(p, now);
    }
    return { reset, hold, abort };
  }

  private killNow(p: PoolRt, hs: Parameters<typeof killHolders>[0]): void {
    const fresh = hs.filter((h) => !p.killedWall.has(key(h)));
    const at = new Date().toISOString();
    for (const h of fresh) {
      p.killedWall.set(key(h), at);
      p.processesKilled++;
      if (h.vm) p.vmsKilled++;
      this.o.log.error(
        { pool: p.path, pid: h.pid, comm: h.comm, vm: h.vm?.name ?? null, uuid: h.vm?.uuid ?? null, holds: h.how.slice(0, 5) },
        `kill-vms: SIGKILL ${h.vm?.name ? `VM ${h.vm.name} (pid ${h.pid})` : `pid ${h.pid} (${h.comm})`}: it holds a file on ${p.path}`,
      );
    }
    if (fresh.length) p.lastKillAt = at;
    p.killErrors.push(...killHolders(hs, this.o.kill, this.paths.proc));
  }

  private spared(p: PoolRt, killed: KilledProc[], now: number): void {
    p.spared++;
    p.lastKilled = killed;
    const at = new Date().toISOString();
    for (const k of killed) {
      const m: KillMarker = markerOf(p.path, k, p.killedWall.get(key(k)) ?? at);
      if (k.vm) {
        const { file, text } = killMarkerFile(this.o.markerDir, m);
        this.o.log.error({ pool: p.path, vm: k.vm.name ?? null, uuid: k.vm.uuid ?? null, pid: k.pid, marker: file, gone_after_s: m.gone_after_s }, `kill-vms: VM ${k.vm.name ?? k.vm.uuid ?? k.pid} killed (pool ${p.path})`);
        try {
          this.o.writeFile(file, text, (error) => error !== null && this.o.log.error({ error, marker: file }, `kill-vms: could not write the kill marker ${file}`));
        } catch (e) {
          this.o.log.error({ error: (e as Error).message, marker: file }, `kill-vms: could not write the kill marker ${file}`);
        }
      }
    }
    const s = p.state.phase === 'fenced' ? p.state : undefined;
    this.o.log.error(
      { pool: p.path, killed: killed.length, fenced_since: p.fencedSinceWall, took_s: s ? round3((now - Math.min(...killed.map((k) => k.killedAtMs), now)) / 1000) : null },
      `kill-vms: pool ${p.path}: ${killed.length ? `${describeHolders(killed)} gone` : 'nothing held it'}, no write pending; the host is spared and the pool stays fenced until its heartbeat is verified again`,
    );
    if (killed.some((k) => k.vm))
      void destroyDomains(this.o.vm, killed, this.o.run, this.o.destroyTimeoutMs).then((rs) => {
        for (const r of rs) (r.ok ? this.o.log.info.bind(this.o.log) : this.o.log.warn.bind(this.o.log))({ pool: p.path, vm: r.vm, result: r.message }, `kill-vms: destroy ${r.vm}: ${r.message}`);
      });
  }

  /** `ss -K` (SOCK_DESTROY; the kernel needs CONFIG_INET_DIAG_DESTROY, else nothing happens and the bytes stay: reset). */
  private abortSockets(p: PoolRt, sockets: Array<{ addr: string; port: number; bytes: number }>): void {
    const targets = [...new Map(sockets.map((x) => [`${x.addr} ${x.port}`, x])).values()];
    for (const t of targets) {
      const bytes = sockets.filter((x) => x.addr === t.addr && x.port === t.port).reduce((a, x) => a + x.bytes, 0);
      this.o.log.warn(
        { pool: p.path, server: t.addr, port: t.port, bytes },
        `kill-vms: pool ${p.path}: nothing is pending but ${bytes} bytes in TCP sockets to ${t.addr}:${t.port}, which the kernel would retransmit; destroying them (ss -K)`,
      );
      this.o.run('ss', ['-K', '-t', '-n', 'dst', t.addr, 'dport', '=', `:${t.port}`], { timeoutMs: 2000, allowFailure: true }).then(
        (r) => r.code !== 0 && this.o.log.warn({ pool: p.path, exit: r.code, stderr: r.stderr.trim().slice(0, 300) }, `kill-vms: ss -K exited ${r.code}`),
        (e: unknown) => this.o.log.warn({ pool: p.path, error: (e as Error).message }, 'kill-vms: ss -K failed'),
      );
    }
  }

  private maybeGather(p: PoolRt, now: number): void {
    if (p.round || !p.target) return;
    if (p.state.phase === 'fenced' && now - p.roundStartMs < FENCED_SCAN_EVERY_MS) return;
    const killed = p.state.phase === 'idle' ? [] : p.state.killed;
    const deadline = p.state.phase === 'killing' ? Math.max(100, p.state.deadlineMs - now) : 5000;
    p.roundStartMs = now;
    const since = p.state.phase === 'idle' ? now : p.state.sinceMs;
    p.round = gatherKillFacts(p.target, killed, { paths: this.paths, deadlineMs: deadline, now: this.o.now }).then((f) => {
      // An unfinished round proves nothing; it must not hide a finished one of this phase (its reason is the better one).
      if (f.complete || !p.facts || !p.facts.complete || p.facts.atMs < since) p.facts = f;
      p.round = undefined;
    });
  }

  counters(): KillVmsCounters {
    const c = { processes_killed_total: 0, vms_killed_total: 0, spared_total: 0 };
    for (const p of this.pools.values()) {
      c.processes_killed_total += p.processesKilled;
      c.vms_killed_total += p.vmsKilled;
      c.spared_total += p.spared;
    }
    return c;
  }

  snapshot(path: string): PoolKillSnapshot | undefined {
    const p = this.pools.get(path);
    if (!p) return undefined;
    const s = p.state;
    const killed = s.phase === 'idle' ? p.lastKilled : s.killed;
    return {
      phase: s.phase,
      fenced_since: s.phase === 'idle' ? null : p.fencedSinceWall,
      waiting_for: s.phase === 'killing' ? (s.lastFacts ?? 'gathering facts') : null,
      killed: killed.map((k) => ({
        pid: k.pid, comm: k.comm, vm: k.vm?.name ?? null, uuid: k.vm?.uuid ?? null, killed_at: p.killedWall.get(key(k)) ?? '',
        gone_after_s: k.goneAtMs === undefined ? null : round3((k.goneAtMs - k.killedAtMs) / 1000),
      })),
      last_kill_at: p.lastKillAt,
      processes_killed_total: p.processesKilled,
      vms_killed_total: p.vmsKilled,
      spared_total: p.spared,
      mount: p.target ? { dev: p.target.mount.dev, fstype: p.target.mount.fstype, mount_point: p.target.mount.mountPoint } : null,
    };
  }
}
