// The RUNNING state of Open vSwitch, read in one `ovs-vsctl --format=json` call (Bridge, Port,
// Interface and Open_vSwitch tables, every column a planner uses: bridges, VLAN bridges, overlay
// bridges, tunnels and DPDK vhost-user ports all read it through here), and the pure helpers the
// planners use. Fake VLAN bridges (`add-br NAME PARENT
// VLAN`) are Port rows with fake_bridge=true and a tag on the parent bridge. brick marks what it
// makes with external_ids:brick-owner=<role> on the Port row (a fake bridge has no Bridge row).
import { BrickError } from '../../shared/errors.js';
import { oneOf } from '../../rpc/formats.js';
import type { NetHost } from './netns.js';
import type { Owner } from './link-state.js';
import { isGuestPort } from './names.js';

export const OVS_OWNER_KEY = 'brick-owner';

/** The interface types of a DPDK vhost-user port: OVS the server (it makes the socket), OVS the client. */
export const VHOST_USER_TYPES = { server: 'dpdkvhostuser', client: 'dpdkvhostuserclient' } as const;

/** A new OVS bridge's datapath: the kernel's (system) or userspace (netdev, for DPDK). */
export const Datapath = oneOf(['system', 'netdev'] as const);

/** A bridge's datapath: OVS leaves datapath_type "" for the default, the kernel's (system). */
export function datapathOf(br: Pick<OvsBridge, 'datapathType'>): string {
  return br.datapathType || 'system';
}

export interface OvsInterface {
  name: string;
  type: string;
  ofport?: number;
  mtuRequest?: number;
  /** options column (tunnels: remote_ip, key, ...). */
  options: Record<string, string>;
  /** OVS's error for this interface ('' when none). */
  error: string;
  /** link_state ('' when OVS reports none). */
  linkState: string;
  /** status column (vhost-user: mode, status connected|disconnected). */
  status: Record<string, string>;
}

export interface OvsPort {
  name: string;
  /** The bridge whose ports column holds it. */
  bridge: string;
  tag?: number;
  fakeBridge: boolean;
  externalIds: Record<string, string>;
  interfaces: OvsInterface[];
}

export interface OvsBridge {
  name: string;
  ports: string[];
  /** The Bridge row's ports column as read: the Port rows' uuids, sorted (what ovsPortsGuard holds a transaction to). */
  portUuids: string[];
  externalIds: Record<string, string>;
  datapathType: string;
  stp: boolean;
}

export interface OvsState {
  bridges: Map<string, OvsBridge>;
  ports: Map<string, OvsPort>;
  /** The Open_vSwitch row's other_config (vhost-sock-dir, dpdk-init, ...). */
  otherConfig: Record<string, string>;
}

export interface FakeBridge {
  name: string;
  parent: string;
  vlan: number;
  owner?: Owner;
}

type Atom = unknown;
function uuidOf(v: Atom): string {
  return Array.isArray(v) && v[0] === 'uuid' ? String(v[1]) : '';
}
/** OVSDB JSON: ["set", [...]] (empty = no value) or a single atom. */
export function setOf(v: Atom): Atom[] {
  if (Array.isArray(v) && v[0] === 'set') return v[1] as Atom[];
  return v === undefined || v === null ? [] : [v];
}
/** OVSDB JSON: ["map", [[k, v], ...]] → object. */
export function mapOf(v: Atom): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(v) && v[0] === 'map') for (const [k, val] of v[1] as [string, string][]) out[k] = String(val);
  return out;
}

interface Table {
  headings: string[];
  data: Atom[][];
}
/** A table's rows as objects keyed by heading. */
export function rows(t: Table): Record<string, Atom>[] {
  return t.data.map((r) => Object.fromEntries(t.headings.map((h, i) => [h, r[i]])));
}

