// Overlay networks, the acting half: each call takes the per-bridge lock, reads the running state
// inside it, applies the plan from overlay-plan.ts / vxlan-bridge.ts in one ovs-vsctl transaction or
// one `ip -batch`, verifies, and reports exactly what changed.
import { isIP } from 'node:net';
import type { XmlRpcStruct, XmlRpcValue } from '../../rpc/values.js';
import { BrickError, isBrickError } from '../../shared/errors.js';
import { linkKey, type NetContext } from '../host/context.js';
import { readLinks, readLinux, type LinuxState } from '../host/link-state.js';
import { readOvs } from '../host/ovs.js';
import type { NetHost } from '../host/netns.js';
import {
  type OverlayBridgeDesired,
  type OverlayState,
  type TunnelDesired,
  dropFlows,
  flowsPresent,
  overlayView,
  planOverlayBridge,
  planRemoveOverlayBridge,
  planRemoveTunnel,
  planTunnel,
  tunnelCookie,
  tunnelPortName,
  tunnelReport,
} from './plan.js';
import { applyOvs, applySteps, forgetUndone } from '../host/plan.js';
import { removeOvsGuarded } from '../host/ovs-removal.js';
import { planRemoveVxlanBridge, planVxlanBridge, vxlanBridges, vxlanGroup, vxlanNames, type VxlanBridgeDesired, type VxlanNames } from './vxlan-bridge.js';

export async function readOverlay(host: NetHost): Promise<OverlayState> {
  return overlayView(await readOvs(host));
}

export async function ensureOverlayBridge(nc: NetContext, d: OverlayBridgeDesired): Promise<XmlRpcStruct> {
  return nc.locks.with(linkKey(d.bridge), async () => {
    const changes = await applyOvs(nc.host, planOverlayBridge(await readOverlay(nc.host), d));
    if (changes.length) nc.log.info({ bridge: d.bridge, key: d.key, changes }, 'overlay bridge ensured');
    return { bridge: d.bridge, key: d.key, changed: changes.length > 0, changes };
  });
}

/** Delete exactly this port's flows (by cookie); absent bridge or flows are fine. `undo`: even when the call was stopped. */
async function deleteFlows(host: NetHost, bridge: string, port: string, undo = false): Promise<void> {
  const r = await host.ofctl(['del-flows', bridge, `cookie=${tunnelCookie(port)}/-1`], { allowFailure: true, undo });
  if (r.code !== 0 && !/is not a bridge|No such file|not found/i.test(r.stderr))
    throw new BrickError('COMMAND_FAILED', `ovs-ofctl del-flows ${bridge} (flows of ${port}): ${r.stderr.trim() || 'exit ' + r.code}`);
}

/** Make the port's drop flows exactly right for its current ofport; true when something changed. */
async function ensureFlows(host: NetHost, bridge: string, port: string, ofport: number, touched: { flows: boolean }): Promise<boolean> {
  const dump = await host.ofctl(['--no-names', 'dump-flows', bridge, `cookie=${tunnelCookie(port)}/-1`]);
  if (flowsPresent(dump.stdout, ofport)) return false;
  touched.flows = true;
  await deleteFlows(host, bridge, port);
  await host.ofctl(['add-flows', bridge, '-'], { input: dropFlows(port, ofport).join('\n') + '\n' });
  return true;
}

