// The ONE list of host commands brick runs: each command, the flags brick gives it, the oldest
// version that has them, and what brick does on a host whose userland is older (OVM 3.2 = OL5:
// coreutils 5.97, iproute2 2.6.18, util-linux 2.13; OVM 3.3/3.4 = OL6: coreutils 8.4, iproute2
// 2.6.32, util-linux 2.17; EL7: coreutils 8.22, iproute2 4.11, util-linux 2.23).
//
// Each tool is resolved ONCE per process to an absolute path (never a PATH lookup, never the
// caller's environment): the host's own binary when it is new enough, else brick's own copy in
// PRIVATE_BIN_DIR (Debian 12's build, carried with its libraries; see packaging/README.md), else
// the host's too-old one (its missing flags are reported), else nothing: a call that needs a
// missing tool gets UNSUPPORTED naming the tool and what to install, never a raw spawn error.
// A tool is resolved on its first use; `brick serve` probes the rest in the background after it
// listens (logHostTools), the fencer resolves its probe tools before it judges any pool, and
// `host_capabilities` and `brick doctor` report each tool with `hostToolsReport()`.
//
// To add a command brick runs: add it here first (name, package, flags with their first version,
// what brick does without it). src/shared/run.ts resolves bare command names through this list.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { BrickError } from './errors.js';

/** Where brick's private runtime lives (loader, libraries, carried tools): packaging/README.md. */
export const PRIVATE_DIR = '/usr/lib/brick';
export const PRIVATE_BIN_DIR = `${PRIVATE_DIR}/bin`;
export const PRIVATE_LIB_DIR = `${PRIVATE_DIR}/lib`;
/** The host's directories, in this order; brick never reads PATH from its environment. */
export const HOST_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'] as const;
/** PATH that brick's children get (they may run their own helpers by name). */
export const CHILD_PATH = HOST_DIRS.join(':');

export interface FlagUse {
  /** The flag or sub-command as brick passes it. */
  flag: string;
  /** Oldest upstream version that has it ('' = every version that has the tool). */
  since: string;
  note?: string;
  /** Arguments that mean this flag is used (exact, or as a prefix of NAME=VALUE): a call passing
   * one to a host tool older than `since` gets UNSUPPORTED instead of the tool's usage error. */
  match?: string[];
}

export interface ToolSpec {
  name: string;
  /** Upstream project (and the EL / Debian package). */
  package: string;
  /** What brick uses it for. */
  usedBy: string;
  flags: FlagUse[];
  /** The oldest version with every flag in `flags` (the largest `since`). */
  minVersion: string;
  /** Arguments that make it print its version (none: the version is not asked). */
  versionArgs?: string[];
  /** Version from the output of `versionArgs` (stdout + stderr). */
  parseVersion?: (out: string) => string | undefined;
  /** Brick carries Debian 12's build of it in PRIVATE_BIN_DIR. */
  carried?: boolean;
  /** What brick does where the host lacks it or has an older one. */
  oldUserland: string;
  /** Missing is normal on some hosts (xl on KVM, virsh on OVM 3.2); says which. */
  optionalWhere?: string;
}

const dotted = (re: RegExp) => (out: string) => re.exec(out)?.[1];

/** iproute2 printed "iproute2-ss170905" (snapshot date) until 5.x; 4.13.0 is ss170905. */
export function iproute2Version(out: string): string | undefined {
  const m = /iproute2-(?:ss)?([\d.]+)/.exec(out);
  if (!m) return undefined;
  if (/iproute2-ss/.test(out)) return `ss${m[1]}`;
  return m[1];
}

