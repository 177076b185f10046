// ovs_dom0_stats, ovs_domU_stats and get_vncport. Replies are structs of strings (the Java client
// parses them with Double.parseDouble). Parsers are pure and unit-tested; the edge reads /proc, sysfs,
// virsh or xl with deadlines.
import { readFile, readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { BrickError } from '../../shared/errors.js';
import type { CallContext } from '../../rpc/catalogue.js';
import { T } from '../../rpc/schema.js';
import { Invalid, refine } from '../../rpc/params.js';
import { plainText } from '../../rpc/formats.js';
import { isCloudStackVmName } from './args.js';
import { domainTool, probeHostKind, type DomainTool } from './hypervisor.js';
import { parseStat } from '../../shared/proc-stat.js';

export const CPU_SAMPLE_MS = 250;

// ---- dom0 ----------------------------------------------------------------------------------

/** busy and total jiffies from the aggregate "cpu" line of /proc/stat (pure). */
export function cpuTimes(procStat: string): { busy: number; total: number } {
  const line = procStat.split('\n').find((l) => /^cpu\s/.test(l));
  if (!line) throw new BrickError('COMMAND_FAILED', '/proc/stat: no aggregate cpu line');
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest times are already inside user/nice)
  const total = v.slice(0, 8).reduce((a, b) => a + (b || 0), 0);
  const idle = (v[3] || 0) + (v[4] || 0);
  return { busy: total - idle, total };
}

/** Percent busy between two /proc/stat samples, as the module's "cpu" string (pure). */
export function cpuPercent(a: string, b: string): string {
  const x = cpuTimes(a);
  const y = cpuTimes(b);
  const dt = y.total - x.total;
  const pct = dt > 0 ? ((y.busy - x.busy) / dt) * 100 : 0;
  return (Math.round(Math.min(100, Math.max(0, pct)) * 100) / 100).toString();
}

/** free and total bytes from /proc/meminfo (pure): MemAvailable (else MemFree), MemTotal. */
export function memFromMeminfo(meminfo: string): { free: string; total: string } {
  const kb = (k: string) => {
    const m = new RegExp(`^${k}:\\s+(\\d+)\\s*kB`, 'm').exec(meminfo);
    return m ? BigInt(m[1]) * 1024n : undefined;
  };
  const total = kb('MemTotal');
  const free = kb('MemAvailable') ?? kb('MemFree');
  if (total === undefined || free === undefined) throw new BrickError('COMMAND_FAILED', '/proc/meminfo: no MemTotal/MemFree');
  return { free: free.toString(), total: total.toString() };
}

/** free and total bytes from `xl info` (pure): free_memory and total_memory are MiB. */
export function memFromXlInfo(xlInfo: string): { free: string; total: string } {
  const mib = (k: string) => {
    const m = new RegExp(`^${k}\\s*:\\s*(\\d+)`, 'm').exec(xlInfo);
    return m ? BigInt(m[1]) * 1048576n : undefined;
  };
  const total = mib('total_memory');
  const free = mib('free_memory');
  if (total === undefined || free === undefined) throw new BrickError('COMMAND_FAILED', 'xl info: no total_memory/free_memory');
  return { free: free.toString(), total: total.toString() };
}

/** tx/rx bytes of a device from `ip -json -s link show dev X` (pure). */
export function txRxFromIpJson(json: string): { tx: string; rx: string } {
  const [l] = JSON.parse(json) as Array<{ stats64?: { rx?: { bytes?: number }; tx?: { bytes?: number } } }>;
  return { tx: String(l?.stats64?.tx?.bytes ?? 0), rx: String(l?.stats64?.rx?.bytes ?? 0) };
}

async function bridgeTxRx(ctx: CallContext, bridge: string): Promise<{ tx: string; rx: string }> {
  const ns = ctx.config.network.namespace;
  if (ns) {
    // sysfs shows the agent's own namespace; inside network.namespace ask netlink (same counters).
    const r = await ctx.run('ip', ['-json', '-s', 'link', 'show', 'dev', bridge], { timeoutMs: 5000, netns: ns, allowFailure: true });
    if (r.code !== 0) throw new BrickError('NOT_FOUND', `bridge ${bridge}: no such device in namespace ${ns}`);
    return txRxFromIpJson(r.stdout);
  }
  const base = `/sys/class/net/${bridge}/statistics`;
  try {
    const [tx, rx] = await Promise.all([readFile(`${base}/tx_bytes`, 'utf8'), readFile(`${base}/rx_bytes`, 'utf8')]);
    return { tx: tx.trim(), rx: rx.trim() };
  } catch {
    throw new BrickError('NOT_FOUND', `bridge ${bridge}: no such network device on this host (check the traffic label / public network device)`);
  }
}

