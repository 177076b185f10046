// DPDK vhost-user ports, the deciding half: validate what the caller asked, read Open vSwitch's
// state out of `ovs-vsctl --format=json list` output, choose names, build the one ovs-vsctl
// transaction, compare an existing port with a wanted one. No I/O here; dpdk.ts runs it.
//
// Vocabulary: `ovs_mode` is the vhost-user role OVS plays (server: OVS creates the socket, type
// dpdkvhostuser; client: the guest's QEMU creates it, type dpdkvhostuserclient). `guest_mode` is
// the inverse, i.e. what libvirt's `<source mode=...>` must say.
import { BrickError } from '../../shared/errors.js';
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

export const OVS_TYPE: Record<VhostMode, string> = { server: 'dpdkvhostuser', client: 'dpdkvhostuserclient' };
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
// Reading OVS state (`ovs-vsctl --format=json --data=json list ...`)

export type OvsMap = Record<string, string>;

export interface OvsPortState {
  name: string;
  /** The bridge holding the port; '' if OVS lists it under none (a dangling row). */
  bridge: string;
  tag: number | null;
  externalIds: OvsMap;
  /** The interface of the same name (vhost-user ports have exactly one). */
  type: string;
  options: OvsMap;
  status: OvsMap;
  error: string;
  ofport: number | null;
}

export interface OvsBridgeState {
  name: string;
  datapathType: string;
}

/**
 * What the DPDK planners read (--data=json, with the Open_vSwitch row for the socket directory).
 * The bridge/overlay planners read host/ovs.ts; this is the only other OVS view.
 */
export interface DpdkOvsState {
  bridges: Map<string, OvsBridgeState>;
  ports: Map<string, OvsPortState>;
  /** Directory of the dpdkvhostuser (server mode) sockets. */
  sockDir: string;
}

export interface OvsTable {
  headings: string[];
  data: unknown[][];
}

/** Parse the concatenated JSON tables ovs-vsctl prints for several `list` commands, one per line. */
export function parseOvsTables(stdout: string): OvsTable[] {
  const out: OvsTable[] = [];
  for (const line of stdout.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    let v: unknown;
    try {
      v = JSON.parse(t);
    } catch {
      throw new BrickError('COMMAND_FAILED', `ovs-vsctl printed something that is not JSON: ${t.slice(0, 200)}`);
    }
    const o = v as Partial<OvsTable>;
    if (!o || !Array.isArray(o.headings) || !Array.isArray(o.data)) {
      throw new BrickError('COMMAND_FAILED', `ovs-vsctl printed JSON that is not a table: ${t.slice(0, 200)}`);
    }
    out.push(o as OvsTable);
  }
  return out;
}

/** Rows of a table as objects keyed by heading. */
export function tableRows(t: OvsTable): Record<string, unknown>[] {
  return t.data.map((row) => Object.fromEntries(t.headings.map((h, i) => [h, row[i]])));
}

/** OVSDB JSON: ["map", [[k, v], ...]] → object. */
export function ovsMap(v: unknown): OvsMap {
  const out: OvsMap = {};
  if (Array.isArray(v) && v[0] === 'map' && Array.isArray(v[1])) {
    for (const pair of v[1] as unknown[]) {
      if (Array.isArray(pair) && pair.length === 2) out[String(pair[0])] = String(pair[1]);
    }
  }
  return out;
}

/** OVSDB JSON: a scalar, or ["set", [...]] (an empty set is "no value"), or ["uuid", u]. */
export function ovsSet(v: unknown): unknown[] {
  if (Array.isArray(v) && v[0] === 'set' && Array.isArray(v[1])) return (v[1] as unknown[]).map(ovsAtom);
  return [ovsAtom(v)];
}

function ovsAtom(v: unknown): unknown {
  if (Array.isArray(v) && (v[0] === 'uuid' || v[0] === 'named-uuid')) return String(v[1]);
  return v;
}

function optScalar(v: unknown): unknown {
  const s = ovsSet(v);
  return s.length === 0 ? undefined : s[0];
}

/** The socket directory: OVS's run dir, plus other_config:vhost-sock-dir (relative to it) if set. */
export function socketDir(rundir: string, vhostSockDir: string | undefined): string {
  const base = (rundir || DEFAULT_OVS_RUNDIR).replace(/\/+$/, '') || '/';
  const sub = (vhostSockDir ?? '').replace(/^\/+|\/+$/g, '');
  // OVS refuses a vhost-sock-dir that climbs out of its run dir; so do we (and fall back to the run dir).
  if (!sub || sub.split('/').includes('..')) return base;
  return `${base}/${sub}`;
}

/**
 * Build the state from the tables printed by LIST_STATE_ARGS (Open_vSwitch, Bridge, Port, Interface,
 * in that order).
 */
