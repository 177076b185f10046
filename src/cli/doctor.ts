// `brick doctor`: can this host do what the config asks? Facts are gathered at the edge (files under
// /proc and /sys, a few commands through the one runner, one authenticated call to the agent), then
// judged by pure functions into lines: ok, warn or fail, each warn and fail with the fix. Reads
// only; changes nothing. Exit code like status: 0 all ok, 3 a warning, 4 a failure.
import { accessSync, constants, existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config, PoolConfig } from '../config/schema.js';
import { CLOCK_SLACK_S, configWarnings } from '../config/rules.js';
import { run as realRun, type Runner } from '../shared/run.js';
import type { Io } from './io.js';
import { EXIT } from './commands.js';
import { checkAgent, type AgentCheck } from './agent-check.js';
import { findOnHost, hostToolsReport, type ToolReport } from '../shared/host-tools.js';
import { looseDirProblem, runtimePoolsDirApart } from '../shared/dir-mode.js';
import { mountOf, parseMountinfo, type MountEntry } from '../fencer/kill-vms/proc-parse.js';
import { parseUnitSandbox, sandboxVerdict } from './unit-sandbox.js';

export type Level = 'ok' | 'warn' | 'fail';

export interface CheckLine {
  check: string;
  level: Level;
  /** What was found. */
  what: string;
  /** What to do, for warn and fail. */
  fix?: string;
}

const ok = (check: string, what: string): CheckLine => ({ check, level: 'ok', what });
const warn = (check: string, what: string, fix: string): CheckLine => ({ check, level: 'warn', what, fix });
const fail = (check: string, what: string, fix: string): CheckLine => ({ check, level: 'fail', what, fix });

const RESETTING = new Set(['reboot', 'crash', 'command', 'kill-vms']);

// ---------------------------------------------------------------- config and timing

export function configChecks(c: Config): CheckLine[] {
  const f = c.fencer;
  const wd = f.watchdog_device ? f.watchdog_timeout_s : 0;
  const worst = f.fence_after_s + wd + CLOCK_SLACK_S;
  const rule = `fence_after_s ${f.fence_after_s} s${f.watchdog_device ? ` + watchdog_timeout_s ${wd} s` : ''} + ${CLOCK_SLACK_S} s = ${worst} s`;
  const out: CheckLine[] = [
    worst < f.dead_host_window_s
      ? ok('timing', `${rule} < dead_host_window_s ${f.dead_host_window_s} s: the host is reset before a peer may restart its VMs`)
      : fail('timing', `${rule} is not below dead_host_window_s ${f.dead_host_window_s} s (allow_unsafe_timing = true)`, 'lower fence_after_s or watchdog_timeout_s, and remove allow_unsafe_timing'),
  ];
  for (const w of configWarnings(c)) {
    const [key, ...rest] = w.split(': ');
    if (key === 'fencer.allow_unsafe_timing') continue; // the timing line says it
    out.push(warn('config', `${key}: ${rest.join(': ')}`, `change ${key} in the config`));
  }
  return out;
}

// ---------------------------------------------------------------- pools

/** A mount's own options (ro, nodev, noexec...) with its superblock's (NFS: hard/soft, vers, timeo...). */
function mountOptions(m: MountEntry): Set<string> {
  return new Set([...m.mountOptions.split(','), ...m.superOptions.split(',')]);
}

export interface PoolFacts {
  pool: PoolConfig;
  /** The resolved path, or undefined when it does not exist. */
  real?: string;
  error?: string;
  mount?: MountEntry;
}

