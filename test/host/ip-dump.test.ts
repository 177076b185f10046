// Interrupted netlink dumps on the real kernel and iproute2: in a namespace with 600 bridges while
// another process adds and deletes a link in a loop, `ip -json link show` is often answered with
// "Dump was interrupted and may be inconsistent." and exit 0. brick reads such a listing again and
// never hands it to the code that plans (src/shared/ip-dump.ts).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { delNs, ipn, networkConfig, needsRootAndIp, randomNs } from '../fixtures/network-ctx.js';
import { netHost } from '../../src/network/host/netns.js';
import { readLinux } from '../../src/network/host/link-state.js';
import { ipReader } from '../../src/network/host/ip-reader.js';
import { DUMP_INTERRUPTED } from '../../src/shared/ip-dump.js';
import { run, type Runner, type RunResult } from '../../src/shared/run.js';

const skip = needsRootAndIp();
const BRIDGES = 600;

describe('interrupted dumps on the real kernel', { skip }, () => {
  const ns = randomNs('brick-dump');
  let churn: ChildProcess | undefined;
  let churnTimer: NodeJS.Timeout | undefined;
  /** Every `ip` process brick ran, with what it printed. */
  const ran: Array<{ args: string[]; r: RunResult }> = [];
  const recording: Runner = Object.assign(
    async (cmd: string, args: readonly string[], opts: Parameters<Runner>[2]) => {
      const r = await run(cmd, args, opts);
      if (cmd === 'ip') ran.push({ args: [...args], r });
      return r;
    },
    { session: run.session },
  );

  before(async () => {
    await run('ip', ['netns', 'add', ns], { timeoutMs: 10_000 });
    const lines = Array.from({ length: BRIDGES }, (_, i) => `link add b${i} type bridge`);
    await run('ip', ['-n', ns, '-batch', '-'], { timeoutMs: 60_000, input: lines.join('\n') + '\n' });
    await ipn(ns, 'link', 'set', 'b0', 'up');
    await ipn(ns, 'addr', 'add', '10.77.0.1/16', 'dev', 'b0');
    // Another process changing links all the while: one `ip -batch` fed a link add and del every
    // 2 ms (no process per change, so little CPU taken from tests running beside this one).
    churn = spawn('ip', ['-n', ns, '-force', '-batch', '-'], { stdio: ['pipe', 'ignore', 'ignore'] });
    churn.stdin!.on('error', () => {});
    churnTimer = setInterval(() => churn?.stdin?.write('link add churn type bridge\nlink del churn\n'), 2);
  });
  after(async () => {
    clearInterval(churnTimer);
    churn?.kill('SIGKILL');
    ipReader(run, ns, 'link').close();
    ipReader(run, ns, 'addr').close();
    await delNs(ns);
  });

  it('a listing is read again while interrupted: every answer brick uses is whole, and none printed the warning', async () => {
    const host = { ...netHost(networkConfig({ namespace: ns, backend: 'linuxbridge' }), recording), ipQuery: undefined };
    const used: RunResult[] = [];
    const interruptedNow = () => ran.filter((x) => DUMP_INTERRUPTED.test(x.r.stderr)).length;
    // at least 80 reads, and on until 3 were interrupted (a loaded machine slows the churn as much as the reads)
    for (let i = 0; i < 1000 && (i < 80 || interruptedNow() < 3); i++) used.push(await host.ip(['-json', '-details', 'link', 'show']));
    const interrupted = ran.filter((x) => DUMP_INTERRUPTED.test(x.r.stderr));
    // the kernel did interrupt dumps here (else this test shows nothing): 28 of 100 when measured
    assert.ok(interrupted.length > 0, `no dump of ${ran.length} was interrupted: the churn did not reach the dumps`);
    // one more read for each interrupted one, none used
    assert.equal(ran.length, used.length + interrupted.length);
    for (const r of used) {
      assert.doesNotMatch(r.stderr, DUMP_INTERRUPTED);
      const names = new Set((JSON.parse(r.stdout) as Array<{ ifname: string }>).map((l) => l.ifname));
      for (let b = 0; b < BRIDGES; b++) assert.ok(names.has(`b${b}`), `b${b} missing from an answer brick used`);
    }
    process.stdout.write(`ip-dump: ${interrupted.length} of ${ran.length} link dumps interrupted under churn; each read again\n`);
  });

  it('readLinux through the standing readers (which give up on such a reply) answers whole states under churn', async () => {
    ran.length = 0;
    const host = netHost(networkConfig({ namespace: ns, backend: 'linuxbridge' }), recording);
    for (let i = 0; i < 30; i++) {
      const s = await readLinux(host);
      for (let b = 0; b < BRIDGES; b++) assert.ok(s.links.has(`b${b}`), `b${b} missing from network state ${i}`);
      assert.ok(s.addrs.some((a) => a.dev === 'b0' && a.address === '10.77.0.1'), 'b0\'s address is there');
    }
    const own = ran.filter((x) => x.args.includes('show'));
    process.stdout.write(`ip-dump: 30 network states under churn; ${own.length} reads by processes of brick's own (routes, and links or addresses a reader gave up on), ${own.filter((x) => DUMP_INTERRUPTED.test(x.r.stderr)).length} of them interrupted and read again\n`);
  });
});
