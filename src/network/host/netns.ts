// The network code's view of the host: `ip` and `ovs-vsctl`, bound to config.network.namespace
// (created if missing: the sandbox and tests rely on brick making it) and to
// config.network.ovs_rundir (OVS_RUNDIR in the tools' environment). Every command goes through the
// Runner it is given, with the network command deadline.
import { existsSync } from 'node:fs';
import type { Config } from '../../config/schema.js';
import { BrickError, isBrickError } from '../../shared/errors.js';
import { CHILD_PATH } from '../../shared/host-tools.js';
import { runIp } from '../../shared/ip-dump.js';
import type { Runner, RunResult } from '../../shared/run.js';
import { ipReader } from './ip-reader.js';

export interface NetHost {
  /** "" = the host's namespace. */
  readonly namespace: string;
  readonly backend: 'linuxbridge' | 'openvswitch';
  readonly timeoutMs: number;
  /** What this call's applies changed so far and left in place (for a truthful fault if it is stopped). */
  readonly changed: string[];
  ip(args: readonly string[], opts?: { allowFailure?: boolean; input?: string }): Promise<RunResult>;
  /**
   * Run `ip -batch -` with these lines on stdin (one process). `force` goes on past failures.
   * `undo`: putting the host back after a failure; it runs even when the call was stopped, within
   * network.command_timeout_s of its own.
   */
  ipBatch(lines: readonly string[], opts?: { force?: boolean; allowFailure?: boolean; undo?: boolean }): Promise<RunResult>;
  /**
   * Read-only `show` lines answered by the namespace's standing `ip` (ip-reader.ts): the JSON lines
   * printed, or undefined when it cannot answer (then read with ip()). Absent when the runner has
   * no sessions (a test's recording runner).
   */
  ipQuery?(kind: 'link' | 'addr', lines: readonly string[]): Promise<string[] | undefined>;
  /**
   * `undo`: putting Open vSwitch back after a failure; it runs even when the call was stopped,
   * within network.command_timeout_s of its own. `timeoutS`: ovs-vsctl's --timeout is at most this
   * (a wait-until that should give up sooner than the command deadline). A TIMEOUT from ovs-vsctl's
   * own --timeout carries detail.vsctlTimeout (the runner's deadline or the call's end does not).
   */
  vsctl(args: readonly string[], opts?: { allowFailure?: boolean; undo?: boolean; timeoutS?: number }): Promise<RunResult>;
  /** ovs-ofctl (flows), same namespace and OVS_RUNDIR as vsctl; `input` goes to stdin (add-flows BR -). */
  ofctl(args: readonly string[], opts?: { allowFailure?: boolean; input?: string; undo?: boolean }): Promise<RunResult>;
}

const NETNS_DIR = '/run/netns';
/** Where Open vSwitch keeps db.sock, bridge .mgmt sockets and vhost-user sockets unless OVS_RUNDIR says otherwise. */
export const DEFAULT_OVS_RUNDIR = '/var/run/openvswitch';

const creating = new Map<string, Promise<void>>();

/**
 * Create the namespace unless it exists. Concurrent callers in this process share one creation:
 * `ip netns add` makes /run/netns/NS before it mounts the namespace there, so a caller that only
 * looked for the file could enter a half-made namespace.
 */
export function ensureNamespace(run: Runner, ns: string, timeoutMs: number): Promise<void> {
  if (!ns) return Promise.resolve();
  const inFlight = creating.get(ns);
  if (inFlight) return inFlight;
  if (existsSync(`${NETNS_DIR}/${ns}`)) return Promise.resolve();
  const p = (async () => {
    const r = await run('ip', ['netns', 'add', ns], { timeoutMs, allowFailure: true });
    if (r.code !== 0 && !existsSync(`${NETNS_DIR}/${ns}`))
      throw new BrickError('COMMAND_FAILED', `network.namespace "${ns}": cannot create it: ${r.stderr.trim() || 'exit ' + r.code}`);
  })().finally(() => creating.delete(ns));
  creating.set(ns, p);
  return p;
}

/**
 * Errors that mean "there is no usable Open vSwitch here" become UNSUPPORTED with what to do;
 * anything else is left as it is.
 */
export function ovsUnavailable(e: unknown, config: Config): unknown {
  if (!isBrickError(e)) return e;
  const tool = /ovs-ofctl/.test(e.message) ? 'ovs-ofctl' : 'ovs-vsctl';
  if (e.fault === 'UNSUPPORTED')
    return new BrickError('UNSUPPORTED', `Open vSwitch is not installed on this host (${tool} not found)`, e.detail);
  if (e.fault === 'COMMAND_FAILED' && /database connection failed|Connection refused|No such file or directory/.test(e.message))
    return new BrickError(
      'UNSUPPORTED',
      `Open vSwitch is not running here: ${tool} could not reach ${config.network.ovs_rundir || DEFAULT_OVS_RUNDIR}/db.sock ` +
        '(start openvswitch-switch, or set network.ovs_rundir)',
      e.detail,
    );
  return e;
}

