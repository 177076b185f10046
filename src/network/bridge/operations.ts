// The edge: each operation takes the locks for the things it touches, reads the RUNNING state
// inside them, asks a pure planner for the PLAN that turns it into the DESIRED state, applies that
// in one `ip -batch` or one ovs-vsctl transaction, and reports exactly what changed.
import type { Config } from '../../config/schema.js';
import type { XmlRpcStruct } from '../../rpc/values.js';
import { BrickError } from '../../shared/errors.js';
import { KeyedLock } from '../../shared/keyed-lock.js';
import type { Logger } from '../../shared/log.js';
import { run as realRun, type Runner } from '../../shared/run.js';
import { planLinuxBridge, planLinuxRemoveBridge, planOvsBridge, planOvsRemoveBridge, type BridgeDesired } from './bridge.js';
import { linkKey, type NetContext } from '../host/context.js';
import { planLinuxGc, planOvsGc, type GcPlan } from './gc.js';
import { netHost } from '../host/netns.js';
import { readLinks, readLinux, readRoutes, portsOf, type LinuxState } from '../host/link-state.js';
import { fakeBridges, readOvs, type OvsState } from '../host/ovs.js';
import { removeOvsGuarded } from '../host/ovs-removal.js';
import { applyOvs, applySteps, undoLines, type Step } from '../host/plan.js';
import { pendingPath, safeApply } from '../host/safe-apply.js';
import {
  linuxVlanNames,
  vlanNamesOn,
  ovsVlanNames,
  planLinuxRemoveVlanBridge,
  planLinuxVlanBridge,
  planOvsRemoveVlanBridge,
  planOvsVlanBridge,
  type VlanBridgeDesired,
  type VlanBridgeNames,
} from './vlan-bridge.js';

/**
 * Apply a plan; if the batch failed because something appeared meanwhile (another program made
 * the same device between our read and our batch: "File exists"), read again and apply the new
 * plan once. brick's own callers are already serialized by the locks.
 */
async function applyFresh(nc: NetContext, plan: () => Promise<Step[]>, first?: Step[]): Promise<string[]> {
  try {
    return await applySteps(nc.host, first ?? (await plan()));
  } catch (e) {
    if (!(e instanceof BrickError && e.fault === 'COMMAND_FAILED' && /File exists/.test(e.message))) throw e;
    return applySteps(nc.host, await plan());
  }
}

/**
 * What planLinuxBridge looks at, and nothing more: the bridge and the uplink (one read, whatever
 * else the host holds); the uplink's addresses, and the routes only when the uplink is
 * to be enslaved (they may have to move with it).
 */
async function readForBridge(nc: NetContext, d: BridgeDesired): Promise<LinuxState> {
  const s = await readLinks(nc.host, { names: [d.name, ...(d.uplink ? [d.uplink] : [])], addrsOf: d.uplink ? [d.uplink] : [] });
  const up = d.uplink ? s.links.get(d.uplink) : undefined;
  if (up && up.master !== d.name) s.routes = await readRoutes(nc.host);
  return s;
}

export interface EnsureBridgeOptions {
  /** Apply a risky change and roll it back unless network_confirm comes within this many seconds. */
  confirmWithinS?: number;
}

export async function ensureBridge(nc: NetContext, d: BridgeDesired, o: EnsureBridgeOptions = {}): Promise<XmlRpcStruct> {
  const keys = [linkKey(d.name), ...(d.uplink ? [linkKey(d.uplink)] : [])];
  return nc.locks.with(keys, async (): Promise<XmlRpcStruct> => {
    if (nc.host.backend === 'openvswitch') {
      const s = await readOvs(nc.host);
      const uplinkAddrs = d.uplink && !s.ports.has(d.uplink) ? (await readLinux(nc.host)).addrs.filter((a) => a.dev === d.uplink && a.scope !== 'link') : [];
      if (uplinkAddrs.length)
        throw new BrickError('CONFLICT', `uplink ${d.uplink} carries ${uplinkAddrs.map((a) => `${a.address}/${a.prefix}`).join(', ')}; brick does not move addresses into an OVS bridge: move them first or use another uplink`);
      const changes = await applyOvs(nc.host, planOvsBridge(s, d));
      return { bridge: d.name, changed: changes.length > 0, changes };
    }
    const s = await readForBridge(nc, d);
    const plan = planLinuxBridge(s, d);
    if (plan.risky && o.confirmWithinS === undefined)
      throw new BrickError(
        'CONFLICT',
        `${plan.risky}. Ask again with opts.confirm_within_s (e.g. 60) and call network_confirm over the new path within that time, or brick rolls it back`,
      );
    if (plan.risky) {
      const file = pendingPath(nc.config);
      const undo = undoLines(plan.steps);
      // A start after a crash mid-batch tells by the uplink's master whether the moves began (safe-apply.ts).
      const at = plan.steps.findIndex((st) => st.do === `link set dev ${d.uplink} master ${d.name}`);
      const witness = at >= 0 ? { dev: d.uplink!, master: d.name, undo_before: undoLines(plan.steps.slice(0, at)) } : undefined;
      const release = safeApply.reserve({ file, namespace: nc.host.namespace, changes: plan.steps.map((st) => st.what), undo, ...(witness ? { witness } : {}) });
      let armed = false;
      try {
        const changes = await applySteps(nc.host, plan.steps);
        const { deadline } = safeApply.arm(nc.host, nc.log, changes, undo, o.confirmWithinS!, { scope: { locks: nc.keyedLock, keys }, file });
        armed = true;
        return { bridge: d.name, changed: true, changes, confirm_by: deadline, pending_confirmation: true };
      } finally {
        if (!armed) release();
      }
    }
    const changes = await applyFresh(nc, async () => planLinuxBridge(await readForBridge(nc, d), d).steps, plan.steps);
    if (changes.length) nc.log.info({ bridge: d.name, changes }, 'bridge ensured');
    return { bridge: d.name, changed: changes.length > 0, changes };
  });
}