/** The JSON tables ovs-vsctl --format=json prints, one per line, for `count` list commands. */
export function parseTables(text: string, count: number): Table[] {
  let tables: Table[];
  try {
    tables = text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Table);
  } catch {
    throw new BrickError('COMMAND_FAILED', `ovs-vsctl --format=json printed something that is not JSON: ${text.slice(0, 200)}`);
  }
  if (tables.length !== count || tables.some((t) => !Array.isArray(t?.headings) || !Array.isArray(t?.data)))
    throw new BrickError('COMMAND_FAILED', `ovs-vsctl: expected ${count} JSON tables, got ${tables.length}: ${text.slice(0, 200)}`);
  return tables;
}

export const OVS_READ_ARGS = [
  '--format=json',
  '--',
  '--columns=name,ports,external_ids,datapath_type,stp_enable',
  'list',
  'Bridge',
  '--',
  '--columns=_uuid,name,interfaces,tag,external_ids,fake_bridge',
  'list',
  'Port',
  '--',
  '--columns=_uuid,name,type,options,ofport,mtu_request,error,link_state,status',
  'list',
  'Interface',
  '--',
  '--columns=other_config',
  'list',
  'Open_vSwitch',
];

/** Parse the four JSON tables OVS_READ_ARGS prints (Bridge, Port, Interface, Open_vSwitch). */
export function parseOvs(text: string): OvsState {
  const [brT, portT, ifT, ovsT] = parseTables(text, 4).map(rows);
  const ifaces = new Map<string, OvsInterface>();
  for (const r of ifT) {
    const ofport = setOf(r.ofport)[0];
    const mtu = setOf(r.mtu_request)[0];
    ifaces.set(uuidOf(r._uuid), {
      name: String(r.name),
      type: String(r.type ?? ''),
      options: mapOf(r.options),
      error: String(setOf(r.error)[0] ?? ''),
      linkState: String(setOf(r.link_state)[0] ?? ''),
      status: mapOf(r.status),
      ...(typeof ofport === 'number' ? { ofport } : {}),
      ...(typeof mtu === 'number' ? { mtuRequest: mtu } : {}),
    });
  }
  const portRows = new Map<string, Record<string, Atom>>();
  for (const r of portT) portRows.set(uuidOf(r._uuid), r);
  const bridges = new Map<string, OvsBridge>();
  const ports = new Map<string, OvsPort>();
  for (const b of brT) {
    const name = String(b.name);
    const portNames: string[] = [];
    const portUuids = setOf(b.ports).map(uuidOf).sort();
    for (const pu of setOf(b.ports)) {
      const p = portRows.get(uuidOf(pu));
      if (!p) continue;
      const tag = setOf(p.tag)[0];
      const port: OvsPort = {
        name: String(p.name),
        bridge: name,
        fakeBridge: p.fake_bridge === true,
        externalIds: mapOf(p.external_ids),
        interfaces: setOf(p.interfaces).flatMap((iu) => ifaces.get(uuidOf(iu)) ?? []),
        ...(typeof tag === 'number' ? { tag } : {}),
      };
      ports.set(port.name, port);
      portNames.push(port.name);
    }
    bridges.set(name, { name, ports: portNames.sort(), portUuids, externalIds: mapOf(b.external_ids), datapathType: String(b.datapath_type ?? ''), stp: b.stp_enable === true });
  }
  return { bridges, ports, otherConfig: mapOf(ovsT[0]?.other_config) };
}

export async function readOvs(host: NetHost): Promise<OvsState> {
  const r = await host.vsctl(OVS_READ_ARGS);
  return parseOvs(r.stdout);
}

export function fakeBridges(s: OvsState): FakeBridge[] {
  return [...s.ports.values()]
    .filter((p) => p.fakeBridge && p.tag !== undefined)
    .map((p) => ({
      name: p.name,
      parent: p.bridge,
      vlan: p.tag!,
      ...(p.externalIds[OVS_OWNER_KEY] ? { owner: p.externalIds[OVS_OWNER_KEY] as Owner } : {}),
    }));
}

