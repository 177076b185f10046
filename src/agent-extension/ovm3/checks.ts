// Reachability checks: check_dom0_port / check_domr_port (a TCP connect), ping (ping -c with a
// validated host) and check_dom0_ip (does a local interface hold this address).
import { connect } from 'node:net';
import type { CallContext } from '../../rpc/catalogue.js';
import { hostOrIp, int, ipBits, ipLiteral, port as portArg, seconds } from './args.js';
import { isIP } from 'node:net';

/** A TCP connect to host:port within timeoutMs; true when it connects. Never throws for a refused/unreachable peer. */
export function tcpConnect(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.removeAllListeners();
      sock.on('error', () => {});
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

function optionalSeconds(name: string, v: unknown, def: number, max: number): number {
  return v === undefined || v === null ? def : seconds(name, v, max);
}

/** check_dom0_port(ip, port=3922, timeout=3) / check_domr_port: → boolean. */
export async function checkPort(args: unknown[], ctx: CallContext): Promise<boolean> {
  const host = hostOrIp('ip', args[0]);
  const port = args[1] === undefined || args[1] === null ? ctx.config.ovm3.ssh_port : portArg('port', args[1]);
  const t = optionalSeconds('timeout', args[2], 3, 600);
  return tcpConnect(host, port, Math.max(1, Math.min(t * 1000, ctx.remainingMs() - 20)));
}

/** argv for ping (pure). -n: no reverse lookups; -W: seconds to wait for a reply; ping picks v4/v6 from the address. */
export function pingArgv(host: string, count: number, waitS: number): string[] {
  return ['-n', '-q', '-c', String(count), '-W', String(waitS), '--', host];
}

/** ping(host[, count=1]) → true when a reply came back. */
export async function ping(args: unknown[], ctx: CallContext): Promise<boolean> {
  const host = hostOrIp('host', args[0]);
  const count = args[1] === undefined || args[1] === null ? 1 : int('count', args[1], 1, 10);
  const waitS = 2;
  const r = await ctx.run('ping', pingArgv(host, count, waitS), {
    timeoutMs: Math.max(1, Math.min((count + waitS + 3) * 1000, ctx.remainingMs() - 20)),
    allowFailure: true,
  });
  return r.code === 0;
}

/** The addresses in `ip -json addr` output (pure). */
export function addressesOf(ipJson: string): string[] {
  const links = JSON.parse(ipJson || '[]') as Array<{ addr_info?: Array<{ local?: string }> }>;
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => a.local).filter((a): a is string => typeof a === 'string'));
}

function sameAddress(a: string, b: string): boolean {
  const fa = isIP(a);
  return fa !== 0 && fa === isIP(b) && ipBits(a) === ipBits(b);
}

/** check_dom0_ip(ip) → true when an interface of this host (or of network.namespace) holds ip. */
export async function checkDom0Ip(args: unknown[], ctx: CallContext): Promise<boolean> {
  const ip = ipLiteral('ip', args[0]);
  const r = await ctx.run('ip', ['-json', 'addr', 'show'], {
    timeoutMs: Math.max(1, Math.min(10_000, ctx.remainingMs())),
    netns: ctx.config.network.namespace || undefined,
  });
  return addressesOf(r.stdout).some((a) => sameAddress(a, ip));
}
