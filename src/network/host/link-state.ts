// The RUNNING state of the kernel's links, addresses and routes, read with `ip -json`. Parsers are
// pure (JSON text in, typed state out) so the planners can be tested with recorded output.
// Things brick made carry a link alias "brick:<role>" (OWNER_PREFIX): that is how ownership survives
// a restart of brick without a state file.
import { BrickError } from '../../shared/errors.js';
import type { NetHost } from './netns.js';
import { IP_MISSING_DEVICE } from './ip-reader.js';

export const OWNER_PREFIX = 'brick:';
export type Owner = 'bridge' | 'vlan-bridge' | 'vlan-device' | 'control' | 'vxlan-bridge' | 'vxlan-device';
export const ownerAlias = (o: Owner) => `${OWNER_PREFIX}${o}`;

export interface Link {
  name: string;
  index: number;
  /** linkinfo kind: bridge, veth, vlan, vxlan, dummy, tun, ...; "" for a physical NIC. */
  kind: string;
  master?: string;
  mtu: number;
  /** Administratively up (the UP flag), whatever the carrier. */
  up: boolean;
  /** ARP on (no NOARP flag). */
  arp: boolean;
  mac?: string;
  alias?: string;
  /** Alternative names (`ip link property add dev X altname Y`): the kernel resolves them as this link. */
  altnames?: string[];
  /** The brick role from the alias, if brick made it. */
  owner?: Owner;
  /** For kind vlan: the id and the parent (lower) device. */
  vlan?: { id: number; parent: string };
  /** For kind bridge: STP on. */
  stp?: boolean;
  /** For kind vxlan: the VNI, multicast group or unicast remote, underlay device and UDP port. */
  vxlan?: { id: number; group?: string; remote?: string; dev?: string; port?: number };
}

export interface Addr {
  dev: string;
  family: 4 | 6;
  address: string;
  prefix: number;
  scope: string;
}

export interface Route {
  family: 4 | 6;
  /** "default" or a prefix ("10.0.0.0/24"; a host route is shown without /32). */
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  metric?: number;
  prefsrc?: string;
  type?: string;
}

export interface LinuxState {
  links: Map<string, Link>;
  addrs: Addr[];
  routes: Route[];
}

function parseJsonArray(text: string, what: string): Record<string, any>[] {
  const t = text.trim();
  if (!t) return [];
  try {
    const v = JSON.parse(t);
    if (Array.isArray(v)) return v;
  } catch {
    /* fall through */
  }
  throw new BrickError('COMMAND_FAILED', `${what}: ip printed something that is not a JSON array: ${t.slice(0, 200)}`);
}

export function parseLinks(text: string): Map<string, Link> {
  return linksOf(parseJsonArray(text, 'ip -json -details link show'));
}

/** Links from `ip -json -details` entries already parsed. */
function linksOf(entries: Record<string, any>[], links = new Map<string, Link>()): Map<string, Link> {
  for (const j of entries) {
    const flags: string[] = j.flags ?? [];
    const kind: string = j.linkinfo?.info_kind ?? '';
    const alias: string | undefined = j.ifalias || undefined;
    const owner = alias?.startsWith(OWNER_PREFIX) ? (alias.slice(OWNER_PREFIX.length) as Owner) : undefined;
    const link: Link = {
      name: j.ifname,
      index: j.ifindex,
      kind,
      mtu: j.mtu,
      up: flags.includes('UP'),
      arp: !flags.includes('NOARP'),
      ...(j.master ? { master: j.master } : {}),
      ...(j.address ? { mac: j.address } : {}),
      ...(alias ? { alias } : {}),
      ...(Array.isArray(j.altnames) && j.altnames.length ? { altnames: j.altnames as string[] } : {}),
      ...(owner ? { owner } : {}),
    };
    if (kind === 'vlan') link.vlan = { id: j.linkinfo?.info_data?.id, parent: j.link };
    if (kind === 'vxlan') {
      const x = j.linkinfo?.info_data ?? {};
      link.vxlan = {
        id: x.id,
        ...(x.group || x.group6 ? { group: x.group ?? x.group6 } : {}),
        ...(x.remote || x.remote6 ? { remote: x.remote ?? x.remote6 } : {}),
        ...(x.link ? { dev: x.link } : {}),
        ...(x.port !== undefined ? { port: x.port } : {}),
      };
    }
    if (kind === 'bridge') link.stp = Number(j.linkinfo?.info_data?.stp_state ?? 0) !== 0;
    links.set(link.name, link);
  }
  return links;
}

export function parseAddrs(text: string): Addr[] {
  return addrsOf(parseJsonArray(text, 'ip -json addr show'));
}

