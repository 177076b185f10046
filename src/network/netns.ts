// The network code's view of the host: `ip` and `ovs-vsctl`, bound to config.network.namespace
// (created if missing: the sandbox and tests rely on brick making it) and to
// config.network.ovs_rundir (OVS_RUNDIR in the tools' environment). Every command goes through the
// Runner it is given, with the network command deadline.
import { existsSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { BrickError } from '../shared/errors.js';
import type { Runner, RunResult } from '../shared/run.js';

export interface NetHost {
  /** "" = the host's namespace. */
  readonly namespace: string;
  readonly backend: 'linuxbridge' | 'openvswitch';
  readonly timeoutMs: number;
  ip(args: readonly string[], opts?: { allowFailure?: boolean }): Promise<RunResult>;
  /** Run `ip -batch -` with these lines on stdin (one process). `force` goes on past failures. */
  ipBatch(lines: readonly string[], opts?: { force?: boolean; allowFailure?: boolean }): Promise<RunResult>;
  vsctl(args: readonly string[], opts?: { allowFailure?: boolean }): Promise<RunResult>;
  /** ovs-ofctl (flows), same namespace and OVS_RUNDIR as vsctl; `input` goes to stdin (add-flows BR -). */
  ofctl(args: readonly string[], opts?: { allowFailure?: boolean; input?: string }): Promise<RunResult>;
}

const NETNS_DIR = '/run/netns';

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

export function netHost(config: Config, run: Runner): NetHost {
  const ns = config.network.namespace;
  const timeoutMs = Math.round(config.network.command_timeout_s * 1000);
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', LC_ALL: 'C' };
  if (config.network.ovs_rundir) env.OVS_RUNDIR = config.network.ovs_rundir;
  const nsArgs = ns ? ['-n', ns] : [];
  return {
    namespace: ns,
    backend: config.network.backend,
    timeoutMs,
    async ip(args, opts) {
      await ensureNamespace(run, ns, timeoutMs);
      return run('ip', [...nsArgs, ...args], { timeoutMs, allowFailure: opts?.allowFailure });
    },
    async ipBatch(lines, opts) {
      await ensureNamespace(run, ns, timeoutMs);
      const args = [...nsArgs, ...(opts?.force ? ['-force'] : []), '-batch', '-'];
      return run('ip', args, { timeoutMs, input: lines.join('\n') + '\n', allowFailure: opts?.allowFailure });
    },
    async vsctl(args, opts) {
      await ensureNamespace(run, ns, timeoutMs);
      const secs = Math.max(1, Math.floor(timeoutMs / 1000) - 1);
      return run('ovs-vsctl', [`--timeout=${secs}`, ...args], { timeoutMs, env, netns: ns || undefined, allowFailure: opts?.allowFailure });
    },
    async ofctl(args, opts) {
      await ensureNamespace(run, ns, timeoutMs);
      return run('ovs-ofctl', [...args], { timeoutMs, env, netns: ns || undefined, allowFailure: opts?.allowFailure, input: opts?.input });
    },
  };
}
