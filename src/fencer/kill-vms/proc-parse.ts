// Pure parsers for the /proc and /sys texts kill-vms reads. None of these files comes from the pool's
// storage: mountinfo, fdinfo and maps are the kernel's own tables (dentries, mount ids, device
// numbers), so they answer while the NFS server is gone.

/** A device number as the kernel prints it in mountinfo ("0:52"); maps print it in hex ("00:34"). */
export type DevNo = string;

export interface MountEntry {
  mountId: number;
  dev: DevNo;
  /** Mount point, with mountinfo's octal escapes (\040 etc.) decoded. */
  mountPoint: string;
  fstype: string;
  source: string;
  /** The mount's own options (rw,relatime,...), as printed. */
  mountOptions: string;
  /** The superblock's options (NFS: vers, hard/soft, timeo, addr...), as printed. */
  superOptions: string;
}

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

/** /proc/<pid>/mountinfo. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 10 || sep < 0) continue;
    out.push({
      mountId: Number(f[0]),
      dev: normDev(f[2]),
      mountPoint: unescape(f[4]),
      fstype: f[sep + 1],
      source: unescape(f[sep + 2] ?? ''),
      mountOptions: f[5],
      superOptions: f[sep + 3] ?? '',
    });
  }
  return out;
}

/** "maj:min" in decimal whatever the input base ("00:2d" from maps is hex). */
export function normDev(s: string, hex = false): DevNo {
  const m = /^([0-9a-fA-F]+):([0-9a-fA-F]+)$/.exec(s);
  if (!m) return s;
  const b = hex ? 16 : 10;
  return `${parseInt(m[1], b)}:${parseInt(m[2], b)}`;
}

/** st_dev (stat -c %d, decimal) → "maj:min", as the kernel's new_decode_dev does. */
export function devFromStDev(stDev: string | number): DevNo | undefined {
  const n = BigInt(stDev);
  if (n < 0n) return undefined;
  const major = Number(((n >> 8n) & 0xfffn) | ((n >> 32n) & ~0xfffn));
  const minor = Number((n & 0xffn) | ((n >> 12n) & ~0xffn));
  return `${major}:${minor}`;
}

/**
 * The mount a pool path lives on: the last-mounted entry whose mount point is the path or its
 * longest ancestor (mountinfo lists mounts in mount order; a later mount on the same point hides the earlier).
 */
export function mountOf(path: string, mounts: MountEntry[]): MountEntry | undefined {
  const p = path.replace(/\/+$/, '') || '/';
  let best: MountEntry | undefined;
  for (const m of mounts) {
    const mp = m.mountPoint.replace(/\/+$/, '') || '/';
    const covers = mp === '/' || p === mp || p.startsWith(mp + '/');
    if (covers && (!best || mp.length >= (best.mountPoint.replace(/\/+$/, '') || '/').length)) best = m;
  }
  return best;
}