export const HOST_TOOLS: readonly ToolSpec[] = [
  {
    name: 'ip',
    package: 'iproute2 (EL: iproute)',
    usedBy: 'network_* calls, control0, host_capabilities, check_dom0_ip, bridge stats, network namespaces',
    flags: [
      { flag: '-json', since: '4.13', match: ['-json', '-j'], note: 'iproute2 4.13.0 = ss170905; EL7 has 4.11 (no -json)' },
      { flag: '-details', since: '' },
      { flag: '-batch - / -force', since: '' },
      { flag: '-n NS / netns add / netns exec', since: '3.0', match: ['-n', 'netns'], note: 'ip netns came with kernel 3.0; not in EL5/EL6 iproute2 2.6.x' },
      { flag: 'link add type vxlan', since: '3.7' },
    ],
    minVersion: '4.13',
    versionArgs: ['-V'],
    parseVersion: iproute2Version,
    carried: true,
    oldUserland: "brick's own ip (Debian 12 iproute2 6.1 with libbpf/libelf/libmnl/libbsd/libcap/zlib/libmd) from /usr/lib/brick/bin",
  },
  {
    name: 'ovs-vsctl',
    package: 'openvswitch',
    usedBy: 'network_* on Open vSwitch, overlays, DPDK ports, host_capabilities',
    flags: [
      { flag: '--format=json', since: '1.0' },
      { flag: '--timeout=N', since: '1.0' },
      { flag: '-- (one transaction), --may-exist/--if-exists', since: '1.0' },
      { flag: 'add-port ... type=dpdkvhostuserclient', since: '2.6' },
    ],
    minVersion: '2.6',
    versionArgs: ['--version'],
    parseVersion: dotted(/\(Open vSwitch\)\s+([\d.]+)/),
    oldUserland: 'needs the host\'s Open vSwitch (it talks to the host\'s ovsdb-server); dpdkvhostuserclient needs OVS 2.6, else the OVS error is reported',
    optionalWhere: 'hosts without Open vSwitch (network.backend = "linux")',
  },
  {
    name: 'ovs-ofctl',
    package: 'openvswitch',
    usedBy: 'overlay tunnel flows (add-flows/del-flows with cookie)',
    flags: [{ flag: 'add-flows BR - / del-flows cookie=C/-1', since: '1.0' }],
    minVersion: '1.0',
    versionArgs: ['--version'],
    parseVersion: dotted(/\(Open vSwitch\)\s+([\d.]+)/),
    oldUserland: "needs the host's Open vSwitch",
    optionalWhere: 'hosts without Open vSwitch',
  },
  {
    name: 'virsh',
    package: 'libvirt-client',
    usedBy: 'domain_define, VM usage for the fencer, kill-vms (destroy), Ovm3 VM stats and VNC port, host_capabilities',
    flags: [
      { flag: 'list --name, domblklist --details, vncdisplay, dumpxml, destroy', since: '0.9.10' },
      { flag: 'define --validate', since: '1.2.4', match: ['--validate'], note: 'older virsh refuses the flag; domain_define then fails with COMMAND_FAILED naming it' },
    ],
    minVersion: '1.2.4',
    versionArgs: ['--version'],
    parseVersion: dotted(/^([\d.]+)/m),
    oldUserland: "needs the host's libvirt (it talks to the host's libvirtd); OVM 3.x dom0s have none and use xl",
    optionalWhere: 'OVM 3.x dom0s (xl is used there)',
  },
  {
    name: 'xl',
    package: 'xen (xen-tools)',
    usedBy: 'VM usage for the fencer (list -l), kill-vms (destroy), Ovm3 VM stats (list, info), hypervisor version',
    flags: [
      { flag: 'info, list, destroy', since: '4.1' },
      { flag: 'list -l (JSON)', since: '4.2', note: 'Xen 4.1 (OVM 3.2) prints SXP: the fencer cannot parse it and counts every pool as in use (the safe side)' },
    ],
    minVersion: '4.2',
    oldUserland: 'needs the host\'s Xen; on Xen 4.1 "xl list -l" is not JSON and every pool counts as in use',
    optionalWhere: 'KVM hosts',
  },
  {
    name: 'xenstore-read',
    package: 'xen (xen-tools)',
    usedBy: 'Ovm3 VNC port of a domain',
    flags: [{ flag: '/local/domain/N/console/vnc-port', since: '3.0' }],
    minVersion: '3.0',
    oldUserland: "needs the host's Xen",
    optionalWhere: 'KVM hosts',
  },
  {
    name: 'ssh',
    package: 'openssh-clients',
    usedBy: 'Ovm3 exec_domr and friends (commands in the system VMs)',
    flags: [
      { flag: '-F /dev/null -i KEY -T -p -l --', since: '3.0' },
      { flag: '-o BatchMode/IdentitiesOnly/StrictHostKeyChecking/UserKnownHostsFile/GlobalKnownHostsFile/LogLevel/ConnectTimeout', since: '3.9' },
    ],
    minVersion: '3.9',
    versionArgs: ['-V'],
    parseVersion: dotted(/OpenSSH_([\d.]+)/),
    oldUserland: 'every EL5+ OpenSSH (4.3) has these options',
    optionalWhere: 'hosts that never reach system VMs',
  },
  {
    name: 'scp',
    package: 'openssh-clients',
    usedBy: 'Ovm3 createFile in a system VM',
    flags: [{ flag: '-F /dev/null -i KEY -q -P -o ... --', since: '3.9' }],
    minVersion: '3.9',
    oldUserland: 'every EL5+ OpenSSH has these options',
    optionalWhere: 'hosts that never reach system VMs',
  },
  {
    name: 'ping',
    package: 'iputils',
    usedBy: 'Ovm3 ping',
    flags: [{ flag: '-n -q -c N -W S --', since: '' }],
    minVersion: '',
    oldUserland: 'every iputils ping has these flags',
  },
  {
    name: 'ss',
    package: 'iproute2 (EL: iproute)',
    usedBy: 'fencer kill-vms: destroy TCP sockets to a dead NFS server that still hold bytes the kernel would retransmit',
    flags: [{ flag: '-K -t -n dst ADDR dport = :PORT', since: '', note: '-K needs iproute2 4.5 and the kernel\'s CONFIG_INET_DIAG_DESTROY; without them nothing is destroyed and kill-vms resets the host (the safe side)' }],
    minVersion: '',
    oldUserland: 'an ss without -K, or a kernel without SOCK_DESTROY, destroys nothing: kill-vms then resets the host when bytes are queued to a dead NFS server',
    optionalWhere: 'hosts that do not use fencer.action = "kill-vms"',
  },
  {
    name: 'wdctl',
    package: 'util-linux',
    usedBy: 'fencer: set the watchdog timeout and read it back',
    flags: [
      { flag: 'wdctl DEVICE (read)', since: '2.22' },
      {
        flag: '--settimeout N',
        since: '2.34',
        match: ['--settimeout', '-s'],
        note: 'present in util-linux 2.34 (Ubuntu 20.04); the exact first release is not pinned down here, so older ones count as lacking it',
      },
    ],
    minVersion: '2.34',
    versionArgs: ['--version'],
    parseVersion: dotted(/util-linux\s+([\d.]+)/),
    carried: true,
    oldUserland: "brick's own wdctl (Debian 12 util-linux 2.38.1 with libsmartcols) from /usr/lib/brick/bin; OL5/OL6 have no wdctl at all",
  },
  {
    name: 'timeout',
    package: 'coreutils',
    usedBy: 'before_vm_start hooks (a deadline that kills the hook\'s whole group)',
    flags: [
      { flag: 'timeout', since: '7.0' },
      { flag: '--kill-after=S', since: '8.5', match: ['--kill-after'] },
    ],
    minVersion: '8.5',
    versionArgs: ['--version'],
    parseVersion: dotted(/coreutils\)\s+([\d.]+)/),
    carried: true,
    oldUserland: "brick's own timeout (Debian 12 coreutils 9.1) from /usr/lib/brick/bin: OL5 has no timeout, OL6's 8.4 lacks --kill-after",
  },
  {
    name: 'dd',
    package: 'coreutils',
    usedBy: 'fencer heartbeat write and direct read-back, heartbeat_check',
    flags: [
      { flag: 'iflag=direct,nofollow oflag=dsync,nofollow', since: '5.3.0' },
      { flag: 'conv=fsync', since: '6.0', match: ['conv=fsync'] },
      { flag: 'status=none', since: '8.20', match: ['status=none'] },
    ],
    minVersion: '8.20',
    versionArgs: ['--version'],
    parseVersion: dotted(/coreutils\)\s+([\d.]+)/),
    carried: true,
    oldUserland: "brick's own dd (Debian 12 coreutils 9.1) from /usr/lib/brick/bin: OL5's 5.97 lacks conv=fsync and status=none, OL6's 8.4 lacks status=none",
  },
  {
    name: 'mv',
    package: 'coreutils',
    usedBy: 'fencer heartbeat rename',
    flags: [{ flag: '-f -T --', since: '5.3.0' }],
    minVersion: '5.3.0',
    versionArgs: ['--version'],
    parseVersion: dotted(/coreutils\)\s+([\d.]+)/),
    carried: true,
    oldUserland: 'every EL5+ mv has -T; brick carries its own for a root without coreutils',
  },
  {
    name: 'stat',
    package: 'coreutils',
    usedBy: 'fencer: the pool\'s device (a vanished mount)',
    flags: [{ flag: '-L -c %d --', since: '5.0' }],
    minVersion: '5.0',
    versionArgs: ['--version'],
    parseVersion: dotted(/coreutils\)\s+([\d.]+)/),
    carried: true,
    oldUserland: 'every EL5+ stat has -c; brick carries its own for a root without coreutils',
  },
  {
    name: 'sync',
    package: 'coreutils',
    usedBy: 'fencer: fsync of marker_dir after the fence marker or the lease is renamed into it',
    flags: [
      {
        flag: 'sync -- DIR (fsync of one file or directory)',
        since: '8.24',
        match: ['--'],
        note: 'before 8.24 sync ignores its arguments and syncs every filesystem (a hung NFS pool included)',
      },
    ],
    minVersion: '8.24',
    versionArgs: ['--version'],
    parseVersion: dotted(/coreutils\)\s+([\d.]+)/),
    carried: true,
    oldUserland: "brick's own sync (Debian 12 coreutils 9.1) from /usr/lib/brick/bin: OL5/OL6 (5.97, 8.4) and EL7 (8.22) sync ignore file arguments",
  },
  {
    name: 'flock',
    package: 'util-linux',
    usedBy: "fencer: the instance lock on <state_dir>/fencer.lock (one fencer per config)",
    flags: [{ flag: '--exclusive --wait', since: '2.13' }],
    minVersion: '2.13',
    versionArgs: ['--version'],
    parseVersion: dotted(/util-linux(?:-ng)?\s+([\d.]+)/),
    carried: true,
    oldUserland: "util-linux 2.13+ has flock(1); a root without it uses brick's own (Debian 12 util-linux 2.38)",
  },
  {
    name: 'realpath',
    package: 'coreutils',
    usedBy: 'fencer: a pool path resolved once at start (a symlink to the mount), with a deadline',
    flags: [{ flag: '-e --', since: '8.15' }],
    minVersion: '8.15',
    versionArgs: ['--version'],
    parseVersion: dotted(/coreutils\)\s+([\d.]+)/),
    carried: true,
    oldUserland: "OL5/OL6 coreutils has no realpath: brick carries its own (Debian 12 coreutils 9.1)",
  },
  {
    name: 'mkdir',
    package: 'coreutils',
    usedBy: 'fencer: POOL/KVMHA',
    flags: [{ flag: '-p --', since: '' }],
    minVersion: '',
    versionArgs: ['--version'],
    parseVersion: dotted(/coreutils\)\s+([\d.]+)/),
    carried: true,
    oldUserland: 'every mkdir has -p; brick carries its own for a root without coreutils',
  },
  {
    name: 'openssl',
    package: 'openssl',
    usedBy: 'server.generate_credentials: the self-signed TLS certificate (the key is made by brick itself)',
    flags: [
      { flag: 'req -new -x509 -key K -config F -extensions E -days -subj -out', since: '0.9.8', note: 'instead of -addext (1.1.1) and -newkey ec -pkeyopt (1.0.0)' },
    ],
    minVersion: '0.9.8',
    versionArgs: ['version'],
    parseVersion: dotted(/OpenSSL\s+([\d.]+[a-z]?)/),
    oldUserland: 'the subjectAltName goes in a config file (-config/-extensions), which every OpenSSL since 0.9.8 reads; the P-256 key is made by brick (node:crypto)',
    optionalWhere: 'hosts with server.generate_credentials = false',
  },
];

