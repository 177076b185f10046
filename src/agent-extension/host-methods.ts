// host_capabilities: what this host is and can do, for the orchestrator and for admins. Every probe
// has a deadline; a missing tool or file gives "" / false / [], never a fault. The probes run in
// parallel at the edge; assembling the reply is pure.
import { readFile, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { release } from 'node:os';
import type { CallContext } from '../rpc/catalogue.js';
import { method } from '../rpc/params.js';
import type { XmlRpcStruct } from '../rpc/values.js';
import { BRICK_VERSION } from '../shared/version.js';
import { hostToolsReport } from '../shared/host-tools.js';
import { runIp } from '../shared/ip-dump.js';
import { hypervisorOf, probeHostKind, type HostKind } from './ovm3/hypervisor.js';
import { readOvsVersion } from './ovm3/module-info.js';
import { detectDpdk } from '../network/dpdk/operations.js';
import { fencerRunning, loadFencerStateBounded, stateAgeS, currentPoolAges, type FencerState } from '../fencer/state.js';

export const PROBE_TIMEOUT_MS = 5000;

/** "xen_major : 4", "xen_minor : 4", "xen_extra : .4" → "4.4.4" (pure). */
export function xenVersion(xlInfo: string): string {
  const f = (k: string) => new RegExp(`^${k}\\s*:\\s*(\\S*)`, 'm').exec(xlInfo)?.[1] ?? '';
  const major = f('xen_major');
  return major ? `${major}.${f('xen_minor')}${f('xen_extra')}` : '';
}

/** "ovs-vsctl (Open vSwitch) 3.1.0" → "3.1.0" (pure). */
export function ovsVswitchVersion(out: string): string {
  return /\(Open vSwitch\)\s+(\S+)/.exec(out)?.[1] ?? '';
}

/** Bridge names (Linux bridges and OVS bridges) from `ip -json -details link show` (pure). */
export function bridgesOf(ipJson: string): string[] {
  const links = JSON.parse(ipJson || '[]') as Array<{ ifname: string; linkinfo?: { info_kind?: string } }>;
  return links
    .filter((l) => l.linkinfo?.info_kind === 'bridge' || l.linkinfo?.info_kind === 'openvswitch')
    .map((l) => l.ifname)
    .filter((n) => n !== 'ovs-system')
    .sort();
}

export interface WatchdogFacts {
  device: string;
  present: boolean;
  identity: string;
  timeout_s: number;
}

export function fencerFacts(s: FencerState | undefined, nowMs = Date.now(), problem?: string): XmlRpcStruct {
  if (problem) return { running: false, state: `fencer state file unusable: ${problem}` };
  if (!s) return { running: false, state: 'no fencer state file' };
  const running = fencerRunning(s, nowMs);
  return {
    running,
    state_age_s: Math.round(stateAgeS(s, nowMs) * 1000) / 1000,
    host_id: s.host_id,
    action: s.action,
    fence_after_s: s.fence_after_s,
    // A stopped fencer's pools have no current state (heartbeat_status says the same).
    pools: s.pools.map((p) => ({ path: p.path, source: p.source ?? 'config', state: running ? p.state : 'fencer-stopped', last_ok_age_s: currentPoolAges(s, p, nowMs).last_ok_age_s })),
    fenced: s.fenced !== null,
  } as XmlRpcStruct;
}

async function soft<T>(p: Promise<T>, fallback: T): Promise<T> {
  try {
    return await p;
  } catch {
    return fallback;
  }
}

async function watchdogFacts(device: string): Promise<WatchdogFacts> {
  const facts: WatchdogFacts = { device, present: device !== '' && existsSync(device), identity: '', timeout_s: 0 };
  const names = await soft(readdir('/sys/class/watchdog'), [] as string[]);
  // /dev/watchdog is watchdog0; /dev/watchdogN is N.
  const n = /watchdog(\d+)$/.exec(device)?.[1] ?? '0';
  const name = names.includes(`watchdog${n}`) ? `watchdog${n}` : names.sort()[0];
  if (name) {
    facts.identity = (await soft(readFile(`/sys/class/watchdog/${name}/identity`, 'utf8'), '')).trim();
    facts.timeout_s = Number((await soft(readFile(`/sys/class/watchdog/${name}/timeout`, 'utf8'), '0')).trim()) || 0;
  }
  return facts;
}

export async function hostCapabilities(ctx: CallContext, kind: HostKind = probeHostKind()): Promise<XmlRpcStruct> {
  const deadline = () => Math.max(1, Math.min(PROBE_TIMEOUT_MS, ctx.remainingMs() - 50));
  const out = (cmd: string, args: string[], netns?: string) => {
    const opts = { timeoutMs: deadline(), allowFailure: true, netns };
    // a listing the kernel interrupted is read again (shared/ip-dump.ts)
    const r = cmd === 'ip' ? runIp(ctx.run, args, opts) : ctx.run(cmd, args, opts);
    return soft(r.then((x) => (x.code === 0 ? x.stdout : '')), '');
  };
  const hypervisor = hypervisorOf(kind);
  const [xlInfo, ovm, virshV, vsctlV, links, dpdk, watchdog, tools, fencer] = await Promise.all([
    hypervisor === 'xen' ? out('xl', ['info']) : Promise.resolve(''),
    soft(readOvsVersion(), undefined),
    out('virsh', ['--version']),
    out('ovs-vsctl', ['--version']),
    out('ip', ['-json', '-details', 'link', 'show'], ctx.config.network.namespace || undefined),
    // A read that failed or timed out: dpdk false for now, the reason says it was not a "no".
    detectDpdk({ run: ctx.run, config: ctx.config, remainingMs: deadline }).catch((e: unknown): { dpdk: boolean; reason?: string } => ({
      dpdk: false,
      reason: `DPDK detection failed: ${e instanceof Error ? e.message : String(e)}`,
    })),
    watchdogFacts(ctx.config.fencer.watchdog_device),
    hostToolsReport(),
    // Off the event loop with a deadline: a hung state_dir gives "could not be read", never a stuck agent.
    loadFencerStateBounded(ctx.config.fencer.state_dir),
  ]);
  let bridges: string[] = [];
  try {
    bridges = bridgesOf(links);
  } catch {
    bridges = [];
  }
  return {
    hypervisor,
    hypervisor_version: hypervisor === 'xen' ? xenVersion(xlInfo) : hypervisor === 'kvm' ? release() : '',
    ovm_version: ovm ?? '',
    libvirt_version: virshV.trim(),
    ovs_version: ovsVswitchVersion(vsctlV),
    dpdk: dpdk.dpdk,
    dpdk_reason: dpdk.reason ?? '',
    bridges,
    watchdog: { ...watchdog },
    fencer: fencerFacts(fencer.state, Date.now(), fencer.problem),
    brick_version: BRICK_VERSION,
    host_tools: tools.map((t) => ({ ...t })),
  };
}

export const methods = [
  method({
    name: 'host_capabilities',
    params: [],
    returns: 'struct',
    help:
      'host_capabilities(): struct {hypervisor (xen, kvm, none), hypervisor_version, ovm_version (/etc/ovs-release), libvirt_version, ovs_version, ' +
      'dpdk (bool) and dpdk_reason, bridges (array of names), watchdog {device, present, identity, timeout_s}, fencer {running, state_age_s, host_id, ' +
      'action, fence_after_s, pools (path, source config or runtime, state (fencer-stopped while the fencer is not running), last_ok_age_s), fenced} (or {running: false}), brick_version, host_tools (array of {name, package, path, ' +
      'source (host, brick = its own copy, host-too-old, missing), version, min_version, missing_flags, note}: every command brick runs, src/shared/host-tools.ts)}. A probe that cannot answer (tool missing, deadline) gives "" or false; no faults.',
    handler: (_args, ctx) => hostCapabilities(ctx),
  }),
];