/** The mount id of an open file, from /proc/<pid>/fdinfo/<fd> ("mnt_id:\t52"). */
export function fdinfoMountId(text: string): number | undefined {
  const m = /^mnt_id:\s*(\d+)/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Device numbers of the files a process maps (/proc/<pid>/maps; anonymous mappings are 00:00). */
export function mapsDevices(text: string): Set<DevNo> {
  const out = new Set<DevNo>();
  for (const line of text.split('\n')) {
    const f = line.split(/\s+/, 6);
    if (f.length < 5 || f[3] === '00:00' || f[4] === '0') continue;
    out.add(normDev(f[3], true));
  }
  return out;
}

export { parseStat, type ProcStat } from '../../shared/proc-stat.js';

export interface VmIdentity {
  name?: string;
  uuid?: string;
  /** Xen device model: the domain id it serves. */
  domid?: number;
}

/** A VM's name and uuid from its QEMU (or Xen qemu-dm) command line (NUL-separated /proc/<pid>/cmdline). */
export function vmFromCmdline(cmdline: string): VmIdentity | undefined {
  const a = cmdline.split('\0');
  const exe = (a[0] ?? '').split('/').pop() ?? '';
  if (!/qemu/.test(exe)) return undefined;
  const vm: VmIdentity = {};
  for (let i = 0; i < a.length - 1; i++) {
    const v = a[i + 1];
    if (a[i] === '-name') {
      // libvirt: "guest=NAME,debug-threads=on" (",," escapes a comma); older: "NAME"
      const first = v.replace(/,,/g, '\0').split(',').find((x) => x.startsWith('guest=')) ?? (v.includes('=') ? undefined : v);
      if (first) vm.name = first.replace(/^guest=/, '').replace(/\0/g, ',');
    } else if (a[i] === '-uuid') vm.uuid = v;
    else if (a[i] === '-xen-domid') vm.domid = Number(v);
  }
  return vm;
}

// ---- pending-write evidence ----

export interface BdiStats {
  writebackKb: number;
  reclaimableKb: number;
  /** Inodes on the writeback lists: b_dirty + b_io + b_more_io (exact list lengths). */
  dirtyInodes: number;
}

/** /sys/kernel/debug/bdi/<maj:min>/stats. */
export function parseBdiStats(text: string): BdiStats | undefined {
  const num = (k: string) => {
    const m = new RegExp(`^${k}:\\s*(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const wb = num('BdiWriteback');
  const rec = num('BdiReclaimable');
  const lists = ['b_dirty', 'b_io', 'b_more_io'].map(num);
  if (wb === undefined || rec === undefined || lists.some((x) => x === undefined)) return undefined;
  return { writebackKb: wb, reclaimableKb: rec, dirtyInodes: lists.reduce((a, b) => a! + b!, 0)! };
}

/** /proc/vmstat: the host's dirty and writeback page counts (writeback_temp: FUSE's). */
export function parseVmstat(text: string): { dirty: number; writeback: number; writebackTemp: number } | undefined {
  const num = (k: string) => {
    const m = new RegExp(`^${k} (\\d+)$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const dirty = num('nr_dirty');
  const writeback = num('nr_writeback');
  if (dirty === undefined || writeback === undefined) return undefined;
  return { dirty, writeback, writebackTemp: num('nr_writeback_temp') ?? 0 };
}

/** The server address of an NFS mount, from its super options ("...,addr=10.0.0.5,..."). */
export function nfsServerAddr(superOptions: string): string | undefined {
  const m = /(?:^|,)addr=([^,]+)/.exec(superOptions);
  return m ? m[1] : undefined;
}

/** /sys/kernel/debug/sunrpc/rpc_xprt/<n>/info: "netid: tcp\naddr: 10.0.0.5\nport: 2049\n...". */
export function parseXprtInfo(text: string): { addr?: string; port?: string } {
  return { addr: /^addr:\s*(\S+)/m.exec(text)?.[1], port: /^port:\s*(\S+)/m.exec(text)?.[1] };
}

/** The RPC tasks of one rpc_clnt (/sys/kernel/debug/sunrpc/rpc_clnt/<n>/tasks): one line per task. */
export function parseRpcTasks(text: string): Array<{ line: string; proc?: string }> {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((line) => ({ line, proc: /\b(?:nfs|nfsacl|lockd|mount|portmap|rpcbind)v\d+\s+(\S+)/.exec(line)?.[1] }));
}

/** IPv4 or IPv6 address as /proc/net/tcp{,6} print it (host-order hex words) → the usual text form. */
export function procNetAddr(hex: string): string | undefined {
  if (hex.length === 8) {
    const n = parseInt(hex, 16);
    // x86 is little-endian: the first byte of the address is the low byte of the word
    return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join('.');
  }
  if (hex.length === 32) {
    const words = [0, 1, 2, 3].map((i) => hex.slice(i * 8, i * 8 + 8));
    const bytes = words.flatMap((w) => [6, 4, 2, 0].map((j) => parseInt(w.slice(j, j + 2), 16)));
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
    const v6 = groups.join(':');
    if (v6.startsWith('0:0:0:0:0:ffff:')) return bytes.slice(12).join('.'); // v4-mapped
    return canonicalV6(v6);
  }
  return undefined;
}

function canonicalV6(groups: string): string {
  const g = groups.split(':');
  let best = -1, bestLen = 0;
  for (let i = 0; i < g.length; ) {
    if (g[i] !== '0') { i++; continue; }
    let j = i;
    while (j < g.length && g[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return g.join(':');
  return `${g.slice(0, best).join(':')}::${g.slice(best + bestLen).join(':')}`;
}

export interface TcpQueue {
  remote: string;
  port: number;
  state: string;
  /** Bytes the kernel still holds to send or have acknowledged (tx_queue): it would retransmit them. */
  txQueue: number;
}

/** /proc/net/tcp or tcp6: every socket with its remote address and send queue. */
export function parseProcNetTcp(text: string): TcpQueue[] {
  const out: TcpQueue[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const [remHex, portHex] = f[2].split(':');
    const remote = procNetAddr(remHex);
    if (!remote) continue;
    const [tx] = f[4].split(':');
    out.push({ remote, port: parseInt(portHex, 16), state: f[3], txQueue: parseInt(tx, 16) });
  }
  return out;
}

/** Normalise an address for comparison ("[fd00::1]" → "fd00::1"). */
export function normAddr(a: string): string {
  return a.replace(/^\[|\]$/g, '').toLowerCase();
}