const byName = new Map(HOST_TOOLS.map((t) => [t.name, t]));

export function toolSpec(name: string): ToolSpec | undefined {
  return byName.get(name);
}

/**
 * a >= b for version strings: dotted numbers ("8.4" < "8.20", "1.0.2k" >= "1.0.2"), or iproute2's
 * "ssYYMMDD" snapshot dates (compared with the date of the wanted release).
 */
export function versionAtLeast(a: string, b: string): boolean {
  if (!b) return true;
  const SS: Record<string, string> = { '4.13': '170905', '3.0': '110722', '3.7': '121211' };
  if (a.startsWith('ss')) {
    const want = SS[b];
    return want !== undefined && a.slice(2) >= want;
  }
  const pa = a.split(/[.]/).map((x) => parseInt(x, 10));
  const pb = b.split(/[.]/).map((x) => parseInt(x, 10));
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = Number.isFinite(pa[i]) ? pa[i] : 0;
    const y = Number.isFinite(pb[i]) ? pb[i] : 0;
    if (x !== y) return x > y;
  }
  return true;
}

export type ToolSource = 'host' | 'brick' | 'host-too-old' | 'missing';

export interface ResolvedTool {
  name: string;
  /** Absolute path, or '' when missing. */
  path: string;
  source: ToolSource;
  /** '' when not asked or not readable. */
  version: string;
  minVersion: string;
  /** Flags brick uses that this version lacks (host-too-old). */
  missingFlags: string[];
  note: string;
}