/**
 * Read, lock the names the state implies, read again inside the lock (`again`: what the plan needs
 * now that the names are known); retry if the names moved meanwhile. On Open vSwitch the parent
 * bridge is one of them: the fake bridge is made on it, and network_remove_bridge of the parent
 * holds it (without it, a parent removed between this read and the add-br took the new fake
 * bridge with it while this call said it was made); a fake bridge's removal holds it too (see
 * removeVlanBridge).
 */
async function withNames<S, N extends { bridge: string; vlanDevice?: string; parentBridge?: string }, T>(
  nc: NetContext,
  read: () => Promise<S>,
  names: (s: S) => N,
  again: (n: N) => Promise<S>,
  fn: (s: S, n: N, again: () => Promise<S>) => Promise<T>,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const first = names(await read());
    const keys = [first.bridge, ...(first.vlanDevice ? [first.vlanDevice] : []), ...(first.parentBridge ? [first.parentBridge] : [])].map(linkKey);
    const r = await nc.locks.with(keys, async () => {
      const s = await again(first);
      const n = names(s);
      if (n.bridge !== first.bridge || n.vlanDevice !== first.vlanDevice || n.parentBridge !== first.parentBridge) return undefined;
      return { v: await fn(s, n, () => again(first)) };
    });
    if (r) return r.v;
    if (attempt >= 2) throw new BrickError('CONFLICT', `the host's bridges kept changing while brick planned ${first.bridge}; try again`);
  }
}

export async function ensureVlanBridge(nc: NetContext, d: VlanBridgeDesired): Promise<XmlRpcStruct> {
  if (nc.host.backend === 'openvswitch') {
    const read = () => readOvs(nc.host);
    return withNames(nc, read, (s) => ovsVlanNames(s, d), read, async (s, n) => {
      const { names, cmds } = planOvsVlanBridge(s, d);
      const changes = await applyOvs(nc.host, cmds);
      if (changes.length) nc.log.info({ bridge: names.bridge, changes }, 'VLAN bridge ensured');
      return { bridge: names.bridge, vlan_device: '', parent: n.parentBridge, vlan: d.vlan, changed: changes.length > 0, changes };
    });
  }
  // Only what the plan looks at, one read (readLinks), whatever else the host holds: the parent
  // and its ports; inside the lock also the VLAN device and the bridge it names.
  const parent = () => readLinks(nc.host, { names: [d.parent], portsOf: [d.parent] });
  const named = (n: VlanBridgeNames) => readLinks(nc.host, { names: [d.parent, n.pif, n.bridge, n.vlanDevice!], portsOf: [d.parent, n.bridge] });
  const ensure = async (s: LinuxState, again: () => Promise<LinuxState>): Promise<XmlRpcStruct> => {
    const { names, steps } = planLinuxVlanBridge(s, d);
    const changes = await applyFresh(nc, async () => planLinuxVlanBridge(await again(), d).steps, steps);
    if (changes.length) nc.log.info({ bridge: names.bridge, changes }, 'VLAN bridge ensured');
    return { bridge: names.bridge, vlan_device: names.vlanDevice!, pif: names.pif, vlan: d.vlan, changed: changes.length > 0, changes };
  };
  // The names depend on the parent's uplink, so the plain way reads twice (the parent, then inside
  // the locks the names). The uplink last seen under this parent guesses the names: lock them, read
  // once, and go on only if that fresh read, made inside the locks, gives the same names.
  const hintKey = `${nc.host.namespace}\0${d.parent}`;
  const guess = guessVlanNames(d, pifHints.get(hintKey));
  if (guess) {
    const r = await nc.locks.with([guess.bridge, guess.vlanDevice!].map(linkKey), async () => {
      const s = await named(guess);
      let n: VlanBridgeNames;
      try {
        n = linuxVlanNames(s, d);
      } catch {
        return undefined; // the parent is gone or changed: the plain way says why
      }
      if (n.bridge !== guess.bridge || n.vlanDevice !== guess.vlanDevice || n.pif !== guess.pif) return undefined;
      return { v: await ensure(s, () => named(guess)) };
    });
    if (r) return r.v;
  }
  return withNames(nc, parent, (s) => rememberPif(hintKey, linuxVlanNames(s, d)), named, (s, _n, again) => ensure(s, again));
}

