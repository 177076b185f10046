// The RUNNING state of Open vSwitch, read in one `ovs-vsctl --format=json` call (Bridge, Port and
// Interface tables, every column a planner uses: bridges, VLAN bridges, overlay bridges and tunnels
// all read it through here), and the pure helpers the planners use. Fake VLAN bridges (`add-br NAME PARENT
// VLAN`) are Port rows with fake_bridge=true and a tag on the parent bridge. brick marks what it
// makes with external_ids:brick-owner=<role> on the Port row (a fake bridge has no Bridge row).
import { BrickError } from '../../shared/errors.js';
import { oneOf } from '../../rpc/formats.js';
import type { NetHost } from './netns.js';
import type { Owner } from './link-state.js';

export const OVS_OWNER_KEY = 'brick-owner';

/** A new OVS bridge's datapath: the kernel's (system) or userspace (netdev, for DPDK). */
export const Datapath = oneOf(['system', 'netdev'] as const);

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
  externalIds: Record<string, string>;
  datapathType: string;
  stp: boolean;
}

export interface OvsState {
  bridges: Map<string, OvsBridge>;
  ports: Map<string, OvsPort>;
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
function setOf(v: Atom): Atom[] {
  if (Array.isArray(v) && v[0] === 'set') return v[1] as Atom[];
  return v === undefined || v === null ? [] : [v];
}
function mapOf(v: Atom): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(v) && v[0] === 'map') for (const [k, val] of v[1] as [string, string][]) out[k] = String(val);
  return out;
}

interface Table {
  headings: string[];
  data: Atom[][];
}
function rows(t: Table): Record<string, Atom>[] {
  return t.data.map((r) => Object.fromEntries(t.headings.map((h, i) => [h, r[i]])));
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
  '--columns=_uuid,name,type,options,ofport,mtu_request,error,link_state',
  'list',
  'Interface',
];

/** Parse the three JSON tables OVS_READ_ARGS prints (one per line). */
export function parseOvs(text: string): OvsState {
  let tables: Table[];
  try {
    tables = text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Table);
  } catch {
    throw new BrickError('COMMAND_FAILED', `ovs-vsctl --format=json printed something that is not JSON: ${text.slice(0, 200)}`);
  }
  if (tables.length !== 3) throw new BrickError('COMMAND_FAILED', `ovs-vsctl: expected 3 tables (Bridge, Port, Interface), got ${tables.length}`);
  const [brT, portT, ifT] = tables.map(rows);
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
    bridges.set(name, { name, ports: portNames.sort(), externalIds: mapOf(b.external_ids), datapathType: String(b.datapath_type ?? ''), stp: b.stp_enable === true });
  }
  return { bridges, ports };
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