export interface ProbeDeps {
  exists: (p: string) => boolean;
  /** Output (stdout + stderr) of a version command, or undefined on failure. */
  version: (path: string, args: string[]) => Promise<string | undefined>;
  privateBinDir: string;
}

function versionOf(path: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(
      path,
      args,
      { timeout: 3000, killSignal: 'SIGKILL', env: { PATH: CHILD_PATH, LANG: 'C', LC_ALL: 'C' }, cwd: '/', encoding: 'utf8', maxBuffer: 256 * 1024 },
      (err, stdout, stderr) => {
        const out = `${stdout ?? ''}\n${stderr ?? ''}`;
        // `ip -V` and friends exit 0; some old tools print their version and exit 1.
        resolve(err && !out.trim() ? undefined : out);
      },
    ).stdin?.end();
  });
}

export const realProbeDeps: ProbeDeps = { exists: existsSync, version: versionOf, privateBinDir: PRIVATE_BIN_DIR };

export function findOnHost(name: string, exists: (p: string) => boolean = existsSync): string {
  for (const d of HOST_DIRS) if (exists(`${d}/${name}`)) return `${d}/${name}`;
  return '';
}

/** Decide where one tool comes from (the version probe is the only side effect, through deps). */
export async function resolveTool(spec: ToolSpec, deps: ProbeDeps): Promise<ResolvedTool> {
  const host = findOnHost(spec.name, deps.exists);
  const own = spec.carried && deps.exists(`${deps.privateBinDir}/${spec.name}`) ? `${deps.privateBinDir}/${spec.name}` : '';
  const base = { name: spec.name, minVersion: spec.minVersion, missingFlags: [] as string[] };
  let hostVersion = '';
  if (host && spec.versionArgs && spec.parseVersion) {
    const out = await deps.version(host, spec.versionArgs);
    hostVersion = (out && spec.parseVersion(out)) || '';
  }
  // A host tool whose version cannot be read counts as new enough unless brick has its own.
  const hostOk = host && (hostVersion ? versionAtLeast(hostVersion, spec.minVersion) : !own || !spec.versionArgs);
  if (host && hostOk) return { ...base, path: host, source: 'host', version: hostVersion, note: '' };
  if (own) {
    let version = '';
    if (spec.versionArgs && spec.parseVersion) version = (spec.parseVersion((await deps.version(own, spec.versionArgs)) ?? '') ?? '') || '';
    const why = host ? `the host's ${host} is ${hostVersion || 'of an unknown version'}, older than ${spec.minVersion}` : 'not on the host';
    return { ...base, path: own, source: 'brick', version, note: `brick's own copy: ${why}` };
  }
  if (host) {
    const missing = spec.flags.filter((f) => f.since && !versionAtLeast(hostVersion, f.since)).map((f) => f.flag);
    return { ...base, path: host, source: 'host-too-old', version: hostVersion, missingFlags: missing, note: `older than ${spec.minVersion}: ${spec.oldUserland}` };
  }
  return {
    ...base,
    path: '',
    source: 'missing',
    version: '',
    note: spec.optionalWhere ? `not installed (normal on ${spec.optionalWhere})` : `not installed: ${spec.oldUserland}`,
  };
}