export function poolChecks(c: Config, pools: PoolFacts[]): CheckLine[] {
  const out: CheckLine[] = [];
  if (!c.fencer.pool.length)
    out.push(
      RESETTING.has(c.fencer.action)
        ? warn(
            'pools',
            `no [[fencer.pool]] configured: the fencer guards no pool until the orchestrator adds one at run time (${c.fencer.runtime_pools_file})`,
            'add each primary storage mount of this host as a [[fencer.pool]] (path, heartbeat ovm or kvm)',
          )
        : ok('pools', 'no [[fencer.pool]] configured'),
    );
  pools.forEach((p, i) => {
    const name = `pool ${p.pool.path}`;
    const twin = p.real === undefined ? undefined : pools.slice(0, i).find((q) => q.real === p.real && q.pool.heartbeat === p.pool.heartbeat);
    if (twin) {
      out.push(fail(name, `the directory of pool ${twin.pool.path} (both resolve to ${p.real}): the fencer refuses to start`, 'list each pool directory once in [[fencer.pool]]'));
      return;
    }
    poolLine(p, name);
  });
  return out;

  function poolLine(p: PoolFacts, name: string): void {
    if (!p.real) {
      out.push(fail(name, `cannot be read: ${p.error}`, 'mount the primary storage there, or correct fencer.pool.path'));
      return;
    }
    const m = p.mount;
    const isNfs = m && /^nfs4?$/.test(m.fstype);
    if (!m || (!isNfs && m.mountPoint === '/')) {
      out.push(
        p.pool.require_mount
          ? fail(name, 'not mounted: the directory is on the root filesystem', 'mount the primary storage (NFS) on it; the fencer refuses an unmounted pool')
          : warn(name, 'a local directory (require_mount = false)', 'only for a sandbox or tests: a real pool is an NFS mount with require_mount = true'),
      );
      return;
    }
    if (!isNfs) {
      out.push(
        p.pool.require_mount
          ? warn(name, `on ${m.fstype} ${m.source} (${m.mountPoint}), not NFS`, 'brick heartbeats any mounted filesystem, but its timings are designed for NFS primary storage')
          : warn(name, `on ${m.fstype} ${m.mountPoint}, require_mount = false`, 'only for a sandbox or tests: set require_mount = true on a real pool'),
      );
      return;
    }
    const o = mountOptions(m);
    const pick = (k: string) => [...o].find((x) => x.startsWith(k + '='));
    const shown = [o.has('soft') ? 'soft' : 'hard', pick('vers'), pick('timeo'), pick('retrans'), o.has('ro') ? 'ro' : 'rw'].filter(Boolean).join(',');
    if (o.has('ro')) out.push(fail(name, `NFS ${m.source} mounted read-only (${shown}): no heartbeat can be written`, 'remount it read-write'));
    else if (o.has('soft') || o.has('softerr'))
      out.push(warn(name, `NFS ${m.source} is a soft mount (${shown}): a slow server gives VMs I/O errors instead of waiting`, 'mount primary storage with hard (the default) so VMs wait; the fencer handles the hang'));
    else out.push(ok(name, `NFS ${m.source} on ${m.mountPoint} (${shown}), heartbeat ${p.pool.heartbeat}, fence_when ${p.pool.fence_when}`));
  }
}

// ---------------------------------------------------------------- watchdog and sysrq

export interface WatchdogFacts {
  device: string;
  exists: boolean;
  isCharDevice?: boolean;
  /** The mount the device node is on (a node on a nodev mount cannot be opened). */
  mount?: MountEntry;
  /** /sys/class/watchdog/<name>/... when the kernel exposes it. */
  sysfs?: { name: string; identity?: string; timeout?: number; max_timeout?: number; nowayout?: string; state?: string };
}

export function watchdogChecks(c: Config, w: WatchdogFacts): CheckLine[] {
  const f = c.fencer;
  if (!f.watchdog_device)
    return [
      RESETTING.has(f.action)
        ? warn('watchdog', 'none (fencer.watchdog_device = ""): a wedged or frozen fencer cannot reset this host', 'set watchdog_device = "/dev/watchdog" with a hardware watchdog driver loaded')
        : ok('watchdog', `none (fencer.watchdog_device = ""), action ${f.action}`),
    ];
  if (!w.exists)
    return [fail('watchdog', `${w.device} does not exist`, 'load a watchdog driver (iTCO_wdt, ipmi_watchdog, sp5100_tco...; softdog as a last resort) or set watchdog_device = ""')];
  if (w.isCharDevice === false) return [fail('watchdog', `${w.device} is not a character device`, 'point fencer.watchdog_device at the watchdog device node')];
  if (w.mount && mountOptions(w.mount).has('nodev'))
    return [
      fail(
        'watchdog',
        `${w.device} is on ${w.mount.fstype} ${w.mount.mountPoint}, mounted nodev: opening it fails (EACCES), so the fencer cannot start its watchdog`,
        `point fencer.watchdog_device at the node under /dev (devtmpfs), or remount ${w.mount.mountPoint} without nodev`,
      ),
    ];
  const s = w.sysfs;
  if (!s) return [warn('watchdog', `${w.device} exists; the kernel shows no /sys/class/watchdog details`, 'check the driver and its timeout with wdctl')];
  const out: CheckLine[] = [];
  const id = s.identity ?? 'unknown driver';
  const desc = `${w.device} (${s.name}: ${id}, timeout ${s.timeout ?? '?'} s${s.max_timeout ? `, max ${s.max_timeout} s` : ''}, nowayout ${s.nowayout ?? '?'})`;
  if (s.max_timeout !== undefined && s.max_timeout < f.watchdog_timeout_s)
    out.push(fail('watchdog', `${desc}: cannot be set to watchdog_timeout_s ${f.watchdog_timeout_s} s`, `set watchdog_timeout_s ≤ ${s.max_timeout}`));
  else if (/software/i.test(id))
    out.push(warn('watchdog', `${desc} is softdog: a kernel hang stops it too`, 'load the board\'s hardware watchdog driver (iTCO_wdt, ipmi_watchdog...) instead'));
  else out.push(ok('watchdog', desc));
  if (s.nowayout === '1')
    out.push(warn('watchdog', `${w.device} has nowayout = 1: after even a clean stop of brick-fencer the host resets within ${f.watchdog_timeout_s} s`, 'load the driver with nowayout=0, or never stop brick-fencer on a running host'));
  return out;
}