export function parseOvsState(stdout: string, rundir: string): DpdkOvsState {
  const tables = parseOvsTables(stdout);
  if (tables.length !== 4) throw new BrickError('COMMAND_FAILED', `ovs-vsctl printed ${tables.length} tables, expected 4`);
  const [ovsT, brT, portT, ifT] = tables.map(tableRows);
  const other = ovsMap(ovsT[0]?.other_config);
  const bridges = new Map<string, OvsBridgeState>();
  const bridgeOfPortUuid = new Map<string, string>();
  for (const b of brT) {
    const name = String(b.name);
    bridges.set(name, { name, datapathType: String(optScalar(b.datapath_type) ?? '') });
    for (const u of ovsSet(b.ports)) bridgeOfPortUuid.set(String(u), name);
  }
  const ifaces = new Map<string, Record<string, unknown>>();
  for (const i of ifT) ifaces.set(String(i.name), i);
  const ports = new Map<string, OvsPortState>();
  for (const p of portT) {
    const name = String(p.name);
    const i = ifaces.get(name) ?? {};
    const tag = optScalar(p.tag);
    const ofport = optScalar(i.ofport);
    const err = optScalar(i.error);
    ports.set(name, {
      name,
      bridge: bridgeOfPortUuid.get(String(optScalar(p._uuid))) ?? '',
      tag: typeof tag === 'number' ? tag : null,
      externalIds: ovsMap(p.external_ids),
      type: String(i.type ?? ''),
      options: ovsMap(i.options),
      status: ovsMap(i.status),
      error: typeof err === 'string' ? err : '',
      ofport: typeof ofport === 'number' ? ofport : null,
    });
  }
  return { bridges, ports, sockDir: socketDir(rundir, other['vhost-sock-dir']) };
}

/** Arguments (after the global options) that print what parseOvsState reads, in one snapshot. */
export const LIST_STATE_ARGS: readonly string[] = [
  '--format=json', '--data=json',
  '--', '--columns=other_config', 'list', 'Open_vSwitch',
  '--', '--columns=name,datapath_type,ports', 'list', 'Bridge',
  '--', '--columns=_uuid,name,tag,external_ids', 'list', 'Port',
  '--', '--columns=name,type,options,status,error,ofport', 'list', 'Interface',
];

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

export function isBrickDpdkPort(p: OvsPortState): boolean {
  return p.externalIds[DPDK_OWNER_KEY] === DPDK_OWNER_VALUE && modeOfType(p.type) !== undefined;
}

/** Where a port's socket is: OVS's socket dir for server mode, vhost-server-path for client mode. */
export function portSocket(p: OvsPortState, sockDir: string): string {
  if (p.type === OVS_TYPE.client) return p.options['vhost-server-path'] ?? '';
  return `${sockDir.replace(/\/+$/, '')}/${p.name}`;
}

/**
 * An explicit name that already exists: the same settings → nothing to do (returns []); otherwise
 * the differences, each in words, for a CONFLICT.
 */
export function differences(existing: OvsPortState, want: AddPlan): string[] {
  const d: string[] = [];
  if (existing.externalIds[DPDK_OWNER_KEY] !== DPDK_OWNER_VALUE) {
    d.push(`it is not brick's (external_ids:${DPDK_OWNER_KEY} is ${JSON.stringify(existing.externalIds[DPDK_OWNER_KEY] ?? '')}, not "${DPDK_OWNER_VALUE}")`);
  }
  if (existing.bridge !== want.bridge) d.push(`it is on bridge ${existing.bridge || '(none)'}, not ${want.bridge}`);
  const mode = modeOfType(existing.type);
  if (mode !== want.mode) d.push(`its type is ${existing.type || '(none)'}, not ${OVS_TYPE[want.mode]} (mode ${want.mode})`);
  if ((existing.tag ?? undefined) !== want.vlan) d.push(`its VLAN tag is ${existing.tag ?? 'none'}, not ${want.vlan ?? 'none'}`);
  if (want.mode === 'client' && mode === 'client' && existing.options['vhost-server-path'] !== want.socket) {
    d.push(`its vhost-server-path is ${existing.options['vhost-server-path'] ?? '(none)'}, not ${want.socket}`);
  }
  return d;
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
export function listDpdkPorts(s: DpdkOvsState): DpdkPortInfo[] {
  const out: DpdkPortInfo[] = [];
  for (const p of s.ports.values()) {
    const mode = modeOfType(p.type);
    if (!mode) continue;
    out.push({
      name: p.name,
      bridge: p.bridge,
      mode,
      guest_mode: GUEST_MODE[mode],
      tag: p.tag ?? 0,
      socket: portSocket(p, s.sockDir),
      status: { ...p.status },
      error: p.error,
      brick_owned: p.externalIds[DPDK_OWNER_KEY] === DPDK_OWNER_VALUE,
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}
