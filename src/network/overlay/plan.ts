// Overlay networks on Open vSwitch, the deciding half (pure): the CloudStack OVS plugin's
// ovstunnel.py (setup_ovs_bridge, create_tunnel, destroy_tunnel, destroy_ovs_bridge) as plans.
//
// Tunnel port names: "<gre|vxl>-" + the first 10 hex digits of SHA-256("<bridge>\0<remote>\0<key>"),
// the remote in canonical form. 14 characters whatever the key (up to 4294967295) or the remote (an
// IPv6 address is 39), so always within the kernel's 15; stable (the same tunnel always gets the same
// name, on every host and after a restart); unique in practice (40 bits), and a collision is seen
// (the port exists with another remote/key) and refused, never silently reused. ovstunnel.py's
// "t<key>-<from>-<to>" names pass 15 characters for large keys and host ids.
//
// Ownership: the overlay bridge carries external_ids brick-owner=overlay-bridge and
// brick-overlay-key=<key>; a tunnel Port carries brick-owner=tunnel, brick-remote, brick-key.
//
// Flows: as the plugin does, broadcast and IP multicast (224.0.0.0/24) arriving from a tunnel are
// dropped (with a full mesh of tunnels a flooded frame would otherwise come back over the others).
// They carry a cookie derived from the port name so removing the tunnel deletes exactly its flows.
import { createHash } from 'node:crypto';
import { BrickError } from '../../shared/errors.js';
import { isGuestPort } from '../host/names.js';
import { T } from '../../rpc/schema.js';
import { refine } from '../../rpc/params.js';
import { canonicalIp, intIn, oneOf, unicast, Unicast } from '../../rpc/formats.js';
import { OVS_OWNER_KEY, datapathOf, parseOvs, type OvsBridge, type OvsInterface, type OvsState } from '../host/ovs.js';
import type { OvsCommand } from '../host/plan.js';
import { VNI_MAX } from './vxlan-bridge.js';

export const KEY_MAX = 4_294_967_295;
export const OVERLAY_KEY = 'brick-overlay-key';
export const REMOTE_KEY = 'brick-remote';
export const TUNNEL_KEY = 'brick-key';
export type TunnelType = 'gre' | 'vxlan';
export const TUNNEL_PREFIX: Record<TunnelType, string> = { gre: 'gre-', vxlan: 'vxl-' };
/** The plugin's priority for its drop flows. */
export const DROP_PRIORITY = 1000;

export const GreKey = intIn(0, KEY_MAX, 'GRE key');
export const VxlanKey = intIn(1, VNI_MAX, 'VXLAN key (VNI)');
export const TunnelTypeName = oneOf(['gre', 'vxlan'] as const);

export { canonicalIp };

/** A tunnel's peer: a unicast address, in the form OVS stores it. */
export const Remote = refine(T.String({ description: Unicast.description }), (v) => canonicalIp(unicast(v)));

export function tunnelPortName(type: TunnelType, bridge: string, remote: string, key: number): string {
  const h = createHash('sha256').update(`${bridge}\0${canonicalIp(remote)}\0${key}`).digest('hex');
  return TUNNEL_PREFIX[type] + h.slice(0, 10);
}

/** 60 bits of SHA-256 of the port name (never all ones, which OpenFlow reserves). */
export function tunnelCookie(port: string): string {
  return '0x' + createHash('sha256').update(`brick-tunnel\0${port}`).digest('hex').slice(0, 15);
}

export function dropFlows(port: string, ofport: number): string[] {
  const c = tunnelCookie(port);
  return [
    `cookie=${c},priority=${DROP_PRIORITY},in_port=${ofport},dl_dst=ff:ff:ff:ff:ff:ff,actions=drop`,
    `cookie=${c},priority=${DROP_PRIORITY},ip,in_port=${ofport},nw_dst=224.0.0.0/24,actions=drop`,
  ];
}

/** The flows `ovs-ofctl dump-flows BR cookie=C/-1` printed are exactly brick's drop flows for this ofport. */
export function flowsPresent(dump: string, ofport: number): boolean {
  const lines = dump.split('\n').filter((l) => /\bcookie=/.test(l));
  const has = (re: RegExp) => lines.some((l) => re.test(l) && new RegExp(`in_port=${ofport}\\b`).test(l) && /actions=drop/.test(l));
  return lines.length === 2 && has(/dl_dst=ff:ff:ff:ff:ff:ff/) && has(/nw_dst=224\.0\.0\.0\/24/);
}

// ---------------------------------------------------------------------------------------------
// Running state (one ovs-vsctl call)

/** A tunnel's interface, as the one OVS reader gives it. */
export type TunnelIface = Omit<OvsInterface, 'name' | 'mtuRequest'>;