export interface SysrqFacts {
  trigger: string;
  exists: boolean;
  writable: boolean;
  /** kernel.sysrq, when readable. */
  kernelSysrq?: string;
}

export function sysrqChecks(c: Config, s: SysrqFacts): CheckLine[] {
  const needed = ['reboot', 'crash', 'kill-vms'].includes(c.fencer.action);
  if (!needed) return [ok('sysrq', `not used (action ${c.fencer.action})`)];
  const ks = s.kernelSysrq === undefined ? 'kernel.sysrq unreadable' : `kernel.sysrq = ${s.kernelSysrq}${s.kernelSysrq === '0' ? ' (it limits only the keyboard; the trigger file always works for root)' : ''}`;
  if (!s.exists) return [fail('sysrq', `${s.trigger} does not exist`, 'a kernel with CONFIG_MAGIC_SYSRQ and /proc mounted; or correct fencer.sysrq_trigger')];
  if (!s.writable) return [fail('sysrq', `${s.trigger} is not writable by this user`, 'run brick-fencer as root (the unit does)')];
  return [ok('sysrq', `${s.trigger} writable, ${ks}`)];
}

// ---------------------------------------------------------------- local directories

export interface DirFacts {
  /** runtime_pools_dir: the directory of fencer.runtime_pools_file, when it is not marker_dir. */
  key: 'state_dir' | 'marker_dir' | 'hooks_dir' | 'runtime_pools_dir';
  path: string;
  exists: boolean;
  /** The mount of the directory, or of its nearest existing parent when it is still to be made. */
  mount?: MountEntry;
  /** The path with symlinks resolved (of its nearest existing parent, when it is still to be made). */
  real?: string;
  /** Its mode and owner, when it exists. */
  mode?: number;
  uid?: number;
  /** runtime_pools_dir only: why its look (a child with a deadline) gave no answer. */
  unanswered?: string;
}

/** Filesystems whose writes can hang on a network or another process: storage loss hangs them too. */
const REMOTE_FS = /^(nfs4?|cifs|smb3|smbfs|ceph|glusterfs|gfs2|ocfs2|lustre|afs|9p|fuse(\..*)?)$/;
const VOLATILE_FS = new Set(['tmpfs', 'ramfs']);

/**
 * state_dir and marker_dir must be local and writable, the marker's also persistent; hooks_dir
 * must allow exec. nodev matters to none of them (regular files only: it is the watchdog node's
 * problem, see watchdogChecks), nor does noexec to the fencer's directories (nothing runs from them).
 */