export async function ensureTunnel(nc: NetContext, d: TunnelDesired): Promise<XmlRpcStruct> {
  const name = d.name ?? tunnelPortName(d.type, d.bridge, d.remote, d.key);
  return nc.locks.with([linkKey(d.bridge), linkKey(name)], async () => {
    const plan = planTunnel(await readOverlay(nc.host), { ...d, name });
    const changes = await applyOvs(nc.host, plan.cmds);
    const applied = [...changes];
    const touched = { flows: false };
    // From here on a new port is removed again on any failure, the call's deadline included.
    const undone = async (e: unknown): Promise<never> => {
      if (plan.exists) throw e;
      const failed = await rollback(nc.host, d.bridge, name, touched.flows, applied);
      const err = e instanceof BrickError ? e : new BrickError('COMMAND_FAILED', String(e));
      throw new BrickError(err.fault, `${err.message}; ${failed ? `removing tunnel ${name} again FAILED (${failed}): it is left in place` : `tunnel ${name} was removed again`}`, err.detail);
    };
    let i;
    try {
      // Verify OVS took the interface: an empty error column and a real ofport.
      i = (await readOverlay(nc.host)).ports.get(name)?.iface;
    } catch (e) {
      return undone(e);
    }
    if (!i || i.error || i.ofport === undefined || i.ofport < 1) {
      const words = i?.error || (i ? `ofport ${i.ofport ?? 'unset'}` : 'the port is missing after the transaction');
      const failed = plan.exists ? '' : await rollback(nc.host, d.bridge, name, false, applied);
      throw new BrickError(
        'VERIFY_FAILED',
        `Open vSwitch did not accept ${d.type} tunnel ${name} on ${d.bridge} to ${d.remote}: ${words}${plan.exists ? ' (the port was already there; brick left it)' : failed ? `; removing it again FAILED (${failed}): it is left in place` : '; brick removed it again'}`,
        { port: name },
      );
    }
    try {
      if (await ensureFlows(nc.host, d.bridge, name, i.ofport, touched)) changes.push(`installed the broadcast/multicast drop flows for ${name} (in_port ${i.ofport})`);
    } catch (e) {
      return undone(e);
    }
    if (changes.length) nc.log.info({ bridge: d.bridge, port: name, remote: d.remote, key: d.key, changes }, 'tunnel ensured');
    return { port: name, ofport: i.ofport, bridge: d.bridge, type: d.type, remote: d.remote, key: d.key, changed: changes.length > 0, changes };
  });
}

/**
 * Remove a tunnel this call added, even when the call was stopped; '' when done (then the call's
 * journal no longer lists `applied` as left in place), else why it failed.
 */