export interface OverlayPort {
  name: string;
  bridge: string;
  externalIds: Record<string, string>;
  iface?: OvsInterface;
}

/** The overlay planners' view of the one OVS state: each port with its own interface. */
export interface OverlayState {
  bridges: Map<string, OvsBridge>;
  ports: Map<string, OverlayPort>;
}

export function overlayView(s: OvsState): OverlayState {
  const ports = new Map<string, OverlayPort>();
  for (const p of s.ports.values()) {
    const own = p.interfaces.find((i) => i.name === p.name) ?? p.interfaces[0];
    ports.set(p.name, { name: p.name, bridge: p.bridge, externalIds: p.externalIds, ...(own ? { iface: own } : {}) });
  }
  return { bridges: s.bridges, ports };
}

/** Parse what readOvs's arguments printed into the overlay view. */
export function parseOverlayState(text: string): OverlayState {
  return overlayView(parseOvs(text));
}

// ---------------------------------------------------------------------------------------------
// Plans

export interface OverlayBridgeDesired {
  bridge: string;
  key: number;
  stp?: boolean;
  datapathType?: string;
}

export function planOverlayBridge(s: OverlayState, d: OverlayBridgeDesired): OvsCommand[] {
  const br = s.bridges.get(d.bridge);
  const port = s.ports.get(d.bridge);
  if (!br && port) throw new BrickError('CONFLICT', `${d.bridge} is a port of OVS bridge ${port.bridge}, not a bridge; choose another name`);
  if (!br) {
    return [
      { args: ['--may-exist', 'add-br', d.bridge], what: `created OVS bridge ${d.bridge}` },
      {
        args: [
          'set',
          'Bridge',
          d.bridge,
          `external_ids:${OVS_OWNER_KEY}=overlay-bridge`,
          `external_ids:${OVERLAY_KEY}=${d.key}`,
          `stp_enable=${d.stp ?? false}`,
          ...(d.datapathType ? [`datapath_type=${d.datapathType}`] : []),
        ],
        what: `marked ${d.bridge} as brick's overlay bridge for key ${d.key}${d.stp ? ', STP on' : ''}`,
      },
    ];
  }
  const owner = br.externalIds[OVS_OWNER_KEY];
  if (owner !== 'overlay-bridge')
    throw new BrickError('CONFLICT', `${d.bridge} exists and is not an overlay bridge brick made (external_ids:${OVS_OWNER_KEY}=${owner ?? 'none'}); choose another name`);
  const have = br.externalIds[OVERLAY_KEY];
  if (have !== String(d.key)) throw new BrickError('CONFLICT', `${d.bridge} is the overlay bridge for key ${have}, not ${d.key}; remove it first or choose another name`);
  if (d.datapathType && datapathOf(br) !== d.datapathType)
    throw new BrickError('CONFLICT', `${d.bridge} has datapath_type ${datapathOf(br)}, not ${d.datapathType}; remove it first`);
  if (d.stp !== undefined && br.stp !== d.stp) return [{ args: ['set', 'Bridge', d.bridge, `stp_enable=${d.stp}`], what: `turned STP ${d.stp ? 'on' : 'off'} on ${d.bridge}` }];
  return [];
}

export interface TunnelDesired {
  bridge: string;
  remote: string;
  key: number;
  type: TunnelType;
  /** Explicit port name; default tunnelPortName(). */
  name?: string;
}

export interface TunnelPlan {
  port: string;
  /** The port exists as asked: only the flows may need (re)installing. */
  exists: boolean;
  cmds: OvsCommand[];
}

function describe(p: OverlayPort): string {
  const i = p.iface;
  return `${i?.type || 'system'} port${i?.options.remote_ip ? ` to ${i.options.remote_ip}` : ''}${i?.options.key ? ` key ${i.options.key}` : ''} on ${p.bridge}`;
}