export function dirChecks(dirs: DirFacts[]): CheckLine[] {
  return dirs.map((d) => {
    const name = `${d.key} ${d.path}`;
    const m = d.mount;
    if (!m) return warn(name, 'no mount holds it (cannot read /proc/self/mountinfo?)', 'check that /proc is mounted');
    const on = `on ${m.fstype} ${m.source} (${m.mountPoint})`;
    const o = mountOptions(m);
    if (d.key === 'hooks_dir') {
      if (!d.exists) return ok(name, 'not there: no vdsm-style hooks');
      return o.has('noexec')
        ? warn(name, `${on}, mounted noexec: no hook there can run (exit 126), so domain_tweak with hooks: true fails HOOK_FAILED`, `move domain.hooks_dir to a filesystem mounted without noexec, or remount ${m.mountPoint} exec`)
        : ok(name, on);
    }
    if (d.key === 'runtime_pools_dir') {
      // The agent writes the file there (heartbeat_add_pool), the fencer reads it through a child
      // with a deadline (a disk that hangs holds the child, never the fencer): where it is, is said;
      // who can write it is judged by dirModeChecks.
      if (d.unanswered)
        return warn(name, `${on}: ${d.unanswered}; the fencer goes on with the pools it last read from the file, and heartbeat_add_pool fails`, `check the disk under ${d.path}, or set fencer.runtime_pools_file to a file on local persistent disk (the default is /var/lib/brick/runtime-pools.json)`);
      return ok(name, d.exists ? on : `not there yet: the agent makes it (0700) at the first heartbeat_add_pool; its parent is ${on}`);
    }
    const what = d.key === 'state_dir' ? 'the fencer\'s lock and state' : 'the fence marker and the lease';
    const where = d.exists ? '' : ` (to be made; its parent is ${on})`;
    if (REMOTE_FS.test(m.fstype))
      return fail(
        name,
        `${on}${where}: ${what} would be written over the network, and hang when storage is lost, just when the fencer must act`,
        `set fencer.${d.key} to a directory on local disk (the default is ${d.key === 'state_dir' ? '/run/brick' : '/var/lib/brick'})`,
      );
    if (o.has('ro')) return fail(name, `${on}${where} is mounted read-only: the fencer cannot write ${what} and does not start`, `set fencer.${d.key} to a writable local directory, or remount ${m.mountPoint} rw`);
    if (d.key === 'marker_dir' && VOLATILE_FS.has(m.fstype))
      return fail(name, `${on}${where} is in memory: the fence marker would not survive the reset it records`, 'set fencer.marker_dir to a directory on local persistent disk (the default is /var/lib/brick)');
    // The fencer's loop writes its state there itself, synchronously, four times a second (no child:
    // it must not cost a fork per tick): a disk there that hangs (a failing disk) holds the loop, the
    // watchdog goes unpetted and resets the host with its pools healthy. Memory never hangs.
    if (d.key === 'state_dir' && !VOLATILE_FS.has(m.fstype))
      return warn(
        name,
        `${on}${where}, not in memory: the fencer's loop writes its state there itself on every tick, so a disk there that hangs stops the loop and the watchdog resets this host`,
        'set fencer.state_dir to a directory on tmpfs (the default /run/brick is)',
      );
    return ok(name, `${on}${where}`);
  });
}

/**
 * state_dir and marker_dir that users other than root (and the user brick runs as) can write: a
 * warning (shared/dir-mode.ts); brick makes them with the packages' modes but leaves one that is
 * there already as it is.
 */
export function dirModeChecks(dirs: DirFacts[], me: number | undefined): CheckLine[] {
  const out: CheckLine[] = [];
  for (const d of dirs) {
    if (d.key === 'hooks_dir' || d.mode === undefined || d.uid === undefined) continue;
    const problem = looseDirProblem(d.mode, d.uid, me);
    if (!problem) continue;
    const what =
      d.key === 'state_dir'
        ? "they can replace the fencer's state that brick status and the agent read, and its lock"
        : d.key === 'runtime_pools_dir'
          ? 'they can replace the runtime pools file, which says which pools the fencer guards: a pool taken out of it is no longer guarded, and a host that loses it is not fenced'
          : 'they can remove or replace the fence marker and the lease (and the runtime pools file, when it is there: which pools the fencer guards)';
    const [mode, packaged] = d.key === 'state_dir' ? ['755', '/run/brick 0755'] : ['700', d.key === 'runtime_pools_dir' ? 'the default /var/lib/brick 0700' : '/var/lib/brick 0700'];
    const key = d.key === 'runtime_pools_dir' ? 'runtime_pools_file\'s directory' : d.key;
    out.push(warn(`${key} ${d.path}`, `${problem}: ${what}`, `chown root ${d.path} && chmod ${mode} ${d.path} (as the packages make ${packaged})`));
  }
  return out;
}

// ---------------------------------------------------------------- the fencer's unit

/** brick-fencer.service's settings: `systemctl show` output, or the unit file's text. */
export interface UnitFacts {
  /** Where they were read: "systemctl show brick-fencer.service" or the unit file's path. */
  source: string;
  text: string;
}

/**
 * state_dir and marker_dir must be writable for the fencer as its unit runs it: a ProtectSystem=,
 * ReadOnlyPaths= or InaccessiblePaths= (or ProtectHome=) over them leaves the fencer unable to write
 * its lock, state and expiry (or the marker) there, however writable the mount is; PrivateTmp= (or
 * ProtectHome=tmpfs) gives it a copy that is emptied whenever the unit stops. No unit: nothing to say.
 */
