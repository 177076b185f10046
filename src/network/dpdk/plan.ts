// DPDK vhost-user ports, the deciding half: the request with its defaults, names, the one ovs-vsctl
// transaction, an existing port compared with a wanted one, the list, all over the Open vSwitch
// state the one reader (host/ovs.ts) gives. No I/O here; operations.ts runs it.
//
// Vocabulary: `ovs_mode` is the vhost-user role OVS plays (server: OVS creates the socket, type
// dpdkvhostuser; client: the guest's QEMU creates it, type dpdkvhostuserclient). `guest_mode` is
// the inverse, i.e. what libvirt's `<source mode=...>` must say.
import { BrickError } from '../../shared/errors.js';
import { VHOST_USER_TYPES, type OvsInterface, type OvsPort, type OvsState } from '../host/ovs.js';
import { oneOf } from '../../rpc/formats.js';
import { DEFAULT_OVS_RUNDIR } from '../host/netns.js';

export { DEFAULT_OVS_RUNDIR };

export type VhostMode = 'server' | 'client';

export const DPDK_OWNER_KEY = 'brick-owner';
export const DPDK_OWNER_VALUE = 'dpdk';
export const DPDK_MODE_KEY = 'brick-dpdk-mode';
export const DEFAULT_PORT_PREFIX = 'csdpdk-';
/** sockaddr_un.sun_path is 108 bytes with the terminating NUL. */
const MAX_SOCKET_PATH = 107;

export const OVS_TYPE: Record<VhostMode, string> = VHOST_USER_TYPES;
export const GUEST_MODE: Record<VhostMode, VhostMode> = { server: 'client', client: 'server' };

export function modeOfType(type: string): VhostMode | undefined {
  if (type === OVS_TYPE.server) return 'server';
  if (type === OVS_TYPE.client) return 'client';
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Validation

/** A vhost-user mode as a call sends it (CloudStack's DPDK-VHOSTUSER detail is case-insensitive). */
export const VhostModeName = oneOf(['server', 'client'] as const, { fold: true });

export interface AddRequest {
  bridge: string;
  mode: VhostMode;
  /** Access VLAN, 1..4094; undefined = untagged. */
  vlan?: number;
  /** Explicit port name; undefined = choose the next free csdpdk-N. */
  name?: string;
}

/** dpdk_add_port's checked arguments with their defaults (server mode: CloudStack's DpdkDriverImpl default). */
export function addRequest(bridge: string, o: { mode?: VhostMode; vlan?: number; name?: string } = {}): AddRequest {
  if (o.name !== undefined && o.name === bridge) throw new BrickError('INVALID_PARAMS', `opts.name: ${o.name} is the bridge's own name; choose another port name`);
  return { bridge, mode: o.mode ?? 'server', vlan: o.vlan, name: o.name };
}

// ---------------------------------------------------------------------------------------------
// Open vSwitch state: read by the one reader, host/ovs.ts (readOvs), as every feature does

/** A port's interface: a vhost-user port has exactly one, of the same name. */
export function portInterface(p: OvsPort): OvsInterface | undefined {
  return p.interfaces.find((i) => i.name === p.name) ?? p.interfaces[0];
}

/**
 * The socket directory: OVS's run dir, plus other_config:vhost-sock-dir (relative to it) if set,
 * by OVS's own rule (lib/dpdk.c): a value longer than NAME_MAX (255) or with ".." anywhere in it is
 * ignored and the run dir used.
 */
export function socketDir(rundir: string, vhostSockDir: string | undefined): string {
  const base = (rundir || DEFAULT_OVS_RUNDIR).replace(/\/+$/, '') || '/';
  const raw = vhostSockDir ?? '';
  const sub = raw.replace(/^\/+|\/+$/g, '');
  if (!sub || raw.length > 255 || raw.includes('..')) return base;
  return `${base}/${sub}`;
}

/**
 * The listening Unix sockets in a /proc/<pid>/net/unix table, inode → path (abstract and unnamed
 * sockets left out). Columns: Num RefCount Protocol Flags Type St Inode Path; a listening socket
 * has __SO_ACCEPTCON (0x10000) in Flags.
 */
export function parseUnixListeners(table: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const flags = parseInt(f[3], 16);
    const path = f.slice(7).join(' ');
    if (!Number.isFinite(flags) || !(flags & 0x10000) || !path.startsWith('/')) continue;
    out.set(f[6], path);
  }
  return out;
}

/**
 * The socket ovs-vswitchd listens on for a server-mode port, from the paths of the listening
 * sockets it holds: `<its vhost-sock-dir>/<port>`. OVS reads other_config:vhost-sock-dir once, when
 * ovs-vswitchd starts, so this (not the database's value now) is where a guest must connect.
 * undefined = it listens on no socket of that name.
 */