export function planTunnel(s: OverlayState, d: TunnelDesired): TunnelPlan {
  const port = d.name ?? tunnelPortName(d.type, d.bridge, d.remote, d.key);
  if (!s.bridges.has(d.bridge)) throw new BrickError('NOT_FOUND', `bridge: no Open vSwitch bridge named ${d.bridge}; create it with network_ensure_overlay_bridge first`);
  if (s.bridges.has(port)) throw new BrickError('CONFLICT', `${port} is an OVS bridge; pass another opts.name`);
  const p = s.ports.get(port);
  if (p) {
    const i = p.iface;
    const same =
      p.bridge === d.bridge &&
      p.externalIds[OVS_OWNER_KEY] === 'tunnel' &&
      i?.type === d.type &&
      i.options.remote_ip !== undefined &&
      canonicalIp(i.options.remote_ip) === d.remote &&
      i.options.key === String(d.key);
    if (!same) throw new BrickError('CONFLICT', `${port} exists as ${p.externalIds[OVS_OWNER_KEY] === 'tunnel' ? "brick's " : ''}${describe(p)}, not a ${d.type} tunnel to ${d.remote} key ${d.key} on ${d.bridge}; pass another opts.name or remove it first`);
    return { port, exists: true, cmds: [] };
  }
  // OVS refuses a second tunnel with the same type, remote and key on one bridge; say which one.
  const twin = [...s.ports.values()].find(
    (q) => q.bridge === d.bridge && q.iface?.type === d.type && q.iface.options.remote_ip !== undefined && canonicalIp(q.iface.options.remote_ip) === d.remote && (q.iface.options.key ?? '0') === String(d.key),
  );
  if (twin) throw new BrickError('CONFLICT', `${twin.name} on ${d.bridge} is already a ${d.type} tunnel to ${d.remote} with key ${d.key}; use it or remove it first`);
  return {
    port,
    exists: false,
    cmds: [
      { args: ['add-port', d.bridge, port], what: `added ${d.type} tunnel port ${port} to ${d.bridge}` },
      {
        args: ['set', 'Interface', port, `type=${d.type}`, `options:remote_ip=${d.remote}`, `options:key=${d.key}`],
        what: `${port}: remote ${d.remote}, key ${d.key}`,
      },
      {
        args: ['set', 'Port', port, `external_ids:${OVS_OWNER_KEY}=tunnel`, `external_ids:${REMOTE_KEY}=${d.remote}`, `external_ids:${TUNNEL_KEY}=${d.key}`],
        what: `marked ${port} as brick's`,
      },
    ],
  };
}

export interface RemovePlan {
  exists: boolean;
  cmds: OvsCommand[];
}

export function planRemoveTunnel(s: OverlayState, bridge: string, port: string): RemovePlan {
  const p = s.ports.get(port);
  if (!p) return { exists: false, cmds: [] };
  if (p.bridge !== bridge) throw new BrickError('CONFLICT', `${port} is a port of ${p.bridge}, not ${bridge}; name its bridge`);
  if (p.externalIds[OVS_OWNER_KEY] !== 'tunnel') throw new BrickError('CONFLICT', `${port} is not a tunnel brick made (no external_ids:${OVS_OWNER_KEY}=tunnel); brick leaves it alone`);
  return { exists: true, cmds: [{ args: ['--if-exists', 'del-port', bridge, port], what: `removed tunnel port ${port} from ${bridge}` }] };
}

export function planRemoveOverlayBridge(s: OverlayState, bridge: string): RemovePlan {
  const br = s.bridges.get(bridge);
  if (!br) return { exists: false, cmds: [] };
  if (br.externalIds[OVS_OWNER_KEY] !== 'overlay-bridge')
    throw new BrickError('CONFLICT', `${bridge} is not an overlay bridge brick made (no external_ids:${OVS_OWNER_KEY}=overlay-bridge); brick leaves it alone`);
  const others = br.ports.filter((n) => n !== bridge && s.ports.get(n)?.externalIds[OVS_OWNER_KEY] !== 'tunnel');
  const guests = others.filter(isGuestPort);
  if (others.length)
    throw new BrickError('CONFLICT', `${bridge} still has ${guests.length ? 'guest ' : ''}ports ${others.join(', ')}; detach them (stop the guests) first`);
  return { exists: true, cmds: [{ args: ['--if-exists', 'del-br', bridge], what: `removed overlay bridge ${bridge} and its ${br.ports.length - 1} tunnel port(s)` }] };
}

/** For network_state: every tunnel port (brick's or not). */
export function tunnelReport(s: OverlayState): { port: string; bridge: string; type: string; remote: string; key: string; ofport: number; status: string; error: string; brick_owned: boolean }[] {
  return [...s.ports.values()]
    .filter((p) => p.iface && (p.iface.type === 'gre' || p.iface.type === 'vxlan' || p.iface.type === 'geneve' || p.iface.type === 'stt'))
    .map((p) => {
      const i = p.iface!;
      return {
        port: p.name,
        bridge: p.bridge,
        type: i.type,
        remote: i.options.remote_ip ?? '',
        key: i.options.key ?? '',
        ofport: i.ofport ?? -1,
        status: i.error ? 'error' : i.linkState || 'unknown',
        error: i.error,
        brick_owned: p.externalIds[OVS_OWNER_KEY] === 'tunnel',
      };
    })
    .sort((a, b) => a.bridge.localeCompare(b.bridge) || a.port.localeCompare(b.port));
}