export function unitDirChecks(dirs: DirFacts[], unit: UnitFacts | undefined): CheckLine[] {
  if (!unit) return [];
  const s = parseUnitSandbox(unit.text);
  const out: CheckLine[] = [];
  const fine: string[] = [];
  for (const d of dirs) {
    if (d.key === 'hooks_dir' || d.key === 'runtime_pools_dir') continue; // the agent writes the runtime pools file, not the fencer
    const path = d.real ?? d.path;
    const v = sandboxVerdict(s, path);
    const shown = path === d.path ? d.path : `${d.path} (${path})`;
    if (v.access === 'writable') {
      fine.push(`${d.key} ${shown}`);
      continue;
    }
    const what = d.key === 'state_dir' ? 'its lock, state and expiry' : 'the fence marker and the lease';
    const name = `brick-fencer.service ${d.key}`;
    const fix = `set fencer.${d.key} to a directory the unit can write (the default is ${d.key === 'state_dir' ? '/run/brick' : '/var/lib/brick'}), or allow it in a drop-in (systemctl edit brick-fencer: ReadWritePaths=${d.path})`;
    if (v.access === 'private')
      out.push(fail(name, `${shown}: the unit gives the fencer a private copy of it (${v.by}, from ${unit.source}), emptied whenever the unit stops: ${what} would not survive a restart`, fix));
    else out.push(fail(name, `${shown} is ${v.access} for the fencer (${v.by}, from ${unit.source}): it cannot write ${what} there`, fix));
  }
  if (fine.length) out.push(ok('brick-fencer.service', `${fine.join(', ')}: writable under the unit's sandbox (from ${unit.source})`));
  return out;
}

// ---------------------------------------------------------------- host tools

/** What this config needs, by tool name: why, and whether its absence is a failure. */
export function neededTools(c: Config): Map<string, { why: string; required: boolean }> {
  const t = new Map<string, { why: string; required: boolean }>();
  const pools = c.fencer.pool.length > 0;
  t.set('ip', { why: 'bridges, VLANs, control0', required: true });
  for (const n of ['stat', 'dd', 'mv', 'mkdir', 'timeout']) t.set(n, { why: 'the fencer\'s probes', required: pools });
  if (c.fencer.watchdog_device) t.set('wdctl', { why: 'setting the watchdog timeout', required: true });
  if (c.fencer.vm_query === 'libvirt') t.set('virsh', { why: 'which VMs use which pool (vm_query = "libvirt")', required: true });
  if (c.fencer.vm_query === 'xl') t.set('xl', { why: 'which VMs use which pool (vm_query = "xl")', required: true });
  if (c.network.backend === 'openvswitch') {
    t.set('ovs-vsctl', { why: 'network.backend = "openvswitch"', required: true });
    t.set('ovs-ofctl', { why: 'tunnel flows', required: true });
  }
  if (c.server.generate_credentials && c.server.tls_cert) t.set('openssl', { why: 'the generated TLS certificate', required: false });
  return t;
}

/** One line per tool of the host-tool registry (src/shared/host-tools.ts), judged by what this config needs. */
export function toolChecks(c: Config, tools: ToolReport[]): CheckLine[] {
  const need = neededTools(c);
  return tools.map((t) => {
    const n = need.get(t.name);
    const name = `tool ${t.name}`;
    const v = t.version ? ` ${t.version}` : '';
    if (t.source === 'host') return ok(name, `${t.path}${v}`);
    if (t.source === 'brick') return ok(name, `${t.path}${v}: ${t.note}`);
    if (t.source === 'host-too-old') {
      const what = `${t.path}${v} is older than ${t.min_version} (lacks ${t.missing_flags.join(', ') || 'some flags'}): ${t.note}`;
      return n?.required ? fail(name, what, `install ${t.package} ≥ ${t.min_version}`) : warn(name, what, `install ${t.package} ≥ ${t.min_version}`);
    }
    if (n?.required) return fail(name, `not installed; needed for ${n.why}`, `install ${t.package}`);
    if (n) return warn(name, `not installed; used for ${n.why}`, `install ${t.package}`);
    return ok(name, t.note || 'not installed (not needed by this config)');
  });
}

// ---------------------------------------------------------------- hypervisor, OVS, clock, agent

export interface CommandFacts {
  /** What was run, for the line. */
  command: string;
  ok: boolean;
  out: string;
}