/** Addresses from `ip -json` entries already parsed (entries without addr_info give none). */
function addrsOf(entries: Record<string, any>[], out: Addr[] = []): Addr[] {
  for (const j of entries)
    for (const a of j.addr_info ?? [])
      if (a.family === 'inet' || a.family === 'inet6')
        out.push({ dev: j.ifname, family: a.family === 'inet' ? 4 : 6, address: a.local, prefix: a.prefixlen, scope: a.scope });
  return out;
}

export function parseRoutes(text: string, family: 4 | 6): Route[] {
  return parseJsonArray(text, 'ip -json route show').map((j) => ({
    family,
    dst: j.dst,
    ...(j.gateway ? { gateway: j.gateway } : {}),
    ...(j.dev ? { dev: j.dev } : {}),
    ...(j.protocol ? { protocol: j.protocol } : {}),
    ...(j.scope ? { scope: j.scope } : {}),
    ...(j.metric !== undefined ? { metric: j.metric } : {}),
    ...(j.prefsrc ? { prefsrc: j.prefsrc } : {}),
    ...(j.type && j.type !== 'unicast' ? { type: j.type } : {}),
  }));
}

/** What a plan needs to see: named links, the ports of some bridges, the addresses of some devices. */
export interface LinkQuery {
  names?: readonly string[];
  /** Bridges whose ports (links with this master) are read; put the ones sure to exist first. */
  portsOf?: readonly string[];
  /** Devices whose addresses are read. */
  addrsOf?: readonly string[];
}

/**
 * The `ip -batch` lines for a query; each prints one JSON array (a missing device prints nothing).
 * The order matters to iproute2 (6.1): an `addr show` after a `link show` in the same batch prints
 * no addresses, and `link show master X` for a missing X ends the whole batch (even with -force).
 * So: addresses first, then named links, then ports, the masters most likely to exist first.
 */
const uniq = (a?: readonly string[]) => [...new Set(a ?? [])];

export function linkQueryLines(q: LinkQuery): string[] {
  return [
    ...uniq(q.addrsOf).map((n) => `addr show dev ${n}`),
    ...uniq(q.names).map((n) => `link show dev ${n}`),
    ...uniq(q.portsOf).map((n) => `link show master ${n}`),
  ];
}

/**
 * Parse what `ip -json -details -force -batch -` printed for linkQueryLines: one JSON array a line.
 * Every entry names its link (ifname), so which line printed it does not matter; entries with
 * addr_info also give addresses.
 */
export function parseLinkQuery(text: string): LinuxState {
  const links = new Map<string, Link>();
  const addrs: Addr[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const entries = parseJsonArray(line, 'ip -json -batch');
    linksOf(entries, links);
    addrsOf(entries, addrs);
  }
  return { links, addrs, routes: [] };
}

/**
 * Read only what a plan needs, whatever the host holds: the cost of a call does not grow with the
 * number of bridges on the host. Through the namespace's standing readers when the runner has them
 * (ip-reader.ts), else in one `ip` process. Routes are not read (readRoutes).
 */
export async function readLinks(host: NetHost, q: LinkQuery): Promise<LinuxState> {
  const s = await readLinksOnce(host, q);
  for (const n of uniq(q.names)) refuseAltname(s, n);
  return s;
}

/**
 * The kernel answers a link's alternative name (altname) as that link, under its own name: a name
 * asked for that is only another link's altname is not free (creating it fails with "File exists")
 * and is not a link brick can lock or enslave by that name. CONFLICT saying so.
 */
export function refuseAltname(s: LinuxState, name: string): void {
  if (s.links.has(name)) return;
  for (const l of s.links.values())
    if (l.altnames?.includes(name))
      throw new BrickError('CONFLICT', `${name} is an alternative name (altname) of ${l.name}: the name is taken; name the link ${l.name} itself, or choose another name`);
}

async function readLinksOnce(host: NetHost, q: LinkQuery): Promise<LinuxState> {
  const lines = linkQueryLines(q);
  if (!lines.length) return { links: new Map(), addrs: [], routes: [] };
  const standing = host.ipQuery && (await readLinksStanding(host, q));
  if (standing) return standing;
  // One line (a bridge without uplink: the common call) goes on the command line, so `ip` gets no
  // stdin pipe; more go through -batch. -force: a device that does not exist (yet) is an answer, not
  // a failure. Names are interface names (no spaces), so a line splits into its words.
  const r =
    lines.length === 1
      ? await host.ip(['-json', '-details', ...lines[0].split(' ')], { allowFailure: true })
      : await host.ip(['-json', '-details', '-force', '-batch', '-'], { allowFailure: true, input: lines.join('\n') + '\n' });
  const unexpected = r.stderr
    .split('\n')
    .filter((l) => l.trim() && !IP_MISSING_DEVICE.test(l) && !/Command failed -:\d+/.test(l));
  if (r.code !== 0 && unexpected.length) throw new BrickError('COMMAND_FAILED', `ip -json -batch: ${unexpected.join('; ').slice(0, 500)}`);
  return parseLinkQuery(r.stdout);
}