// Resolved once per process: a promise per tool, started on first need or by probeHostTools().
const resolved = new Map<string, Promise<ResolvedTool>>();
let deps: ProbeDeps = realProbeDeps;

function resolveOnce(spec: ToolSpec): Promise<ResolvedTool> {
  let p = resolved.get(spec.name);
  if (!p) {
    p = resolveTool(spec, deps);
    resolved.set(spec.name, p);
  }
  return p;
}

/** Probe every tool (at start: serve, fencer, doctor). Never throws. */
export async function probeHostTools(): Promise<ResolvedTool[]> {
  return Promise.all(HOST_TOOLS.map(resolveOnce));
}

/**
 * The absolute path to run for `name`. A registered tool comes from the registry; an unregistered
 * name (tests' own helpers) is looked up in HOST_DIRS. Missing → UNSUPPORTED naming the tool.
 */
export async function toolPath(name: string): Promise<{ path: string; tool?: ResolvedTool } | { missing: string }> {
  if (name.includes('/')) return { path: name };
  const spec = byName.get(name);
  if (!spec) {
    const p = findOnHost(name, deps.exists);
    return p ? { path: p } : { missing: `${name}: not installed (looked in ${HOST_DIRS.join(', ')})` };
  }
  const t = await resolveOnce(spec);
  if (t.source === 'missing') return { missing: `${name} (${spec.package}) is needed for ${spec.usedBy} and is ${t.note}` };
  return { path: t.path, tool: t };
}