export function hypervisorChecks(c: Config, q: CommandFacts | undefined): CheckLine[] {
  if (c.fencer.vm_query === 'none') return [ok('vm query', 'vm_query = "none": every pool counts as used')];
  if (!q) return [warn('vm query', 'neither virsh nor xl is installed: no running VM is known, so every pool counts as used', 'install libvirt-clients (KVM, Xen with libvirt) or xl, or set vm_query = "none"')];
  if (!q.ok) return [warn('vm query', `${q.command} failed: ${q.out}`, 'start libvirtd (or xend/xenstored), or check domain.libvirt_uri; until then every pool counts as used')];
  const n = q.out.split('\n').filter((l) => l.trim()).length;
  return [ok('vm query', `${q.command} answered (${q.command.startsWith('xl') ? Math.max(0, n - 1) : n} running domain(s))`)];
}

export function ovsChecks(c: Config, show: CommandFacts | undefined, dpdk: CommandFacts | undefined): CheckLine[] {
  if (c.network.backend !== 'openvswitch') return [ok('openvswitch', 'not used (network.backend = linuxbridge)')];
  if (!show?.ok) return [fail('openvswitch', `${show?.command ?? 'ovs-vsctl'} failed: ${show?.out ?? 'not installed'}`, 'start openvswitch-switch (ovsdb-server, ovs-vswitchd)')];
  const out = [ok('openvswitch', 'ovsdb answers')];
  if (dpdk?.ok && dpdk.out.trim() === 'true') out.push(ok('dpdk', 'dpdk_initialized = true'));
  else out.push(ok('dpdk', 'not initialized: dpdk_* calls answer UNSUPPORTED (other_config:dpdk-init=true enables it)'));
  return out;
}

export function clockChecks(q: CommandFacts | undefined): CheckLine[] {
  if (!q || !q.ok) return [warn('clock', `cannot tell whether the clock is synchronized (${q ? q.out || 'timedatectl failed' : 'no timedatectl'})`, 'run chronyd or ntpd: peers judge this host\'s heartbeats by their timestamps')];
  return q.out.trim() === 'yes'
    ? [ok('clock', 'synchronized (NTP)')]
    : [warn('clock', 'not synchronized', 'enable chronyd or ntpd (timedatectl set-ntp true): peers judge this host\'s heartbeats by their timestamps')];
}

export function agentChecks(a: AgentCheck): CheckLine[] {
  if (a.reachable) return [ok('agent', `${a.url} answered an authenticated call in ${a.ms} ms`)];
  if (a.answer === 'unauthorized') return [fail('agent', a.detail ?? 'HTTP 401', 'the agent runs with another password: restart brick-agent after changing it, or correct server.user/password_file')];
  if (a.answer === 'no-credentials')
    return [warn('agent', a.detail ?? 'no password', /ENOENT/.test(a.detail ?? '') ? 'start brick-agent once (generate_credentials creates it), or set server.password_file' : 'run brick doctor as root')];
  return [warn('agent', `not answering: ${a.detail ?? a.answer}`, 'systemctl start brick-agent (journalctl -u brick-agent says why it stopped)')];
}

// ---------------------------------------------------------------- gathering (the edge)

export interface DoctorFacts {
  pools: PoolFacts[];
  watchdog: WatchdogFacts;
  dirs: DirFacts[];
  /** The uid doctor runs as (brick runs as root; a dir owned by this uid is not another user's). */
  uid?: number;
  sysrq: SysrqFacts;
  tools: ToolReport[];
  vmQuery?: CommandFacts;
  ovsShow?: CommandFacts;
  dpdk?: CommandFacts;
  clock?: CommandFacts;
  agent: AgentCheck;
  fencerUnit?: UnitFacts;
}

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

async function tryRun(run: Runner, cmd: string, args: string[], timeoutMs: number): Promise<CommandFacts> {
  const command = [cmd, ...args].join(' ');
  try {
    // doctor holds nothing per child: it answers even when one is stuck in the kernel past its SIGKILL
    const r = await run(cmd, args, { timeoutMs, allowFailure: true, giveUpOnStuck: true });
    const text = (r.code === 0 ? r.stdout || r.stderr : r.stderr || r.stdout).trim();
    return { command, ok: r.code === 0, out: r.code === 0 ? text.split('\n').slice(0, 200).join('\n') : text.split('\n')[0] };
  } catch (e) {
    return { command, ok: false, out: (e as Error).message };
  }
}

const which = (name: string): string | undefined => findOnHost(name) || undefined;