async function rollback(host: NetHost, bridge: string, port: string, flows: boolean, applied: readonly string[]): Promise<string> {
  if (flows) await deleteFlows(host, bridge, port, true).catch(() => undefined);
  try {
    // --no-wait: the row goes at once even when ovs-vswitchd is what did not answer; it follows.
    const r = await host.vsctl(['--no-wait', '--if-exists', 'del-port', bridge, port], { allowFailure: true, undo: true });
    if (r.code !== 0) return r.stderr.trim() || `ovs-vsctl exit ${r.code}`;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  forgetUndone(host, applied);
  return '';
}

export async function removeTunnel(nc: NetContext, bridge: string, port: string): Promise<XmlRpcStruct> {
  return nc.locks.with([linkKey(bridge), linkKey(port)], async () => {
    const s = await readOverlay(nc.host);
    const plan = planRemoveTunnel(s, bridge, port);
    // Flows first (a stale cookie's flows are removed even when the port is already gone).
    if (s.bridges.has(bridge)) await deleteFlows(nc.host, bridge, port);
    const changes = await applyOvs(nc.host, plan.cmds);
    if (changes.length) nc.log.info({ bridge, port, changes }, 'tunnel removed');
    return { removed: plan.exists, changes };
  });
}

export async function removeOverlayBridge(nc: NetContext, bridge: string): Promise<XmlRpcStruct> {
  return nc.locks.with(linkKey(bridge), async () => {
    // The bridge's flows go with it. Conditional on its ports as read (a guest port another program
    // adds meanwhile is not deleted with it: removeOvsGuarded).
    const read = () => readOverlay(nc.host);
    const plan = (st: OverlayState) => {
      const p = planRemoveOverlayBridge(st, bridge);
      return { ...p, deletes: p.exists ? [bridge] : [], judged: p.exists ? [bridge] : [] };
    };
    const { changes } = await removeOvsGuarded(nc, await read(), read, plan, bridge);
    if (changes.length) nc.log.info({ bridge, changes }, 'overlay bridge removed');
    return { removed: changes.length > 0, changes };
  });
}

/**
 * What planVxlanBridge looks at, and nothing more, whatever else the host holds: the pif and the
 * bridge it is a port of (the underlay), the VXLAN device, the bridge and its ports.
 */
async function readForVxlan(nc: NetContext, d: VxlanBridgeDesired, names: VxlanNames): Promise<LinuxState> {
  const s = await readLinks(nc.host, { names: [d.pif, names.vxlanDevice, names.bridge], portsOf: [names.bridge] });
  const master = s.links.get(d.pif)?.master;
  if (master && !s.links.has(master)) for (const [k, v] of (await readLinks(nc.host, { names: [master] })).links) s.links.set(k, v);
  return s;
}

/**
 * A VXLAN device with a group joins that group on its underlay when it goes up; the kernel allows
 * net.ipv4.igmp_max_memberships groups per socket (default 20), then says "No buffer space
 * available". The fault says so and what to do (the batch was undone; applySteps says so).
 */
function groupLimitHint(e: unknown, d: VxlanBridgeDesired, underlay: string): unknown {
  if (!isBrickError(e) || e.fault !== 'COMMAND_FAILED' || !/No buffer space available/.test(e.message)) return e;
  const group = d.group ?? vxlanGroup(d.vni);
  if (isIP(group) !== 4) return e;
  return new BrickError(
    'COMMAND_FAILED',
    `${e.message}. The kernel would not join multicast group ${group} on ${underlay}: each VXLAN group on a host counts against ` +
      'net.ipv4.igmp_max_memberships (default 20; CloudStack\'s VXLAN guide raises it, e.g. to 200); raise it, or give this bridge a unicast remote',
    e.detail,
  );
}

/** What planRemoveVxlanBridge looks at: the bridge and its ports. */
const readVxlanBridge = (nc: NetContext, bridge: string) => readLinks(nc.host, { names: [bridge], portsOf: [bridge] });

export async function ensureVxlanBridge(nc: NetContext, d: VxlanBridgeDesired): Promise<XmlRpcStruct> {
  const names = vxlanNames(d);
  return nc.locks.with([linkKey(names.bridge), linkKey(names.vxlanDevice)], async () => {
    const plan = planVxlanBridge(await readForVxlan(nc, d, names), d);
    const changes = await applySteps(nc.host, plan.steps).catch((e: unknown) => {
      throw d.remote ? e : groupLimitHint(e, d, plan.underlay);
    });
    if (changes.length) nc.log.info({ bridge: names.bridge, vni: d.vni, changes }, 'VXLAN bridge ensured');
    return { bridge: names.bridge, vxlan_device: names.vxlanDevice, vni: d.vni, underlay: plan.underlay, changed: changes.length > 0, changes };
  });
}

export async function removeVxlanBridge(nc: NetContext, bridge: string): Promise<XmlRpcStruct> {
  const first = await readVxlanBridge(nc, bridge);
  const ports = [...first.links.values()].filter((l) => l.master === bridge).map((l) => l.name);
  return nc.locks.with([bridge, ...ports].map(linkKey), async () => {
    const plan = planRemoveVxlanBridge(await readVxlanBridge(nc, bridge), bridge);
    const changes = await applySteps(nc.host, plan.steps);
    if (changes.length) nc.log.info({ bridge, changes }, 'VXLAN bridge removed');
    return { removed: plan.exists, changes };
  });
}

/** network_state's overlay part: tunnels (openvswitch backend) and VXLAN bridges. */
export async function overlayReport(nc: NetContext): Promise<{ tunnels: XmlRpcValue[]; vxlan_bridges: XmlRpcValue[] }> {
  const [linux, ovs] = await Promise.all([readLinux(nc.host), nc.host.backend === 'openvswitch' ? readOverlay(nc.host) : undefined]);
  return { tunnels: ovs ? tunnelReport(ovs) : [], vxlan_bridges: vxlanBridges(linux) };
}
