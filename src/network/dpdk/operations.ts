// DPDK vhost-user ports on Open vSwitch, the acting half: detect DPDK, add/verify/delete/list
// ports through ovs-vsctl, the state read by the one reader (host/ovs.ts). Decisions are in plan.ts.
//
// Sockets live in OVS's run directory (network.ovs_rundir, default /var/run/openvswitch, plus
// other_config:vhost-sock-dir if the admin set one): `<dir>/<port>`. In server mode OVS creates the
// socket there; ovs-vswitchd reads vhost-sock-dir only when it starts, so the socket brick reports
// is the one ovs-vswitchd listens on (/proc), not the database's value now. In client mode brick
// sets options:vhost-server-path to `<dir>/<port>` and the guest's QEMU creates it (libvirt
// `<source mode='server'>`), as CloudStack's DpdkDriverImpl does.
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { readFile, readdir, readlink, stat, unlink } from 'node:fs/promises';
import type { Config } from '../../config/schema.js';
import type { KeyedLock } from '../../shared/keyed-lock.js';
import { BrickError, isBrickError } from '../../shared/errors.js';
import type { Runner } from '../../shared/run.js';
import { callHost, linkKey } from '../host/context.js';
import { mapOf, parseTables, readOvs, rows, setOf, type OvsPort, type OvsState } from '../host/ovs.js';
import {
  type AddPlan,
  type AddRequest,
  type DpdkPortInfo,
  type VhostMode,
  DEFAULT_OVS_RUNDIR,
  GUEST_MODE,
  addTransactionArgs,
  differences,
  interfaceOwner,
  namesInUse,
  isBrickDpdkPort,
  judgeExisting,
  listDpdkPorts,
  listenerFor,
  nextDefaultName,
  parseUnixListeners,
  planAdd,
  pollAdded,
  portInterface,
  portSocket,
  sockDirOf,
} from './plan.js';

export interface OvsContext {
  run: Runner;
  config: Config;
  /** Milliseconds left for the whole call; absent = network.command_timeout_s per command. */
  remainingMs?: () => number;
  /** The call's signal: commands of a stopped call are killed, none starts after. */
  signal?: AbortSignal;
}

export interface DpdkContext extends OvsContext {
  locks: KeyedLock;
}

export interface DpdkDetection {
  dpdk: boolean;
  /** Open_vSwitch dpdk_initialized: ovs-vswitchd initialised DPDK's EAL. */
  initialized: boolean;
  datapath_types: string[];
  iface_types: string[];
  /** Why dpdk is false, in words an admin can act on. */
  reason?: string;
}

export interface AddResult {
  [k: string]: string | number | boolean;
  port: string;
  bridge: string;
  socket: string;
  ovs_mode: VhostMode;
  guest_mode: VhostMode;
  /** Access VLAN; 0 = untagged. */
  vlan: number;
  /** false when an explicit name already existed with these settings. */
  changed: boolean;
}

/** How long to wait for OVS to create a server-mode socket after the port is added. */
const SOCKET_WAIT_MS = 3000;
const MAX_NAME_ATTEMPTS = 16;

// ---------------------------------------------------------------------------------------------
// ovs-vsctl at the edge

function rundirOf(config: Config): string {
  return config.network.ovs_rundir || DEFAULT_OVS_RUNDIR;
}

/** The lock table as this call sees it: a wait ends when the call is stopped. */
function lockTable(ctx: DpdkContext) {
  return ctx.locks.bound(ctx.signal);
}

/** A failure as a fault: a BrickError as it is, anything else COMMAND_FAILED with its words. */
function asBrickError(e: unknown): BrickError {
  return isBrickError(e) ? e : new BrickError('COMMAND_FAILED', String(e));
}

function vsctl(ctx: OvsContext, args: readonly string[], opts: { allowFailure?: boolean; undo?: boolean } = {}) {
  return callHost(ctx).vsctl(args, opts);
}