/** Per namespace and parent: the physical interface last found under it (a guess of what to read, never an answer). */
const pifHints = new Map<string, string>();
const MAX_HINTS = 4096;

function rememberPif(key: string, n: VlanBridgeNames): VlanBridgeNames {
  if (pifHints.size >= MAX_HINTS && !pifHints.has(key)) pifHints.clear();
  pifHints.set(key, n.pif);
  return n;
}

/** The names a VLAN bridge would have if the parent's uplink is still `pif`; undefined when they cannot be formed. */
function guessVlanNames(d: VlanBridgeDesired, pif: string | undefined): VlanBridgeNames | undefined {
  if (!pif) return undefined;
  try {
    return vlanNamesOn(d, pif);
  } catch {
    return undefined;
  }
}

/**
 * network_remove_vlan_bridge. Open vSwitch: the fake bridge and its parent are held. A port joins a
 * fake bridge by being added to the parent with its tag (dpdk_add_port holds the parent), and del-br
 * of a fake bridge deletes every port on its VLAN: holding only the fake bridge's name, a port added
 * between the "no ports" check and the del-br went with it while its add said it was made.
 */
export async function removeVlanBridge(nc: NetContext, name: string): Promise<XmlRpcStruct> {
  if (nc.host.backend === 'openvswitch') {
    const read = () => readOvs(nc.host);
    const names = (s: OvsState) => ({ bridge: name, parentBridge: fakeBridges(s).find((f) => f.name === name)?.parent });
    return withNames(nc, read, names, read, async (s, n) => {
      const { plan, changes } = await removeOvsGuarded(
        nc,
        s,
        read,
        (st) => {
          const p = planOvsRemoveVlanBridge(st, name);
          // The parent must still be the one held (see withNames); a fake bridge's ports are on it.
          const parent = fakeBridges(st).find((f) => f.name === name)?.parent;
          if (p.exists && parent !== n.parentBridge) throw new BrickError('CONFLICT', `${name} moved to ${parent} while brick removed it; nothing was changed; try again`);
          return { ...p, deletes: p.exists ? [name] : [], judged: p.exists ? [parent!] : [] };
        },
        name,
      );
      if (changes.length) nc.log.info({ bridge: name, changes }, 'VLAN bridge removed');
      return { removed: plan.exists, changes };
    });
  }
  return removeLinuxBridge(nc, name, planLinuxRemoveVlanBridge, 'VLAN bridge removed');
}

/** What a removal found, read inside its locks: the ports it must hold, and the removal itself. */
interface Found {
  ports: string[];
  remove: () => Promise<XmlRpcStruct>;
}

/**
 * Remove a bridge holding it and its ports. The ports are known only by reading, before the locks:
 * a port added in between is not locked, so the locks are let go and taken again with it (a port is
 * only ever released, or put back by a rollback, under its own lock). `find` reads and plans; it
 * runs once before the locks (for the names) and again inside them, where its removal is applied.
 */
async function removeHolding(nc: NetContext, name: string, find: () => Promise<Found>): Promise<XmlRpcStruct> {
  let ports = (await find()).ports;
  for (let attempt = 0; ; attempt++) {
    const locked = new Set(ports);
    const r = await nc.locks.with([name, ...ports].map(linkKey), async () => {
      const f = await find();
      ports = f.ports;
      if (!ports.every((p) => p === name || locked.has(p))) return undefined;
      return { v: await f.remove() };
    });
    if (r) return r.v;
    if (attempt >= 2) throw new BrickError('CONFLICT', `the ports of ${name} kept changing while brick removed it; nothing was changed; try again`);
  }
}