export interface CallBounds {
  /** The call's time left; each command gets the smaller of that and network.command_timeout_s. */
  remainingMs?: () => number;
  /** The call's signal: a stopped call's command is killed, and no new one starts. */
  signal?: AbortSignal;
  /** Where applies record what they changed (one list per call). */
  changed?: string[];
}

/** The host as one call sees it: no command outlives the call that ran it (except an undo). */
export function netHost(config: Config, run: Runner, opts: CallBounds = {}): NetHost {
  const ns = config.network.namespace;
  const timeoutMs = Math.round(config.network.command_timeout_s * 1000);
  const ms = () => Math.max(1, Math.min(timeoutMs, opts.remainingMs ? Math.floor(opts.remainingMs()) : timeoutMs));
  const signal = opts.signal;
  // The OVS tools' whole environment: the fixed child PATH (never the agent's own), C locale, and
  // OVS_RUNDIR from the config; nothing else of the agent's environment (OVS_DBDIR, ...) reaches them.
  const env: NodeJS.ProcessEnv = { PATH: CHILD_PATH, LANG: 'C', LC_ALL: 'C' };
  if (config.network.ovs_rundir) env.OVS_RUNDIR = config.network.ovs_rundir;
  const nsArgs = ns ? ['-n', ns] : [];
  return {
    namespace: ns,
    backend: config.network.backend,
    timeoutMs,
    changed: opts.changed ?? [],
    async ip(args, opts) {
      await ensureNamespace(run, ns, timeoutMs);
      // a listing whose dump the kernel interrupted is read again, never used (shared/ip-dump.ts)
      return runIp(run, [...nsArgs, ...args], { timeoutMs: ms(), allowFailure: opts?.allowFailure, input: opts?.input, signal });
    },
    ...(run.session && {
      async ipQuery(kind: 'link' | 'addr', lines: readonly string[]) {
        await ensureNamespace(run, ns, timeoutMs);
        return ipReader(run, ns, kind).read(lines, { timeoutMs: ms(), signal });
      },
    }),
    async ipBatch(lines, opts) {
      await ensureNamespace(run, ns, timeoutMs);
      const args = [...nsArgs, ...(opts?.force ? ['-force'] : []), '-batch', '-'];
      const bound = opts?.undo ? { timeoutMs } : { timeoutMs: ms(), signal };
      return run('ip', args, { ...bound, input: lines.join('\n') + '\n', allowFailure: opts?.allowFailure });
    },
    async vsctl(args, opts) {
      await ensureNamespace(run, ns, timeoutMs);
      // ovs-vsctl's own --timeout (whole seconds) fires first so it can say what it was waiting
      // for; the runner's SIGKILL is the backstop.
      const t = opts?.undo ? timeoutMs : ms();
      const seconds = Math.min(Math.floor((t - 500) / 1000), opts?.timeoutS ?? Infinity);
      const global = t >= 1500 ? [`--timeout=${seconds}`] : [];
      return run('ovs-vsctl', [...global, ...args], { timeoutMs: t, env, netns: ns || undefined, allowFailure: opts?.allowFailure, signal: opts?.undo ? undefined : signal }).catch((e) => {
        // ovs-vsctl's own --timeout ends it with SIGALRM and says nothing: that is a timeout (the
        // transaction may have been committed, ovs-vswitchd not yet done), not a failed command.
        if (isBrickError(e) && e.fault === 'COMMAND_FAILED' && / killed by SIGALRM$/.test(e.message))
          throw new BrickError(
            'TIMEOUT',
            `${e.message}: Open vSwitch did not finish within ovs-vsctl's --timeout=${seconds} s (ovs-vswitchd busy or stuck?)`,
            { ...e.detail, started: true, vsctlTimeout: true },
          );
        throw ovsUnavailable(e, config);
      });
    },
    async ofctl(args, opts) {
      await ensureNamespace(run, ns, timeoutMs);
      const bound = opts?.undo ? { timeoutMs } : { timeoutMs: ms(), signal };
      return run('ovs-ofctl', [...args], { ...bound, env, netns: ns || undefined, allowFailure: opts?.allowFailure, input: opts?.input }).catch((e) => {
        throw ovsUnavailable(e, config);
      });
    },
  };
}