/** ovs_dom0_stats(bridge) → {cpu, free, total, tx, rx}, all strings. */
export async function dom0Stats([bridge]: [string], ctx: CallContext): Promise<Record<string, string>> {
  const kind = probeHostKind();
  const txrx = await bridgeTxRx(ctx, bridge);
  const a = await readFile('/proc/stat', 'utf8');
  await sleep(Math.min(CPU_SAMPLE_MS, Math.max(1, ctx.remainingMs() - 100)));
  const b = await readFile('/proc/stat', 'utf8');
  let mem: { free: string; total: string };
  if (kind.xen) {
    // On Xen dom0 /proc/meminfo is dom0's share only; the hypervisor's view is what the module reported.
    const r = await ctx.run('xl', ['info'], { timeoutMs: Math.max(1, Math.min(10_000, ctx.remainingMs())) });
    mem = memFromXlInfo(r.stdout);
  } else {
    mem = memFromMeminfo(await readFile('/proc/meminfo', 'utf8'));
  }
  return { cpu: cpuPercent(a, b), free: mem.free, total: mem.total, tx: txrx.tx, rx: txrx.rx };
}

// ---- domU ----------------------------------------------------------------------------------

export interface DomUStats {
  rd_bytes: string;
  wr_bytes: string;
  rd_ops: string;
  wr_ops: string;
  tx_bytes: string;
  rx_bytes: string;
  cputime: string;
  uptime: string;
  vcpus: string;
}

/** Sum `virsh domstats --raw` counters (pure). cputime in seconds, as the module's xend cpu_time. */
export function parseDomstats(raw: string): Omit<DomUStats, 'uptime'> & { hasVcpus: boolean; hasCpu: boolean } {
  const kv = new Map<string, string>();
  for (const line of raw.split('\n')) {
    const m = /^\s*([\w.]+)=(.*)$/.exec(line);
    if (m) kv.set(m[1], m[2].trim());
  }
  const sum = (re: RegExp) => {
    let s = 0n;
    for (const [k, v] of kv) if (re.test(k) && /^\d+$/.test(v)) s += BigInt(v);
    return s.toString();
  };
  const cpuNs = kv.get('cpu.time');
  const vcpus = kv.get('vcpu.current');
  return {
    rd_bytes: sum(/^block\.\d+\.rd\.bytes$/),
    wr_bytes: sum(/^block\.\d+\.wr\.bytes$/),
    rd_ops: sum(/^block\.\d+\.rd\.reqs$/),
    wr_ops: sum(/^block\.\d+\.wr\.reqs$/),
    tx_bytes: sum(/^net\.\d+\.tx\.bytes$/),
    rx_bytes: sum(/^net\.\d+\.rx\.bytes$/),
    cputime: cpuNs && /^\d+$/.test(cpuNs) ? nsToSeconds(BigInt(cpuNs)) : '0',
    vcpus: vcpus && /^\d+$/.test(vcpus) ? vcpus : '0',
    hasCpu: Boolean(cpuNs),
    hasVcpus: Boolean(vcpus),
  };
}

function nsToSeconds(ns: bigint): string {
  const s = ns / 1_000_000_000n;
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return frac ? `${s}.${frac}` : s.toString();
}

/** vcpus and cpu time from `virsh dominfo` (pure): "CPU(s): 2", "CPU time: 12.5s". */
export function parseDominfo(out: string): { vcpus?: string; cputime?: string } {
  const v = /^CPU\(s\):\s*(\d+)/m.exec(out)?.[1];
  const t = /^CPU time:\s*([\d.]+)s/m.exec(out)?.[1];
  return { vcpus: v, cputime: t };
}

/** Seconds a process has run, from /proc/<pid>/stat starttime and /proc/uptime (pure). */
export function processUptime(pidStat: string, procUptime: string, clkTck = 100): string {
  const start = Number(parseStat(pidStat)?.start) / clkTck;
  const up = Number(procUptime.split(' ')[0]);
  const s = up - start;
  return Number.isFinite(s) && s >= 0 ? s.toFixed(2) : '0';
}