/** Open vSwitch as every feature reads it (one ovs-vsctl call, one snapshot), and this switch's socket directory. */
async function readState(ctx: OvsContext): Promise<{ s: OvsState; sockDir: string }> {
  const s = await readOvs(callHost(ctx));
  return { s, sockDir: sockDirOf(s, rundirOf(ctx.config)) };
}

/**
 * The paths of the listening Unix sockets ovs-vswitchd holds (its pid from <run dir>/ovs-vswitchd.pid;
 * /proc/<pid>/net/unix for the paths, /proc/<pid>/fd for which of them are its own). undefined when
 * that cannot be told (no pid file, another process under that pid, no /proc): then the socket
 * directory from the database is all there is.
 */
async function vswitchdListeners(config: Config): Promise<string[] | undefined> {
  try {
    const pid = Number((await readFile(`${rundirOf(config)}/ovs-vswitchd.pid`, 'utf8')).trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    if (!(await readFile(`/proc/${pid}/comm`, 'utf8')).startsWith('ovs-vswitchd')) return undefined;
    const [table, fds] = await Promise.all([readFile(`/proc/${pid}/net/unix`, 'utf8'), readdir(`/proc/${pid}/fd`)]);
    const own = new Set<string>();
    await Promise.all(
      fds.map(async (fd) => {
        const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
        if (m) own.add(m[1]);
      }),
    );
    return [...parseUnixListeners(table)].filter(([inode]) => own.has(inode)).map(([, path]) => path);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Detection

/**
 * Does this host's Open vSwitch do DPDK? Reads dpdk_initialized, iface_types and datapath_types.
 * Never throws for "no OVS" or "no DPDK": those give dpdk false with a reason. A read that did not
 * answer in time (the runner's deadline, ovs-vsctl's own --timeout, the call stopped) throws TIMEOUT
 * and any other failed read its own fault: neither says this host has no DPDK, so a caller that
 * asks again later may find it.
 */
export async function detectDpdk(ctx: OvsContext): Promise<DpdkDetection> {
  const no = (reason: string, part: Partial<DpdkDetection> = {}): DpdkDetection => ({
    dpdk: false,
    initialized: false,
    datapath_types: [],
    iface_types: [],
    ...part,
    reason,
  });
  let row: Record<string, unknown>;
  try {
    const r = await vsctl(ctx, ['--format=json', '--data=json', '--columns=dpdk_initialized,iface_types,datapath_types,other_config', 'list', 'Open_vSwitch']);
    const found = rows(parseTables(r.stdout, 1)[0]);
    if (!found[0]) return no('the Open vSwitch database has no Open_vSwitch record (ovs-vsctl init has not run)');
    row = found[0];
  } catch (e) {
    const err = asBrickError(e);
    // No OVS here (not installed, not running: ovsUnavailable's words).
    if (err.fault === 'UNSUPPORTED') return no(err.message);
    if (err.fault === 'COMMAND_FAILED' && /dpdk_initialized/.test(err.message)) {
      return no('this Open vSwitch is too old to report dpdk_initialized (OVS 2.10 or later is needed)');
    }
    throw new BrickError(err.fault, `could not tell whether Open vSwitch does DPDK: ${err.message}; nothing was changed`, err.detail);
  }
  const initialized = row.dpdk_initialized === true;
  const iface_types = setOf(row.iface_types).map(String).sort();
  const datapath_types = setOf(row.datapath_types).map(String).sort();
  const other = mapOf(row.other_config);
  const part = { initialized, iface_types, datapath_types };
  if (!initialized) {
    const init = (other['dpdk-init'] ?? '').toLowerCase();
    if (init === 'true' || init === 'try') {
      return no(
        `other_config:dpdk-init=${init} but DPDK is not initialised: ovs-vswitchd is not a DPDK build or DPDK's EAL failed to start (hugepages?); see the ovs-vswitchd log`,
        part,
      );
    }
    return no('Open vSwitch runs without DPDK (other_config:dpdk-init is not true; set it and restart ovs-vswitchd with a DPDK build)', part);
  }
  if (!iface_types.includes('dpdkvhostuser') || !iface_types.includes('dpdkvhostuserclient')) {
    return no('DPDK is initialised but ovs-vswitchd does not offer the dpdkvhostuser/dpdkvhostuserclient interface types', part);
  }
  if (!datapath_types.includes('netdev')) return no('DPDK is initialised but ovs-vswitchd has no netdev (userspace) datapath', part);
  return { dpdk: true, ...part };
}

/** Throw UNSUPPORTED (with the reason) unless DPDK is usable. */
export async function requireDpdk(ctx: OvsContext): Promise<void> {
  const d = await detectDpdk(ctx);
  if (!d.dpdk) throw new BrickError('UNSUPPORTED', `DPDK is not available on this host: ${d.reason ?? 'unknown reason'}`);
}

// ---------------------------------------------------------------------------------------------
// Add

/** Default names handed out by this process and not yet visible in OVS. */
const reservedNames = new Set<string>();

function checkBridge(s: OvsState, bridge: string): void {
  const b = s.bridges.get(bridge);
  if (!b) throw new BrickError('NOT_FOUND', `bridge: no Open vSwitch bridge named ${bridge} (create it with datapath_type=netdev first)`);
  if (b.datapathType !== 'netdev') {
    throw new BrickError(
      'CONFLICT',
      `bridge: ${bridge} has datapath_type=${b.datapathType || 'system'}; DPDK vhost-user ports need a userspace bridge (ovs-vsctl set Bridge ${bridge} datapath_type=netdev)`,
    );
  }
}

function isNameTaken(e: unknown): boolean {
  return isBrickError(e) && e.fault === 'COMMAND_FAILED' && /already exists|constraint violation/i.test(e.message);
}

/** `socket`: where the guest must connect (server mode: where ovs-vswitchd listens), default the plan's. */
function resultOf(p: AddPlan, changed: boolean, socket = p.socket): AddResult {
  return { port: p.port, bridge: p.bridge, socket, ovs_mode: p.mode, guest_mode: GUEST_MODE[p.mode], vlan: p.vlan ?? 0, changed };
}

/**
 * Run the one add transaction; map its failures. Returns 'taken' if the name exists already.
 * `repairing`: the port is being added again after brick removed a broken one (the faults say so).
 */
async function applyAdd(ctx: DpdkContext, plan: AddPlan, repairing = false): Promise<'added' | 'taken'> {
  try {
    await vsctl(ctx, addTransactionArgs(plan));
    return 'added';
  } catch (e) {
    if (isNameTaken(e)) return 'taken';
    if (isBrickError(e) && /no bridge named/.test(e.message)) {
      throw new BrickError('NOT_FOUND', `bridge: Open vSwitch bridge ${plan.bridge} disappeared while adding ${plan.port}`);
    }
    // A timeout may come after the commit (ovs-vsctl waits for ovs-vswitchd): undo it.
    throw await rolledBack(ctx, plan, e, repairing);
  }
}

async function removePort(ctx: OvsContext, port: string, noWait: boolean, undo = false): Promise<void> {
  await vsctl(ctx, [...(noWait ? ['--no-wait'] : []), '--if-exists', 'del-port', port], { undo });
}

/**
 * An add that failed after its transaction may have committed (a timeout, the call stopped, the
 * verification failed): remove the port again, even when the call was stopped, and return the
 * fault saying whether that worked. If it did not, the call's journal says what was left.
 */
async function rolledBack(ctx: DpdkContext, plan: AddPlan, e: unknown, repairing = false): Promise<BrickError> {
  const err = asBrickError(e);
  try {
    // Waiting for ovs-vswitchd (so the socket is gone too) only when it answers and the call still runs.
    const wait = !ctx.signal?.aborted && err.fault !== 'TIMEOUT';
    await removePort(ctx, plan.port, !wait, true).catch((w) => (wait ? removePort(ctx, plan.port, true, true) : Promise.reject(w)));
  } catch (u) {
    const what = `port ${plan.port} on ${plan.bridge} may be left in Open vSwitch: removing it again failed (${u instanceof Error ? u.message : String(u)})`;
    callHost(ctx).changed.push(what);
    return new BrickError(err.fault, `${err.message}; ${what}: check dpdk_list_ports and remove it with dpdk_del_port`, { ...err.detail, port: plan.port });
  }
  const outcome = repairing ? 'the new port was removed again' : 'the port was removed again (if it had been added): nothing was changed';
  return new BrickError(err.fault, `${err.message}; ${outcome}`, { ...err.detail, port: plan.port });
}

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isSocket();
  } catch {
    return false;
  }
}

/**
 * A server-mode port's socket: the one ovs-vswitchd listens on for it (it reads vhost-sock-dir only
 * when it starts, so the database's value may say another directory), else the planned path when
 * that cannot be told; '' when ovs-vswitchd listens on none for it. `present`: a socket file is there.
 */
async function serverSocket(ctx: OvsContext, plan: AddPlan): Promise<{ socket: string; present: boolean }> {
  const listeners = await vswitchdListeners(ctx.config);
  const socket = listeners ? (listenerFor(plan.port, listeners) ?? '') : plan.socket;
  return { socket, present: socket !== '' && (await isSocket(socket)) };
}

/** Does anything listen on this Unix socket? false only when connecting is refused (a stale socket file). */
function listened(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code !== 'ECONNREFUSED'));
  });
}