export function listenerFor(port: string, listeners: readonly string[]): string | undefined {
  return listeners.find((l) => l.endsWith(`/${port}`));
}

/** Where this switch puts server-mode sockets. */
export function sockDirOf(s: OvsState, rundir: string): string {
  return socketDir(rundir, s.otherConfig['vhost-sock-dir']);
}

// ---------------------------------------------------------------------------------------------
// Names

const DEFAULT_NAME = /^csdpdk-(\d{1,9})$/;

/**
 * The next default name: csdpdk-(1 + the highest N in use or reserved), as CloudStack's
 * DpdkDriverImpl numbers them, so brick and a CloudStack agent on one host count the same way.
 */
export function nextDefaultName(inUse: Iterable<string>, reserved: Iterable<string> = []): string {
  let max = 0;
  for (const set of [inUse, reserved]) {
    for (const n of set) {
      const m = DEFAULT_NAME.exec(n);
      if (m) max = Math.max(max, Number(m[1]));
    }
  }
  return `${DEFAULT_PORT_PREFIX}${max + 1}`;
}

/** Every name OVS would refuse for a new port: port names and their interfaces' (a bond's differ). */
export function namesInUse(s: OvsState): string[] {
  return [...s.ports.values()].flatMap((p) => [p.name, ...p.interfaces.map((i) => i.name)]);
}

/** The port (other than one of that name) whose interface has this name, if any. */
export function interfaceOwner(s: OvsState, name: string): OvsPort | undefined {
  return [...s.ports.values()].find((p) => p.name !== name && p.interfaces.some((i) => i.name === name));
}

// ---------------------------------------------------------------------------------------------
// Plans

export interface AddPlan {
  bridge: string;
  port: string;
  mode: VhostMode;
  vlan?: number;
  /** The vhost-user socket: OVS creates it (server) or connects to it (client). */
  socket: string;
}

export function planAdd(req: AddRequest, port: string, sockDir: string): AddPlan {
  const socket = `${sockDir.replace(/\/+$/, '')}/${port}`;
  if (socket.length > MAX_SOCKET_PATH) {
    throw new BrickError(
      'UNSUPPORTED',
      `the vhost-user socket path ${socket} is ${socket.length} bytes; a Unix socket path may have at most ${MAX_SOCKET_PATH}: use a shorter network.ovs_rundir or port name`,
    );
  }
  return { bridge: req.bridge, port, mode: req.mode, vlan: req.vlan, socket };
}

/**
 * The whole add as ONE ovs-vsctl transaction. No --may-exist: if the name is taken (by anyone, on
 * any bridge) the transaction fails and changes nothing, which is how concurrent adds stay apart.
 */
export function addTransactionArgs(p: AddPlan): string[] {
  const portCols = [`external_ids:${DPDK_OWNER_KEY}=${DPDK_OWNER_VALUE}`, `external_ids:${DPDK_MODE_KEY}=${p.mode}`];
  if (p.vlan !== undefined) portCols.unshift(`tag=${p.vlan}`, 'vlan_mode=access');
  const ifCols = [`type=${OVS_TYPE[p.mode]}`];
  if (p.mode === 'client') ifCols.push(`options:vhost-server-path=${p.socket}`);
  return ['--', 'add-port', p.bridge, p.port, ...portCols, '--', 'set', 'Interface', p.port, ...ifCols];
}

export function isBrickDpdkPort(p: OvsPort): boolean {
  return p.externalIds[DPDK_OWNER_KEY] === DPDK_OWNER_VALUE && modeOfType(portInterface(p)?.type ?? '') !== undefined;
}

/**
 * Where a port's socket is: client mode, its vhost-server-path; server mode, the socket ovs-vswitchd
 * listens on for it (`listeners`, when known), else `<OVS's socket dir>/<port>`.
 */
export function portSocket(p: OvsPort, sockDir: string, listeners?: readonly string[]): string {
  const i = portInterface(p);
  if (i?.type === OVS_TYPE.client) return i.options['vhost-server-path'] ?? '';
  return (listeners && listenerFor(p.name, listeners)) || `${sockDir.replace(/\/+$/, '')}/${p.name}`;
}

/**
 * An explicit name that already exists: the same settings → nothing to do (returns []); otherwise
 * the differences, each in words, for a CONFLICT.
 */
