// check_dom0_storage_health_check / check_dom0_storage_health: the module started storagehealth.py
// from the agent and ran it in check mode for peers. brick's fencer is its own service (brick
// fencer, its own systemd unit); the agent only READS: the fencer's state in fencer.state_dir, and a
// peer's heartbeat file through the fencer's peer check, which reads it in a child process with a
// deadline. The agent process itself never touches NFS with fs.
import { BrickError } from '../../shared/errors.js';
import { fencerRunning, readFencerState, type FencerState } from '../../fencer/state.js';
import { checkPeerHeartbeat, type PeerCheckResult } from '../../fencer/peer-check.js';
import { HOST_ID_RE } from '../../fencer/heartbeat-format.js';
import type { CallContext } from '../../rpc/catalogue.js';
import { int, plain } from './args.js';

function guidArg(v: unknown): string {
  const g = plain('guid', v, 128);
  if (!HOST_ID_RE.test(g)) throw new BrickError('INVALID_PARAMS', `guid: must be letters, digits, _ . : - (it names the heartbeat file .hb-<guid>), got "${g}"`);
  return g;
}

/** [running, started] from the fencer's state (pure). started is always false: the agent never starts the fencer. */
export function healthCheckReply(s: FencerState | undefined, guid: string, nowMs: number): { reply: [boolean, boolean]; why: string } {
  if (!s) return { reply: [false, false], why: 'no fencer state: is brick-fencer.service running?' };
  if (!fencerRunning(s, nowMs)) return { reply: [false, false], why: 'the fencer state is stale: brick-fencer is not running' };
  if (s.host_id !== guid)
    return {
      reply: [false, false],
      why: `the fencer writes heartbeats as "${s.host_id}" but CloudStack knows this host as "${guid}"; set fencer.host_id = "${guid}" so peers can check it`,
    };
  return { reply: [true, false], why: 'running' };
}

/** check_dom0_storage_health_check(path, script, guid, timeout, interval) → [running, started]. */
export async function storageHealthCheck(args: unknown[], ctx: CallContext): Promise<[boolean, boolean]> {
  plain('path', args[0], 4096); // ignored, as by the module; still no shell syntax
  plain('script', args[1], 256);
  const guid = guidArg(args[2]);
  const timeout = int('timeout', args[3], 1, 86400);
  const interval = int('interval', args[4], 1, 86400);
  const { reply, why } = healthCheckReply(readFencerState(ctx.config.fencer.state_dir), guid, Date.now());
  if (!reply[0]) ctx.log.warn({ guid, why }, 'check_dom0_storage_health_check: the heartbeat fencer is not running for this host');
  if (ctx.config.fencer.fence_after_s > timeout)
    ctx.log.warn({ timeout, fence_after_s: ctx.config.fencer.fence_after_s }, 'CloudStack\'s ovm3.heartbeat.timeout is shorter than fencer.fence_after_s');
  void interval;
  return reply;
}

/** Combine per-pool peer checks (pure): any false → false; else any true → true; all unknown → cannot tell. */
export function combinePeerChecks(results: PeerCheckResult[]): boolean | 'unknown' {
  if (results.some((r) => r.alive === false)) return false;
  if (results.some((r) => r.alive === true)) return true;
  return 'unknown';
}

/** check_dom0_storage_health(path, script, guid, timeout) → true when host guid's heartbeat is fresh on the pools. */
export async function storageHealth(args: unknown[], ctx: CallContext): Promise<boolean> {
  plain('path', args[0], 4096);
  plain('script', args[1], 256);
  const guid = guidArg(args[2]);
  const maxAgeS = int('timeout', args[3], 1, 86400);
  const pools = ctx.config.fencer.pool;
  if (!pools.length) throw new BrickError('NOT_READY', 'no [[fencer.pool]] in the config: brick does not know which pools hold heartbeats');
  const timeoutMs = Math.max(1, Math.min(ctx.config.fencer.probe_timeout_s * 1000, ctx.remainingMs() - 100));
  const results = await Promise.all(
    pools.map((p) => checkPeerHeartbeat({ poolPath: p.path, hostId: guid, format: p.heartbeat, maxAgeS, timeoutMs, run: ctx.run })),
  );
  const verdict = combinePeerChecks(results);
  ctx.log.info({ guid, pools: pools.map((p, i) => ({ path: p.path, ...results[i] })), verdict }, 'check_dom0_storage_health');
  if (verdict === 'unknown')
    throw new BrickError('NOT_READY', `cannot tell whether ${guid} is alive: its heartbeat file could not be read on any pool (missing, unreadable or past ${timeoutMs} ms)`);
  return verdict;
}