/**
 * Before a server port is added: a socket file where ovs-vswitchd will bind its socket that nobody
 * listens on is left by an ovs-vswitchd that was killed (it unlinks its sockets only when it exits
 * cleanly), and makes OVS fail the port ("could not open network device", for this name until
 * someone removes the file). Remove such files: at the planned path and at <port> in each
 * directory ovs-vswitchd listens in (its socket dir may not be the database's). A listened socket
 * or any other file is left alone (OVS then reports the error and the add is undone).
 */
async function removeStaleSockets(ctx: OvsContext, plan: AddPlan): Promise<void> {
  if (plan.mode !== 'server') return;
  const listeners = (await vswitchdListeners(ctx.config)) ?? [];
  const paths = new Set([plan.socket, ...listeners.map((l) => `${dirname(l)}/${plan.port}`)]);
  for (const path of paths) {
    if (listeners.includes(path) || !(await isSocket(path)) || (await listened(path))) continue;
    await unlink(path).catch(() => {});
  }
}

/**
 * After the add: OVS must report no error on the interface and (server mode) ovs-vswitchd must
 * listen on the socket and the socket file be there. problem '' when fine, else what went wrong in
 * OVS's words; socket: where the guest must connect.
 */
async function verifyPort(ctx: DpdkContext, plan: AddPlan): Promise<{ problem: string; socket: string }> {
  const waitMs = Math.min(SOCKET_WAIT_MS, ctx.remainingMs ? Math.max(0, ctx.remainingMs() - 1000) : SOCKET_WAIT_MS);
  const until = performance.now() + waitMs;
  for (;;) {
    const { s } = await readState(ctx);
    const p = s.ports.get(plan.port);
    const i = p && portInterface(p);
    const over = performance.now() >= until;
    // One ovs-vsctl read a poll; ovs-vswitchd's listeners (/proc) only when the socket decides something.
    let step = pollAdded(plan, i, over, waitMs);
    let sock: { socket: string; present: boolean } | undefined;
    if (step === 'socket') {
      sock = plan.mode === 'client' ? { socket: plan.socket, present: true } : await serverSocket(ctx, plan);
      step = pollAdded(plan, i, over, waitMs, sock);
    }
    if (step !== 'wait' && step !== 'socket') return { problem: step.problem, socket: (!step.problem && sock?.socket) || plan.socket };
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Verify the port just added; remove it again if it does not work. Returns its socket. */
async function verifyOrRollBack(ctx: DpdkContext, plan: AddPlan, repairing = false): Promise<string> {
  let v: { problem: string; socket: string };
  try {
    v = await verifyPort(ctx, plan);
  } catch (e) {
    throw await rolledBack(ctx, plan, e, repairing); // e.g. the call stopped while verifying: the port must not stay
  }
  if (!v.problem) return v.socket;
  throw await rolledBack(ctx, plan, new BrickError('VERIFY_FAILED', `dpdk_add_port ${plan.port} on ${plan.bridge}: ${v.problem}`, { port: plan.port }), repairing);
}

/**
 * An existing explicit name: other settings → CONFLICT naming the differences; the same settings
 * and working → done (changed false); the same settings but broken (an OVS error, or a server
 * socket that is gone) → added again, unless a guest is connected to it.
 */
async function settleExisting(ctx: DpdkContext, existing: OvsPort, plan: AddPlan): Promise<AddResult> {
  const diff = differences(existing, plan);
  if (diff.length) {
    throw new BrickError('CONFLICT', `opts.name: port ${plan.port} already exists and ${diff.join('; ')}; choose another name or remove it first`);
  }
  // The port's own socket: a client port's vhost-server-path, where ovs-vswitchd listens for a server port.
  const own: AddPlan = { ...plan, socket: plan.mode === 'client' ? portSocket(existing, '') : plan.socket };
  const { socket, present } = plan.mode === 'client' ? { socket: own.socket, present: true } : await serverSocket(ctx, own);
  const verdict = judgeExisting(existing, socket || own.socket, present);
  if (verdict.ok) return resultOf(own, false, socket);
  if (!verdict.repair) throw new BrickError('VERIFY_FAILED', `port ${plan.port} exists but ${verdict.why}`, { port: plan.port });
  return repairPort(ctx, own, verdict.why);
}

/**
 * A broken brick port with the wanted settings: removed (waiting for ovs-vswitchd, so it lets go of
 * the socket) and added again, in two transactions (in one, ovs-vswitchd would keep the broken
 * device), verified as a new port is. A failure after the removal leaves no port, and says so.
 */
async function repairPort(ctx: DpdkContext, plan: AddPlan, why: string): Promise<AddResult> {
  const broken = `port ${plan.port} existed but ${why}`;
  try {
    await removePort(ctx, plan.port, false);
  } catch (e) {
    const err = asBrickError(e);
    const whole = err.fault === 'TIMEOUT' ? '; Open vSwitch applies a transaction whole or not at all, so it was either removed or left as it was: asking again is safe' : '';
    throw new BrickError(err.fault, `${broken}; removing it to add it again failed: ${err.message}${whole}`, { ...err.detail, port: plan.port });
  }
  const removed = `port ${plan.port} on ${plan.bridge} was removed (${why}) to be added again`;
  callHost(ctx).changed.push(removed);
  try {
    await removeStaleSockets(ctx, plan);
    if ((await applyAdd(ctx, plan, true)) === 'taken') {
      throw new BrickError('CONFLICT', `opts.name: port ${plan.port} was created by someone else while brick added it again; try again`);
    }
    return resultOf(plan, true, await verifyOrRollBack(ctx, plan, true));
  } catch (e) {
    const err = asBrickError(e);
    throw new BrickError(err.fault, `${broken}: brick removed it to add it again, and adding failed, so there is no port ${plan.port} now: ${err.message}`, { ...err.detail, port: plan.port });
  }
}

/**
 * dpdk_add_port: one vhost-user port, in one ovs-vsctl transaction, marked as brick's, verified.
 * Default names are csdpdk-N, allocated under an in-process lock and guarded by OVS itself (the
 * transaction fails if the name exists; we then take the next N).
 */
export async function addDpdkPort(ctx: DpdkContext, req: AddRequest): Promise<AddResult> {
  await requireDpdk(ctx);
  if (req.name !== undefined) {
    const name = req.name;
    // The one lock scheme: the port and its bridge, as every bridge change holds the bridge.
    return lockTable(ctx).with([linkKey(req.bridge), linkKey(name)], async () => {
      const { s, sockDir } = await readState(ctx);
      const plan = planAdd(req, name, sockDir);
      const existing = s.ports.get(name);
      if (existing) return settleExisting(ctx, existing, plan);
      const holder = interfaceOwner(s, name);
      if (holder) throw new BrickError('CONFLICT', `opts.name: ${name} is an interface of port ${holder.name} on bridge ${holder.bridge}; choose another name`);
      checkBridge(s, req.bridge);
      await removeStaleSockets(ctx, plan);
      if ((await applyAdd(ctx, plan)) === 'taken') {
        // Someone else (another process) created it between our read and our transaction.
        const again = (await readState(ctx)).s.ports.get(name);
        if (!again) throw new BrickError('CONFLICT', `opts.name: port ${name} was being created and removed concurrently; try again`);
        return settleExisting(ctx, again, plan);
      }
      return resultOf(plan, true, await verifyOrRollBack(ctx, plan));
    });
  }
  for (let attempt = 1; ; attempt++) {
    // Allocate under the lock: read what OVS has, skip what this process has handed out already.
    const plan = await lockTable(ctx).with('dpdk:names', async () => {
      const { s, sockDir } = await readState(ctx);
      checkBridge(s, req.bridge);
      const p = planAdd(req, nextDefaultName(namesInUse(s), reservedNames), sockDir);
      reservedNames.add(p.port);
      return p;
    });
    const socket = await lockTable(ctx).with([linkKey(req.bridge), linkKey(plan.port)], async () => {
      let outcome: 'added' | 'taken';
      try {
        await removeStaleSockets(ctx, plan);
        outcome = await applyAdd(ctx, plan);
      } finally {
        reservedNames.delete(plan.port); // added: OVS lists it now; failed: free again
      }
      return outcome === 'added' ? verifyOrRollBack(ctx, plan) : undefined;
    });
    if (socket !== undefined) return resultOf(plan, true, socket);
    if (attempt >= MAX_NAME_ATTEMPTS) {
      throw new BrickError('CONFLICT', `could not find a free csdpdk-N port name after ${attempt} attempts (another agent keeps taking them); try again`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Delete and list

/**
 * dpdk_del_port: remove a port brick created. Absent → removed false. A port that exists but is not
 * brick's DPDK port (no external_ids:brick-owner=dpdk, or not vhost-user) → CONFLICT, untouched:
 * brick deletes only what it made.
 */
export async function delDpdkPort(ctx: DpdkContext, name: string): Promise<{ port: string; removed: boolean }> {
  await requireDpdk(ctx);
  return lockTable(ctx).with(linkKey(name), async () => {
    const p = (await readState(ctx)).s.ports.get(name);
    if (!p) return { port: name, removed: false };
    if (!isBrickDpdkPort(p)) {
      throw new BrickError(
        'CONFLICT',
        `port: ${name} is not a brick DPDK port (type ${portInterface(p)?.type || 'none'}, external_ids:brick-owner=${JSON.stringify(p.externalIds['brick-owner'] ?? '')}); brick leaves it alone — remove it with ovs-vsctl del-port if you mean to`,
      );
    }
    try {
      await removePort(ctx, name, false);
    } catch (e) {
      if (!(isBrickError(e) && e.fault === 'TIMEOUT') || e.detail?.started === false) throw e;
      throw new BrickError(
        'TIMEOUT',
        `${e.message}; Open vSwitch applies a transaction whole or not at all, so port ${name} was either removed or left as it was: asking again is safe and says which`,
        e.detail,
      );
    }
    return { port: name, removed: true };
  });
}

/** dpdk_list_ports: every vhost-user port OVS has, brick's and others'. */
export async function listPorts(ctx: OvsContext): Promise<DpdkPortInfo[]> {
  await requireDpdk(ctx);
  const { s, sockDir } = await readState(ctx);
  return listDpdkPorts(s, sockDir, await vswitchdListeners(ctx.config));
}