/** A Linux bridge's removal by a removal planner (brick's devices under it are its ports). */
function linuxRemoval(nc: NetContext, name: string, plan: (s: LinuxState, name: string) => { exists: boolean; steps: Step[] }, logLine: string): () => Promise<Found> {
  return async () => {
    const s = await readLinks(nc.host, { names: [name], portsOf: [name], addrsOf: [name] });
    return {
      ports: portsOf(s, name).map((p) => p.name),
      remove: async () => {
        const p = plan(s, name);
        const changes = await applySteps(nc.host, p.steps);
        if (changes.length) nc.log.info({ bridge: name, changes }, logLine);
        return { removed: p.exists, changes };
      },
    };
  };
}

function removeLinuxBridge(nc: NetContext, name: string, plan: (s: LinuxState, name: string) => { exists: boolean; steps: Step[] }, logLine: string): Promise<XmlRpcStruct> {
  return removeHolding(nc, name, linuxRemoval(nc, name, plan, logLine));
}

/**
 * network_remove_bridge: a plain bridge brick made, holding the bridge and its ports. With backend
 * openvswitch the bridge is looked for in Open vSwitch first, and, when it is not there, as a Linux
 * bridge (control0 may be one even then); both inside the same locks, so an ensure of the same name
 * running meanwhile is wholly before or wholly after (before: a remove that found nothing in OVS went
 * on as a Linux removal without holding the name, and refused the OVS bridge made meanwhile as "not
 * a bridge brick made").
 */
export async function removeBridge(nc: NetContext, name: string): Promise<XmlRpcStruct> {
  const linux = linuxRemoval(nc, name, planLinuxRemoveBridge, 'bridge removed');
  if (nc.host.backend !== 'openvswitch') return removeHolding(nc, name, linux);
  return removeHolding(nc, name, async () => {
    const s = await readOvs(nc.host);
    if (!s.bridges.has(name) && !s.ports.has(name)) return linux();
    return {
      ports: s.bridges.get(name)?.ports ?? [],
      remove: async () => {
        const { plan, changes } = await removeOvsGuarded(
          nc,
          s,
          () => readOvs(nc.host),
          (st) => {
            const p = planOvsRemoveBridge(st, name);
            return { ...p, deletes: p.exists ? [name] : [], judged: p.exists ? [name] : [] };
          },
          name,
        );
        if (changes.length) nc.log.info({ bridge: name, changes }, 'bridge removed');
        return { removed: plan.exists, changes };
      },
    };
  });
}

/** network_gc: the bridges removed (or, with dryRun, that would be). */
export async function networkGc(nc: NetContext, dryRun: boolean): Promise<string[]> {
  const ovs = nc.host.backend === 'openvswitch';
  const plan = async (): Promise<GcPlan> => (ovs ? planOvsGc(await readOvs(nc.host)) : planLinuxGc(await readLinux(nc.host)));
  const first = await plan();
  if (dryRun || !first.remove.length) return first.remove;
  return nc.locks.with(first.names.map(linkKey), async () => {
    // Inside the locks, only what is still removable AND was locked.
    const locked = new Set(first.remove);
    const lockedNames = new Set(first.names);
    let remove: string[];
    if (ovs) {
      // A fake bridge's parent must be held too (see removeVlanBridge); the del-brs are conditional on
      // the parents' port sets (removeOvsGuarded).
      const heldPlan = (st: OvsState) => {
        const g = planOvsGc(st);
        const held = (b: string) => locked.has(b) && lockedNames.has(g.parents?.[b] ?? '');
        const deletes = g.remove.filter(held);
        return { cmds: g.cmds.filter((c) => held(c.args[c.args.length - 1])), deletes, judged: deletes.map((b) => g.parents![b]) };
      };
      const read = () => readOvs(nc.host);
      remove = (await removeOvsGuarded(nc, await read(), read, heldPlan, 'unused VLAN bridges')).plan.deletes;
    } else {
      const again = await plan();
      remove = again.remove.filter((b) => locked.has(b));
      await applySteps(nc.host, again.steps.filter((st) => lockedNames.has(st.do.split(' ').pop()!)));
    }
    if (remove.length) nc.log.info({ removed: remove }, 'network gc removed unused VLAN bridges');
    return remove;
  });
}

/**
 * Run network_gc every network.gc_interval_s (when > 0). Returns a stop function. Pass the server's
 * KeyedLock so GC and calls serialize on the same bridges.
 */
export function startNetworkGc(config: Config, log: Logger, locks: KeyedLock = new KeyedLock(), run: Runner = realRun): () => void {
  const every = config.network.gc_interval_s;
  if (!(every > 0)) return () => {};
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    networkGc({ host: netHost(config, run), locks, keyedLock: locks, config, log }, false)
      .catch((e) => log.warn({ err: (e as Error).message }, 'network gc failed'))
      .finally(() => (running = false));
  }, every * 1000);
  timer.unref?.();
  return () => clearInterval(timer);
}
