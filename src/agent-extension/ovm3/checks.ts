// Reachability checks: check_dom0_port / check_domr_port (a TCP connect), ping (ping -c with a
// validated host) and check_dom0_ip (does a local interface hold this address).
import { connect } from 'node:net';
import type { CallContext } from '../../rpc/catalogue.js';
import { ipBits } from './args.js';
import { runIp } from '../../shared/ip-dump.js';
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

/** check_dom0_port(ip, port=3922, timeout=3) / check_domr_port: → whether it connected (methods.ts turns false into each call's reply). */
export async function checkPort([host, givenPort, t = 3]: [string, number?, number?], ctx: CallContext): Promise<boolean> {
  const port = givenPort ?? ctx.config.ovm3.ssh_port;
  return tcpConnect(host, port, Math.max(1, Math.min(t * 1000, ctx.remainingMs() - 20)));
}

/** argv for ping (pure). -n: no reverse lookups; -W: seconds to wait for a reply; ping picks v4/v6 from the address. */
export function pingArgv(host: string, count: number, waitS: number): string[] {
  return ['-n', '-q', '-c', String(count), '-W', String(waitS), '--', host];
}

/** ping(host[, count=1]) → true when a reply came back. */
export async function ping([host, count = 1]: [string, number?], ctx: CallContext): Promise<boolean> {
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
export async function checkDom0Ip([ip]: [string], ctx: CallContext): Promise<boolean> {
  const netns = ctx.config.network.namespace || undefined;
  // an address missed by an interrupted dump would answer "not this host's": read again (shared/ip-dump.ts)
  const r = await runIp(ctx.run, ['-json', 'addr', 'show'], { timeoutMs: Math.max(1, Math.min(10_000, ctx.remainingMs())), netns });
  return addressesOf(r.stdout).some((a) => sameAddress(a, ip));
}