/**
 * Absolute paths of `names`, resolved together once (callers keep them: no PATH lookup later). A
 * missing one is UNSUPPORTED: "<needs> <what is missing>", e.g. needs = "the fencer's probes need".
 */
export async function requireTools<N extends string>(names: readonly N[], needs: string): Promise<Record<N, string>> {
  const paths = await Promise.all(
    names.map(async (name) => {
      const r = await toolPath(name);
      if ('missing' in r) throw new BrickError('UNSUPPORTED', `${needs} ${r.missing}`, { tool: name });
      return r.path;
    }),
  );
  return Object.fromEntries(names.map((n, i) => [n, paths[i]])) as Record<N, string>;
}

/**
 * UNSUPPORTED text when `args` use a flag the chosen (too old) host tool lacks; undefined when fine.
 * Pure: the runner calls it with the resolved tool.
 */
export function missingFlagUse(t: ResolvedTool, args: readonly string[]): string | undefined {
  if (t.source !== 'host-too-old') return undefined;
  const spec = byName.get(t.name);
  for (const f of spec?.flags ?? []) {
    if (!f.match || !t.missingFlags.includes(f.flag)) continue;
    const used = args.find((a) => f.match!.some((m) => a === m || a.startsWith(`${m}=`)));
    if (used !== undefined)
      return `${t.name} ${used}: ${t.path} is ${t.version || 'of an unknown version'}; "${f.flag}" needs ${spec!.package} ${f.since} or later (${spec!.oldUserland})`;
  }
  return undefined;
}

/** One line per tool for `brick doctor` and host_capabilities (plain data, XML-RPC safe). */
export interface ToolReport {
  name: string;
  package: string;
  path: string;
  source: ToolSource;
  version: string;
  min_version: string;
  missing_flags: string[];
  note: string;
}

/** For `brick doctor` (admin21) and host_capabilities: probes (once) and reports every tool. */
export async function hostToolsReport(): Promise<ToolReport[]> {
  const all = await probeHostTools();
  return all.map((t) => ({
    name: t.name,
    package: byName.get(t.name)!.package,
    path: t.path,
    source: t.source,
    version: t.version,
    min_version: t.minVersion,
    missing_flags: t.missingFlags,
    note: t.note,
  }));
}

/**
 * Start the probe (serve, fencer) without waiting for it; when done, one warning per tool that is
 * too old or missing (optional tools missing where they are normal only at debug level).
 */
export function logHostTools(log: { warn: (o: object, msg: string) => void; debug: (o: object, msg: string) => void }): void {
  // One tool at a time, in the background: spawning every probe at once (each spawn forks in the
  // event loop's thread) held brick serve's first call for seconds on a loaded host.
  void (async () => {
    const all: ResolvedTool[] = [];
    for (const spec of HOST_TOOLS) all.push(await resolveOnce(spec));
    return all;
  })().then((all) => {
    for (const t of all) {
      const spec = byName.get(t.name)!;
      if (t.source === 'host-too-old') log.warn({ tool: t.name, path: t.path, version: t.version, missing_flags: t.missingFlags }, `host tool ${t.name}: ${t.note}`);
      else if (t.source === 'missing' && spec.optionalWhere) log.debug({ tool: t.name }, `host tool ${t.name}: ${t.note}`);
      else if (t.source === 'missing') log.warn({ tool: t.name }, `host tool ${t.name}: ${t.note}`);
      else if (t.source === 'brick') log.debug({ tool: t.name, path: t.path }, `host tool ${t.name}: ${t.note}`);
    }
  });
}

/** Tests only: forget every resolution and probe with these deps from now on. */
export function resetHostToolsForTest(d: ProbeDeps = realProbeDeps): void {
  resolved.clear();
  deps = d;
}