/** `xl list <name>` → {domid, vcpus, cputime} (pure). Columns: Name ID Mem VCPUs State Time(s). */
export function parseXlList(out: string, name: string): { domid: string; vcpus: string; cputime: string } | undefined {
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === name && f.length >= 6) return { domid: f[1], vcpus: f[3], cputime: f[5] };
  }
  return undefined;
}

/** `xl uptime <name>` → seconds (pure). Uptime is "[N day[s],] H:MM:SS". */
export function parseXlUptime(out: string, name: string): string {
  for (const line of out.split('\n')) {
    if (!line.trim().startsWith(name + ' ')) continue;
    const m = /(?:(\d+)\s+days?,\s*)?(\d+):(\d\d):(\d\d)\s*$/.exec(line.trim());
    if (m) return String(Number(m[1] ?? 0) * 86400 + Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4]));
  }
  return '0';
}

/** A CloudStack VM name: i-<account>-<id>-<instance.name>, r-<id>-<instance.name>, s-, v- (args.ts). */
export const VmName = refine(T.String({ description: 'a CloudStack VM name (i-2-29-VM, r-4-VM, i-2-29-PROD with instance.name PROD, ...)' }), (v): string => {
  const s = plainText(v, 256);
  if (!isCloudStackVmName(s)) throw new Invalid(`"${s}" is not a CloudStack VM name (i-<account>-<id>-<instance.name>, r-<id>-<instance.name>, s-, v-; instance.name is "VM" by default and has no "-", " " or "+")`);
  return s;
});

function notFound(name: string, stderr: string): BrickError {
  return new BrickError('NOT_FOUND', `domain ${name}: not found (${stderr.trim().split('\n')[0] || 'no such domain'})`);
}

const DOMAIN_MISSING = /failed to get domain|Domain not found|no domain with matching name|is an invalid domain identifier/i;

async function virsh(ctx: CallContext, uri: string, args: string[], name: string) {
  const r = await ctx.run('virsh', ['-c', uri, ...args], { timeoutMs: Math.max(1, Math.min(15_000, ctx.remainingMs())), allowFailure: true });
  if (r.code !== 0) {
    if (DOMAIN_MISSING.test(r.stderr)) throw notFound(name, r.stderr);
    throw new BrickError('COMMAND_FAILED', `virsh ${args[0]} ${name}: exit ${r.code}: ${r.stderr.trim().slice(-500)}`);
  }
  return r.stdout;
}

async function xl(ctx: CallContext, args: string[], name: string) {
  const r = await ctx.run('xl', args, { timeoutMs: Math.max(1, Math.min(15_000, ctx.remainingMs())), allowFailure: true });
  if (r.code !== 0) {
    if (/not found|invalid domain|cannot be found/i.test(r.stderr)) throw notFound(name, r.stderr);
    throw new BrickError('COMMAND_FAILED', `xl ${args[0]} ${name}: exit ${r.code}: ${r.stderr.trim().slice(-500)}`);
  }
  return r.stdout;
}

async function readNum(path: string): Promise<bigint> {
  const s = (await readFile(path, 'utf8').catch(() => '0')).trim();
  return /^\d+$/.test(s) ? BigInt(s) : 0n;
}

async function qemuUptime(name: string): Promise<string> {
  try {
    const pid = (await readFile(`/run/libvirt/qemu/${name}.pid`, 'utf8')).trim();
    if (!/^\d+$/.test(pid)) return '0';
    return processUptime(await readFile(`/proc/${pid}/stat`, 'utf8'), await readFile('/proc/uptime', 'utf8'));
  } catch {
    return '0';
  }
}

async function domUStatsVirsh(ctx: CallContext, t: { uri: string }, name: string): Promise<DomUStats> {
  const raw = await virsh(ctx, t.uri, ['domstats', '--raw', '--cpu-total', '--vcpu', '--interface', '--block', name], name);
  const s = parseDomstats(raw);
  let { cputime, vcpus } = s;
  if (!s.hasCpu || !s.hasVcpus) {
    const info = parseDominfo(await virsh(ctx, t.uri, ['dominfo', name], name));
    if (!s.hasCpu && info.cputime) cputime = info.cputime;
    if (!s.hasVcpus && info.vcpus) vcpus = info.vcpus;
  }
  const uptime = t.uri.startsWith('qemu') ? await qemuUptime(name) : await xl(ctx, ['uptime', name], name).then((o) => parseXlUptime(o, name), () => '0');
  return { rd_bytes: s.rd_bytes, wr_bytes: s.wr_bytes, rd_ops: s.rd_ops, wr_ops: s.wr_ops, tx_bytes: s.tx_bytes, rx_bytes: s.rx_bytes, cputime, uptime, vcpus };
}