function watchdogFacts(device: string, mounts: MountEntry[]): WatchdogFacts {
  if (!device) return { device, exists: false };
  let st;
  let real;
  try {
    st = statSync(device);
    real = realpathSync(device);
  } catch {
    return { device, exists: false };
  }
  const w: WatchdogFacts = { device, exists: true, isCharDevice: st.isCharacterDevice(), mount: mountOf(real, mounts) };
  // /dev/watchdog (misc 10:130) is watchdog0; /dev/watchdogN is watchdogN.
  const m = /watchdog(\d+)$/.exec(device);
  const name = m ? `watchdog${m[1]}` : 'watchdog0';
  const dir = `/sys/class/watchdog/${name}`;
  if (existsSync(dir)) {
    const num = (f: string) => {
      const v = readOr(join(dir, f));
      return v === undefined || v === '' || Number.isNaN(Number(v)) ? undefined : Number(v);
    };
    w.sysfs = { name, identity: readOr(join(dir, 'identity')), timeout: num('timeout'), max_timeout: num('max_timeout'), nowayout: readOr(join(dir, 'nowayout')), state: readOr(join(dir, 'state')) };
  }
  return w;
}

function dirFacts(key: DirFacts['key'], path: string, mounts: MountEntry[]): DirFacts {
  let at = path;
  while (!existsSync(at) && at !== dirname(at)) at = dirname(at);
  let real = at;
  try {
    real = realpathSync(at);
  } catch {
    /* judged by the path as written */
  }
  let st: { mode: number; uid: number } | undefined;
  try {
    if (at === path) st = statSync(path);
  } catch {
    /* judged without its mode */
  }
  return { key, path, exists: at === path, mount: mountOf(real, mounts), real: at === path ? real : join(real, path.slice(at.length)), ...(st ? { mode: st.mode, uid: st.uid } : {}) };
}

/**
 * The runtime pools file's directory, looked at by `stat` in a child with a deadline, never by this
 * process: it may be on a disk that hangs (the fencer reads the file the same way). Its mount is
 * found by the path as written (/proc/self/mountinfo, which never hangs).
 */
async function runtimePoolsDirFacts(path: string, mounts: MountEntry[], run: Runner): Promise<DirFacts> {
  const base: DirFacts = { key: 'runtime_pools_dir', path, exists: false, mount: mountOf(path, mounts) };
  const q = await tryRun(run, 'stat', ['-L', '-c', '%f %u', '--', path], 5000);
  const m = /^([0-9a-f]+) (\d+)$/.exec(q.out);
  if (q.ok && m) return { ...base, exists: true, mode: parseInt(m[1], 16), uid: Number(m[2]) };
  if (/No such file or directory/.test(q.out)) return base; // to be made by the agent
  return { ...base, unanswered: `stat gave no answer (${q.out.slice(0, 200)})` };
}

const UNIT_PROPERTIES = ['LoadState', 'ProtectSystem', 'ProtectHome', 'PrivateTmp', 'ReadWritePaths', 'ReadOnlyPaths', 'InaccessiblePaths', 'StateDirectory', 'RuntimeDirectory', 'CacheDirectory', 'LogsDirectory', 'ConfigurationDirectory'];
// systemd 219 (EL7) names them ...Directories=.
const UNIT_PROPERTIES_219 = ['ReadWriteDirectories', 'ReadOnlyDirectories', 'InaccessibleDirectories'];

/**
 * The fencer unit as systemd runs it (drop-ins included), from `systemctl show`; where systemd does
 * not run (a chroot, a container), the unit file itself; none (OL5/OL6, not installed): undefined.
 */
async function fencerUnitFacts(run: Runner): Promise<UnitFacts | undefined> {
  const args = ['show', 'brick-fencer.service', ...[...UNIT_PROPERTIES, ...UNIT_PROPERTIES_219].flatMap((p) => ['-p', p])];
  const q = await tryRun(run, 'systemctl', args, 5000);
  if (q.ok && /^LoadState=loaded$/m.test(q.out)) return { source: 'systemctl show brick-fencer.service', text: q.out };
  for (const dir of ['/etc/systemd/system', '/usr/lib/systemd/system', '/lib/systemd/system']) {
    const text = readOr(join(dir, 'brick-fencer.service'));
    if (text !== undefined) return { source: join(dir, 'brick-fencer.service'), text };
  }
  return undefined;
}

