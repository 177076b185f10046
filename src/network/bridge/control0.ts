// control0: the link-local network the orchestrator reaches its system VMs on (Ovm3
// ovs_control_interface, KVM's cloud0). Desired: the bridge exists and is up with ARP on, holds
// 169.254.0.1/16, and the ONLY 169.254.0.0/16 route goes through it (zeroconf puts one on every
// NIC); NOZEROCONF=yes in /etc/sysconfig/network where that file exists; no stale ifcfg-control0
// (OVM writes one that breaks the bridge after a reboot). Each step is reported and idempotent.
import { existsSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { writeFileAtomic } from '../../shared/atomic-write.js';
import { join } from 'node:path';
import type { CallContext } from '../../rpc/catalogue.js';
import type { XmlRpcStruct } from '../../rpc/values.js';
import { BrickError } from '../../shared/errors.js';
import { applyOvs, applySteps, forgetUndone, undoLines, type Step } from '../host/plan.js';
import { T } from '../../rpc/schema.js';
import { check, Invalid, refine } from '../../rpc/params.js';
import { CidrText, LinuxIfName } from '../../rpc/formats.js';
import { v4FirstHost, v4IsNetwork, v4Network, type Cidr } from '../host/names.js';
import { type LinuxState, ownerAlias, readLinux, refuseAltname, routeArgs } from '../host/link-state.js';
import { linkKey, netContext, type NetContext } from '../host/context.js';
import { readOvs } from '../host/ovs.js';
import { planOvsBridge } from './bridge.js';

export interface ControlPaths {
  /** /etc/sysconfig/network: NOZEROCONF=yes is set here when the file exists. */
  sysconfigNetwork: string;
  /** Where a stale ifcfg-<dev> is removed from. */
  ifcfgDir: string;
}

export const DEFAULT_CONTROL_PATHS: ControlPaths = {
  sysconfigNetwork: '/etc/sysconfig/network',
  ifcfgDir: '/etc/sysconfig/network-scripts',
};

export interface ControlReport {
  bridge: string;
  link_up: string;
  arp: string;
  address: string;
  other_routes_removed: string[];
  route: string;
}

/** The address control0 holds: a network CIDR (Ovm3 sends 169.254.0.0/16) means its first host. */
export function controlAddress(cidr: string): Cidr {
  const c = check(CidrText, cidr, 'cidr');
  if (c.family !== 4) throw new BrickError('INVALID_PARAMS', `cidr: the control network is IPv4 (like 169.254.0.1/16), got ${cidr}`);
  if (c.prefix > 30) throw new BrickError('INVALID_PARAMS', `cidr: /${c.prefix} is too small for a control network; use e.g. /16`);
  // Its route is replaced to go through the control device: /0 would be the host's default route.
  if (c.prefix === 0) throw new BrickError('INVALID_PARAMS', `cidr: /0 is every address (its route is the default route), not a control network; use e.g. 169.254.0.1/16`);
  return v4IsNetwork(c) ? v4FirstHost(c) : c;
}

/** The control network's address as a call sends it (checked before anything runs; setupControl takes the text). */
export const ControlCidr = refine(T.String({ description: 'an IPv4 address with prefix, e.g. 169.254.0.1/16' }), (v): string => {
  if (typeof v !== 'string') throw new Invalid('must be a string');
  controlAddress(v);
  return v;
});

export function planControl(s: LinuxState, dev: string, addr: Cidr, createLink: boolean): { steps: Step[]; report: ControlReport } {
  const net = v4Network(addr);
  refuseAltname(s, dev);
  const link = s.links.get(dev);
  if (link && !['bridge', 'openvswitch', 'tun'].includes(link.kind))
    throw new BrickError('CONFLICT', `${dev} exists and is a ${link.kind || 'physical'} interface, not a bridge; remove it or name another control device`);
  // The control network's routes are taken from every other device: one whose own (not link-local)
  // address is in that network would lose its subnet's route, and the host could be cut off.
  const overlap = (a: Cidr, b: Cidr) => v4Network({ ...b, prefix: Math.min(a.prefix, b.prefix) }) === v4Network({ ...a, prefix: Math.min(a.prefix, b.prefix) });
  const clash = s.addrs.filter((a) => a.family === 4 && a.dev !== dev && a.scope !== 'link' && a.scope !== 'host' && overlap(a, addr));
  if (clash.length)
    throw new BrickError(
      'CONFLICT',
      `the control network ${net} overlaps ${clash.map((a) => `${a.address}/${a.prefix} on ${a.dev}`).join(', ')}; routing it through ${dev} could cut the host off: choose a control network of its own (e.g. 169.254.0.0/16)`,
    );
  const steps: Step[] = [];
  const report: ControlReport = { bridge: 'present', link_up: 'already up', arp: 'already on', address: 'present', other_routes_removed: [], route: 'present' };
  if (!link) {
    if (!createLink) throw new BrickError('NOT_FOUND', `${dev} does not exist`);
    steps.push({ do: `link add name ${dev} type bridge`, undo: `link del dev ${dev}`, what: `created bridge ${dev}` });
    steps.push({ do: `link set dev ${dev} alias ${ownerAlias('control')}`, what: `marked ${dev} as brick's` });
    report.bridge = 'created';
  }
  if (!link?.up) {
    steps.push({ do: `link set dev ${dev} up`, undo: link ? `link set dev ${dev} down` : undefined, what: `brought ${dev} up` });
    report.link_up = 'brought up';
  }
  if (link && !link.arp) {
    steps.push({ do: `link set dev ${dev} arp on`, undo: `link set dev ${dev} arp off`, what: `turned ARP on for ${dev}` });
    report.arp = 'turned on';
  }
  // Other devices' routes for the control network go first, so the kernel's route for our address
  // never competes with them.
  for (const r of s.routes.filter((r) => r.family === 4 && r.dst === net && r.dev !== dev)) {
    steps.push({ do: `route del ${routeArgs(r).join(' ')}`, undo: `route add ${routeArgs(r).join(' ')}`, what: `removed route ${net} via ${r.dev}` });
    report.other_routes_removed.push(`${net} dev ${r.dev}${r.metric !== undefined ? ` metric ${r.metric}` : ''}`);
  }
  const has = s.addrs.some((a) => a.dev === dev && a.family === 4 && a.address === addr.address && a.prefix === addr.prefix);
  if (!has) {
    steps.push({ do: `address add ${addr.address}/${addr.prefix} dev ${dev}`, undo: `address del ${addr.address}/${addr.prefix} dev ${dev}`, what: `added ${addr.address}/${addr.prefix} to ${dev}` });
    report.address = 'added';
  }
  if (!s.routes.some((r) => r.family === 4 && r.dst === net && r.dev === dev)) {
    // replace, not add: the kernel may already have made it from the address just added.
    steps.push({
      do: `route replace ${net} dev ${dev} proto kernel scope link src ${addr.address}`,
      undo: `route del ${net} dev ${dev} proto kernel scope link src ${addr.address}`,
      what: `routed ${net} through ${dev}`,
    });
    report.route = 'added';
  }
  return { steps, report };
}

/** NOZEROCONF=yes in an /etc/sysconfig/network text; null when it already says so. */
export function withNozeroconf(text: string): string | null {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => /^\s*NOZEROCONF\s*=/.test(l));
  if (i >= 0) {
    if (/^\s*NOZEROCONF\s*=\s*["']?yes["']?\s*$/i.test(lines[i])) return null;
    lines[i] = 'NOZEROCONF=yes';
    return lines.join('\n');
  }
  return (text === '' || text.endsWith('\n') ? text : text + '\n') + 'NOZEROCONF=yes\n';
}

export function ensureNozeroconf(path: string): string {
  if (!existsSync(path)) return `no ${path}`;
  const next = withNozeroconf(readFileSync(path, 'utf8'));
  if (next === null) return 'already set';
  writeFileAtomic(path, next, { mode: statSync(path).mode & 0o7777 });
  return 'set';
}

export function removeStaleIfcfg(dir: string, dev: string): string {
  const p = join(dir, `ifcfg-${dev}`);
  try {
    unlinkSync(p);
    return 'removed';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw new BrickError('COMMAND_FAILED', `${p}: cannot remove it: ${(e as Error).message}`);
  }
}

/**
 * The ip steps after the OVS bridge for the control device failed (or were refused): the bridge
 * this call created (its own ovs-vsctl transaction) is removed again, and the fault says so, or
 * says that it was left in place when removing it failed.
 */
async function undoOvsBridge(nc: NetContext, dev: string, made: string[], e: unknown): Promise<unknown> {
  const fault = e instanceof BrickError ? e.fault : 'COMMAND_FAILED';
  const msg = e instanceof Error ? e.message : String(e);
  const detail = e instanceof BrickError ? e.detail : undefined;
  try {
    await nc.host.vsctl(['--if-exists', 'del-br', dev], { undo: true });
  } catch (u) {
    return new BrickError(fault, `${msg}; the OVS bridge ${dev} this call created is left in place (removing it failed: ${u instanceof Error ? u.message : String(u)})`, detail);
  }
  forgetUndone(nc.host, made);
  return new BrickError(fault, `${msg}; the OVS bridge ${dev} this call had created was removed again`, detail);
}

/** Undo the ip steps a call applied (a later step of it failed); the fault says whether that worked. */
async function undoControlSteps(nc: NetContext, steps: readonly Step[], e: BrickError): Promise<BrickError> {
  const undo = undoLines(steps);
  if (!undo.length) return e;
  const u = await nc.host.ipBatch(undo, { force: true, allowFailure: true, undo: true }).catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message }));
  if (u.code !== 0)
    return new BrickError(e.fault, `${e.message}; undoing the ${steps.length} network step(s) of this call FAILED (${u.stderr.trim().slice(0, 500)}): check ${steps.map((st) => st.what).join('; ')}`, e.detail);
  forgetUndone(nc.host, steps.map((st) => st.what));
  return new BrickError(e.fault, `${e.message}; the ${steps.length} network step(s) of this call were undone`, e.detail);
}