export function differences(existing: OvsPort, want: AddPlan): string[] {
  const d: string[] = [];
  const type = portInterface(existing)?.type ?? '';
  const options = portInterface(existing)?.options ?? {};
  if (existing.externalIds[DPDK_OWNER_KEY] !== DPDK_OWNER_VALUE) {
    d.push(`it is not brick's (external_ids:${DPDK_OWNER_KEY} is ${JSON.stringify(existing.externalIds[DPDK_OWNER_KEY] ?? '')}, not "${DPDK_OWNER_VALUE}")`);
  }
  if (existing.bridge !== want.bridge) d.push(`it is on bridge ${existing.bridge || '(none)'}, not ${want.bridge}`);
  const mode = modeOfType(type);
  if (mode !== want.mode) d.push(`its type is ${type || '(none)'}, not ${OVS_TYPE[want.mode]} (mode ${want.mode})`);
  if ((existing.tag ?? undefined) !== want.vlan) d.push(`its VLAN tag is ${existing.tag ?? 'none'}, not ${want.vlan ?? 'none'}`);
  // A client port's vhost-server-path is not the caller's to choose: the reply gives the port's own.
  if (want.mode === 'client' && mode === 'client' && !options['vhost-server-path']) d.push('it has no vhost-server-path');
  return d;
}

/**
 * An existing brick port with the wanted settings: usable as it is, broken and to be added again
 * (`repair`), or broken but in use by a guest and left alone. `socket` is where its socket is
 * (server mode: where ovs-vswitchd listens, else the expected path; client mode: vhost-server-path);
 * `socketPresent` whether a socket file is there (server mode only: in client mode the guest makes it).
 */
export type ExistingVerdict = { ok: true } | { ok: false; repair: boolean; why: string };

export function judgeExisting(p: OvsPort, socket: string, socketPresent: boolean): ExistingVerdict {
  const i = portInterface(p);
  if (i?.error) return { ok: false, repair: true, why: `OVS reports on interface ${p.name}: ${i.error}` };
  if (modeOfType(i?.type ?? '') !== 'server' || socketPresent) return { ok: true };
  if (i?.status.status === 'connected') {
    return {
      ok: false,
      repair: false,
      why:
        `its vhost-user socket ${socket} is gone while a guest is connected to the port, so no other guest can connect; ` +
        'brick leaves it as it is so the running guest keeps its link: remove it with dpdk_del_port and add it again once that guest has stopped',
    };
  }
  return { ok: false, repair: true, why: `its vhost-user socket ${socket} is gone` };
}

/**
 * One poll of the check after an add. `i`: OVS's interface now (undefined: the port is gone);
 * `over`: the wait is over; `sock`: where the socket is and whether it is there, once looked at
 * (client mode: the guest makes it, so always "there"). Looking costs a read of ovs-vswitchd's
 * listeners in /proc, so it is asked for ('socket') only when it decides something: the port is up
 * (then it decides success) or the wait is over (then it decides the words). Otherwise: 'wait' and
 * poll again, or done, problem '' meaning it works.
 */
export type AddedPoll = 'wait' | 'socket' | { problem: string };

export function pollAdded(
  plan: { port: string; socket: string },
  i: OvsInterface | undefined,
  over: boolean,
  waitMs: number,
  sock?: { socket: string; present: boolean },
): AddedPoll {
  if (!i) return { problem: `port ${plan.port} is gone from OVS` };
  if (i.error) return { problem: `OVS reports on interface ${plan.port}: ${i.error}` };
  const up = i.ofport !== undefined && i.ofport >= 0;
  if (!up && !over) return 'wait';
  if (!sock) return 'socket';
  if (sock.present && up) return { problem: '' };
  if (!over) return 'wait';
  if (!sock.present) return { problem: `OVS did not create the vhost-user socket ${sock.socket || plan.socket} within ${waitMs} ms (status: ${JSON.stringify(i.status)})` };
  return { problem: `OVS gave interface ${plan.port} no OpenFlow port (ofport ${i.ofport ?? 'unset'})` };
}

export interface DpdkPortInfo {
  [k: string]: string | number | boolean | { [k: string]: string };
  name: string;
  bridge: string;
  /** OVS's vhost-user role. */
  mode: VhostMode;
  /** libvirt's `<source mode>` for the guest. */
  guest_mode: VhostMode;
  /** Access VLAN; 0 = untagged. */
  tag: number;
  socket: string;
  /** OVS's Interface status column, e.g. {mode: "server", status: "disconnected"}. */
  status: { [k: string]: string };
  /** OVS's Interface error column; "" = none. */
  error: string;
  brick_owned: boolean;
}

/** Every vhost-user port OVS knows (brick's and others'), sorted by name (csdpdk-2 before csdpdk-10). */
export function listDpdkPorts(s: OvsState, sockDir: string, listeners?: readonly string[]): DpdkPortInfo[] {
  const out: DpdkPortInfo[] = [];
  for (const p of s.ports.values()) {
    const i = portInterface(p);
    const mode = modeOfType(i?.type ?? '');
    if (!i || !mode) continue;
    out.push({
      name: p.name,
      bridge: p.bridge,
      mode,
      guest_mode: GUEST_MODE[mode],
      tag: p.tag ?? 0,
      socket: portSocket(p, sockDir, listeners),
      status: { ...i.status },
      error: i.error,
      brick_owned: p.externalIds[DPDK_OWNER_KEY] === DPDK_OWNER_VALUE,
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}