export async function gatherFacts(c: Config, run: Runner = realRun): Promise<DoctorFacts> {
  const mounts = parseMountinfo(readOr('/proc/self/mountinfo') ?? '');
  const pools: PoolFacts[] = c.fencer.pool.map((pool) => {
    try {
      const real = realpathSync(pool.path);
      if (!statSync(real).isDirectory()) return { pool, error: 'not a directory' };
      return { pool, real, mount: mountOf(real, mounts) };
    } catch (e) {
      return { pool, error: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
    }
  });
  const trigger = c.fencer.sysrq_trigger;
  let writable = false;
  try {
    accessSync(trigger, constants.W_OK);
    writable = true;
  } catch {
    /* not writable */
  }
  const tools = await hostToolsReport();
  const vmTimeout = c.fencer.vm_query_timeout_s * 1000;
  let vmQuery: CommandFacts | undefined;
  const useVirsh = c.fencer.vm_query === 'libvirt' || (c.fencer.vm_query === 'auto' && which('virsh'));
  if (c.fencer.vm_query !== 'none') {
    if (useVirsh && which('virsh')) vmQuery = await tryRun(run, 'virsh', [...(c.domain.libvirt_uri ? ['-c', c.domain.libvirt_uri] : []), 'list', '--name'], vmTimeout);
    else if ((c.fencer.vm_query === 'xl' || c.fencer.vm_query === 'auto') && which('xl')) vmQuery = await tryRun(run, 'xl', ['list'], vmTimeout);
  }
  const apart = runtimePoolsDirApart(c.fencer.runtime_pools_file, c.fencer.marker_dir);
  const ovs = c.network.backend === 'openvswitch' && which('ovs-vsctl');
  const [ovsShow, dpdk, clock, agent, fencerUnit, rtDir] = await Promise.all([
    ovs ? tryRun(run, 'ovs-vsctl', ['--timeout=5', 'show'], 6000) : undefined,
    ovs ? tryRun(run, 'ovs-vsctl', ['--timeout=5', 'get', 'Open_vSwitch', '.', 'dpdk_initialized'], 6000) : undefined,
    which('timedatectl') ? tryRun(run, 'timedatectl', ['show', '-p', 'NTPSynchronized', '--value'], 5000) : undefined,
    checkAgent(c, 5000),
    fencerUnitFacts(run),
    apart === undefined ? undefined : runtimePoolsDirFacts(apart, mounts, run),
  ]);
  return {
    pools,
    watchdog: watchdogFacts(c.fencer.watchdog_device, mounts),
    dirs: [
      dirFacts('state_dir', c.fencer.state_dir, mounts),
      dirFacts('marker_dir', c.fencer.marker_dir, mounts),
      ...(rtDir ? [rtDir] : []),
      dirFacts('hooks_dir', c.domain.hooks_dir, mounts),
    ],
    uid: process.getuid?.(),
    sysrq: { trigger, exists: existsSync(trigger), writable, kernelSysrq: readOr('/proc/sys/kernel/sysrq') },
    tools,
    vmQuery,
    ovsShow,
    dpdk,
    clock,
    agent,
    fencerUnit,
  };
}

/** Every line, in the order an admin fixes things. Pure. */
export function judge(c: Config, f: DoctorFacts): CheckLine[] {
  return [
    ...configChecks(c),
    ...poolChecks(c, f.pools),
    ...watchdogChecks(c, f.watchdog),
    ...sysrqChecks(c, f.sysrq),
    ...dirChecks(f.dirs),
    ...dirModeChecks(f.dirs, f.uid),
    ...unitDirChecks(f.dirs, f.fencerUnit),
    ...toolChecks(c, f.tools),
    ...hypervisorChecks(c, f.vmQuery),
    ...ovsChecks(c, f.ovsShow, f.dpdk),
    ...clockChecks(f.clock),
    ...agentChecks(f.agent),
  ];
}

export function doctorExit(lines: CheckLine[]): number {
  if (lines.some((l) => l.level === 'fail')) return EXIT.NOT_PROTECTED;
  if (lines.some((l) => l.level === 'warn')) return EXIT.DEGRADED;
  return EXIT.OK;
}

export function formatDoctor(lines: CheckLine[]): string {
  const w = Math.min(40, Math.max(...lines.map((l) => l.check.length)));
  const out = lines.map((l) => `${l.level.padEnd(4)}  ${l.check.padEnd(w)}  ${l.what}${l.fix ? `\n${' '.repeat(w + 8)}fix: ${l.fix}` : ''}`);
  const n = (lv: Level) => lines.filter((l) => l.level === lv).length;
  out.push('', `${n('ok')} ok, ${n('warn')} warn, ${n('fail')} fail`);
  return out.join('\n') + '\n';
}

export async function doctor(c: Config, opts: { json: boolean; io: Io; configPath: string; run?: Runner }): Promise<number> {
  const lines = judge(c, await gatherFacts(c, opts.run));
  opts.io.out(opts.json ? JSON.stringify({ config: opts.configPath, checks: lines }, null, 2) + '\n' : `config: ${opts.configPath}\n` + formatDoctor(lines));
  return doctorExit(lines);
}