export async function setupControl(
  ctx: Pick<CallContext, 'config' | 'run' | 'locks' | 'log'>,
  dev: string,
  cidr: string,
  paths: ControlPaths = DEFAULT_CONTROL_PATHS,
): Promise<XmlRpcStruct> {
  check(LinuxIfName, dev, 'dev');
  const addr = controlAddress(cidr);
  const nc = netContext(ctx);
  return nc.locks.with([linkKey(dev), `net:route:${v4Network(addr)}`], async () => {
    const changes: string[] = [];
    let s = await readLinux(nc.host);
    refuseAltname(s, dev); // before an OVS bridge is made for it
    let ovsCreated = false;
    const ovsMade: string[] = [];
    if (!s.links.has(dev) && nc.host.backend === 'openvswitch') {
      planControl(s, dev, addr, true); // its refusals (an overlap, ...) before the OVS bridge is made
      ovsMade.push(...(await applyOvs(nc.host, planOvsBridge(await readOvs(nc.host), { name: dev }))));
      changes.push(...ovsMade);
      ovsCreated = ovsMade.length > 0;
    }
    let report: ControlReport;
    let steps: Step[] = [];
    try {
      if (ovsCreated) s = await readLinux(nc.host);
      const plan = planControl(s, dev, addr, nc.host.backend === 'linuxbridge');
      report = plan.report;
      if (ovsCreated) report.bridge = 'created';
      changes.push(...(await applySteps(nc.host, plan.steps)));
      steps = plan.steps;
    } catch (e) {
      if (!ovsCreated) throw e;
      throw await undoOvsBridge(nc, dev, changes, e);
    }
    // In a namespace (sandbox, tests) the host's files are not this network's: none is touched.
    // Paths a caller hands in explicitly are its own (tests point them at temp files).
    const hostFiles = !nc.host.namespace || paths !== DEFAULT_CONTROL_PATHS;
    const skipped = `skipped: network.namespace "${nc.host.namespace}" is set, host files are left alone`;
    let nozeroconf = skipped;
    let ifcfg = skipped;
    try {
      if (hostFiles) nozeroconf = ensureNozeroconf(paths.sysconfigNetwork);
      if (nozeroconf === 'set') changes.push(`set NOZEROCONF=yes in ${paths.sysconfigNetwork}`);
      if (hostFiles) ifcfg = removeStaleIfcfg(paths.ifcfgDir, dev);
      if (ifcfg === 'removed') changes.push(`removed ${join(paths.ifcfgDir, `ifcfg-${dev}`)}`);
    } catch (e) {
      // A file step failed after the network steps were applied: they are undone (the call
      // fails whole), and what cannot be (NOZEROCONF=yes written just before) is named.
      const fault = e instanceof BrickError ? e : new BrickError('COMMAND_FAILED', `${paths.sysconfigNetwork}: ${(e as Error).message}`);
      const kept = nozeroconf === 'set' ? `; NOZEROCONF=yes stays set in ${paths.sysconfigNetwork}` : '';
      const undone = await undoControlSteps(nc, steps, fault);
      const said = new BrickError(undone.fault, `${undone.message}${kept}`, undone.detail);
      throw ovsCreated ? await undoOvsBridge(nc, dev, ovsMade, said) : said;
    }
    if (changes.length) nc.log.info({ dev, changes }, 'control network set up');
    return {
      dev,
      address: `${addr.address}/${addr.prefix}`,
      changed: changes.length > 0,
      changes,
      steps: { ...report, nozeroconf, ifcfg },
    } as unknown as XmlRpcStruct;
  });
}