/** The ports a fake bridge "has": ports on its parent with its tag, other than its own. */
export function portsOfFakeBridge(s: OvsState, fb: FakeBridge): string[] {
  const parent = s.bridges.get(fb.parent);
  if (!parent) return [];
  return parent.ports.filter((n) => n !== fb.name && s.ports.get(n)?.tag === fb.vlan && !s.ports.get(n)?.fakeBridge);
}

/** The ports of a real bridge, other than its own internal port and fake bridges. */
export function portsOfOvsBridge(s: OvsState, bridge: string): string[] {
  const b = s.bridges.get(bridge);
  if (!b) return [];
  return b.ports.filter((n) => n !== bridge && !s.ports.get(n)?.fakeBridge);
}

/** A vhost-user port: made for a guest's QEMU, whether or not one is connected now (dpdk_del_port removes it). */
export function isVhostUserPort(p: OvsPort | undefined): boolean {
  return Boolean(p?.interfaces.some((i) => i.type === VHOST_USER_TYPES.server || i.type === VHOST_USER_TYPES.client));
}

/** A guest's port on a switch: named like one (vif, vnet, tap) or a vhost-user port. */
export function isOvsGuestPort(s: OvsState, name: string): boolean {
  return isGuestPort(name) || isVhostUserPort(s.ports.get(name));
}

/** For a refusal naming ports in use: how the vhost-user ones among them go (none: ''). */
export function vhostUserHint(s: OvsState, ports: readonly string[]): string {
  const vhost = ports.filter((n) => isVhostUserPort(s.ports.get(n)));
  return vhost.length ? `; ${vhost.join(', ')} ${vhost.length > 1 ? 'are vhost-user ports' : 'is a vhost-user port'} made for a guest: remove ${vhost.length > 1 ? 'them' : 'it'} with dpdk_del_port` : '';
}

/**
 * ovs-vsctl commands that make the rest of their invocation (one OVSDB transaction) depend on each
 * bridge's port set being exactly the one read in `s`. `wait-until` holds the commands after it
 * back while the set differs in ovs-vsctl's copy of the database (ovs-vsctl's --timeout then ends
 * it, nothing done); it alone checks only that copy, so a port added between ovs-vsctl's read and
 * its commit went unnoticed (del-br of a fake bridge even rewrites its parent's whole port set).
 * `get` makes ovs-vsctl verify the column at commit: changed meanwhile, the commit fails and
 * ovs-vsctl runs the whole list again on the new contents, where wait-until then holds it back.
 * Both shown on Open vSwitch 3.1 with a transaction held between the two (test/host/network-ovs).
 */
export function ovsPortsGuard(s: Pick<OvsState, 'bridges'>, bridges: readonly string[]): string[][] {
  return [...new Set(bridges)].flatMap((b) => {
    const br = s.bridges.get(b);
    if (!br) throw new Error(`ovsPortsGuard: ${b} is not a bridge in this state`);
    return [
      ['wait-until', 'Bridge', b, `ports=[${br.portUuids.join(',')}]`],
      ['get', 'Bridge', b, 'ports'],
    ];
  });
}

/** What changed in these bridges' ports from `before` to `now`, in words ("vnet3 added", "eth1 removed", "br0 removed"); [] when nothing. */
export function portSetChanges(before: Pick<OvsState, 'bridges'>, now: Pick<OvsState, 'bridges'>, bridges: readonly string[]): string[] {
  return [...new Set(bridges)].flatMap((b) => {
    const was = before.bridges.get(b)?.ports ?? [];
    const is = now.bridges.get(b)?.ports;
    if (!is) return [`${b} removed`];
    const uuidsMoved = (before.bridges.get(b)?.portUuids ?? []).join() !== now.bridges.get(b)!.portUuids.join();
    const names = [...is.filter((n) => !was.includes(n)).map((n) => `${n} added`), ...was.filter((n) => !is.includes(n)).map((n) => `${n} removed`)];
    // The same names on new rows: a port deleted and added again.
    return names.length || !uuidsMoved ? names : [`${b}'s ports were replaced`];
  });
}