/**
 * readLinks through the namespace's standing readers (ip-reader.ts): addresses and named links
 * side by side (a reader each), then the ports of the masters just seen. Undefined when a reader
 * cannot answer, or for a query whose masters are not among its names (not asked by any caller):
 * the caller then reads with its own process.
 */
async function readLinksStanding(host: NetHost, q: LinkQuery): Promise<LinuxState | undefined> {
  const names = uniq(q.names);
  const masters = uniq(q.portsOf);
  const addrDevs = uniq(q.addrsOf);
  if (!masters.every((m) => names.includes(m))) return undefined;
  const none: string[] = [];
  const [addrOut, linkOut] = await Promise.all([
    addrDevs.length ? host.ipQuery!('addr', addrDevs.map((n) => `addr show dev ${n}`)) : none,
    names.length ? host.ipQuery!('link', names.map((n) => `link show dev ${n}`)) : none,
  ]);
  if (!addrOut || !linkOut) return undefined;
  const parse = (out: string[]) => {
    try {
      return parseLinkQuery(out.join('\n'));
    } catch {
      return undefined; // not what a reader prints: read with a process of its own
    }
  };
  const [fromAddrs, named] = [parse(addrOut), parse(linkOut)];
  if (!fromAddrs || !named) return undefined;
  const present = masters.filter((m) => named.links.has(m));
  const ports = present.length ? await host.ipQuery!('link', present.map((m) => `link show master ${m}`)) : none;
  const fromPorts = ports && parse(ports);
  if (!fromPorts) return undefined;
  // As one `ip -batch` of linkQueryLines prints them: addresses, named links, ports (a later entry
  // for the same link wins, in the place its first one took).
  return {
    links: new Map([...fromAddrs.links, ...named.links, ...fromPorts.links]),
    addrs: [...fromAddrs.addrs, ...named.addrs, ...fromPorts.addrs],
    routes: [],
  };
}

/** Main-table routes, both families (two reads side by side). */
export async function readRoutes(host: NetHost): Promise<Route[]> {
  const [r4, r6] = await Promise.all([host.ip(['-json', '-4', 'route', 'show', 'table', 'main']), host.ip(['-json', '-6', 'route', 'show', 'table', 'main'])]);
  return [...parseRoutes(r4.stdout, 4), ...parseRoutes(r6.stdout, 6)];
}

/**
 * Read every link, address and main-table route, side by side: links and addresses from the
 * namespace's standing readers when there are any (each one JSON line), else one `ip -json` process
 * each; routes from two processes.
 */
export async function readLinux(host: NetHost): Promise<LinuxState> {
  const one = async (kind: 'link' | 'addr', args: string[]): Promise<string> => {
    const out = await host.ipQuery?.(kind, [`${kind} show`]);
    return out?.length === 1 ? out[0] : (await host.ip(args)).stdout;
  };
  const [links, addrs, routes] = await Promise.all([one('link', ['-json', '-details', 'link', 'show']), one('addr', ['-json', 'addr', 'show']), readRoutes(host)]);
  return { links: parseLinks(links), addrs: parseAddrs(addrs), routes };
}

/** The ports of a bridge (links whose master it is), by ifindex. */
export function portsOf(state: LinuxState, bridge: string): Link[] {
  return [...state.links.values()].filter((l) => l.master === bridge).sort((a, b) => a.index - b.index);
}

/** Addresses a bridge taking over this device must carry: global/site ones, not link-local IPv6. */
export function movableAddrs(state: LinuxState, dev: string): Addr[] {
  return state.addrs.filter((a) => a.dev === dev && a.scope !== 'link' && a.scope !== 'host');
}

/** Routes via this device that the kernel does not make by itself from an address. */
export function movableRoutes(state: LinuxState, dev: string): Route[] {
  return state.routes.filter((r) => r.dev === dev && r.protocol !== 'kernel' && r.protocol !== 'ra' && !(r.family === 6 && r.dst.startsWith('fe80:')) && (!r.type || r.type === 'unicast'));
}

/** An `ip route` argument list for a route as read, on another device if asked. */
export function routeArgs(r: Route, dev = r.dev): string[] {
  const dst = r.dst === 'default' ? (r.family === 6 ? '::/0' : '0.0.0.0/0') : r.dst;
  return [
    dst,
    ...(r.gateway ? ['via', r.gateway] : []),
    ...(dev ? ['dev', dev] : []),
    ...(r.protocol ? ['proto', r.protocol] : []),
    ...(r.scope && r.scope !== 'global' ? ['scope', r.scope] : []),
    ...(r.metric !== undefined ? ['metric', String(r.metric)] : []),
    ...(r.prefsrc ? ['src', r.prefsrc] : []),
  ];
}