async function domUStatsXl(ctx: CallContext, name: string): Promise<DomUStats> {
  const l = parseXlList(await xl(ctx, ['list', name], name), name);
  if (!l) throw notFound(name, '');
  const uptime = parseXlUptime(await xl(ctx, ['uptime', name], name), name);
  const entries = await readdir('/sys/devices').catch(() => [] as string[]);
  let rd = 0n, wr = 0n, rdo = 0n, wro = 0n, tx = 0n, rx = 0n;
  for (const e of entries) {
    const vbd = new RegExp(`^vbd-${l.domid}-(\\d+)$`).exec(e);
    if (vbd) {
      const b = `/sys/devices/${e}/statistics`;
      rd += (await readNum(`${b}/rd_sect`)) * 512n;
      wr += (await readNum(`${b}/wr_sect`)) * 512n;
      rdo += await readNum(`${b}/rd_req`);
      wro += await readNum(`${b}/wr_req`);
    }
    const vif = new RegExp(`^vif-${l.domid}-(\\d+)$`).exec(e);
    if (vif) {
      const b = `/sys/devices/${e}/net/vif${l.domid}.${vif[1]}/statistics`;
      tx += await readNum(`${b}/tx_bytes`);
      rx += await readNum(`${b}/rx_bytes`);
    }
  }
  const s = (n: bigint) => n.toString();
  return { rd_bytes: s(rd), wr_bytes: s(wr), rd_ops: s(rdo), wr_ops: s(wro), tx_bytes: s(tx), rx_bytes: s(rx), cputime: l.cputime, uptime, vcpus: l.vcpus };
}

/** ovs_domU_stats(domain) → struct of strings; a name that is not a CloudStack VM name is INVALID_PARAMS. */
export async function domUStats([name]: [string], ctx: CallContext, tool: DomainTool = domainTool(ctx)): Promise<DomUStats> {
  return tool.tool === 'virsh' ? domUStatsVirsh(ctx, tool, name) : domUStatsXl(ctx, name);
}

/** "127.0.0.1:1", ":1", "[::1]:1" → "5901" (pure). */
export function vncPortFromDisplay(out: string): string | undefined {
  const m = /:(\d+)\s*$/.exec(out.trim());
  return m ? String(5900 + Number(m[1])) : undefined;
}

/** get_vncport(domain) → port as a string; "0" for a name that is not a CloudStack VM name (the module's answer). */
export async function getVncPort([s]: [string], ctx: CallContext, tool: DomainTool = domainTool(ctx)): Promise<string> {
  if (!isCloudStackVmName(s)) {
    ctx.log.info({ domain: s }, 'get_vncport: not a CloudStack VM name; answering "0" as the Ovm3 module does');
    return '0';
  }
  if (tool.tool === 'virsh') {
    const r = await ctx.run('virsh', ['-c', tool.uri, 'vncdisplay', s], { timeoutMs: Math.max(1, Math.min(15_000, ctx.remainingMs())), allowFailure: true });
    if (r.code !== 0) {
      if (DOMAIN_MISSING.test(r.stderr)) throw notFound(s, r.stderr);
      throw new BrickError('NOT_FOUND', `domain ${s}: has no VNC display (${r.stderr.trim().split('\n')[0]})`);
    }
    const port = vncPortFromDisplay(r.stdout);
    if (!port) throw new BrickError('NOT_FOUND', `domain ${s}: has no VNC display`);
    return port;
  }
  const domid = (await xl(ctx, ['domid', s], s)).trim();
  if (!/^\d+$/.test(domid)) throw notFound(s, '');
  const r = await ctx.run('xenstore-read', [`/local/domain/${domid}/console/vnc-port`], { timeoutMs: 5000, allowFailure: true });
  const port = r.stdout.trim();
  if (r.code !== 0 || !/^\d+$/.test(port)) throw new BrickError('NOT_FOUND', `domain ${s}: has no VNC display`);
  return port;
}
