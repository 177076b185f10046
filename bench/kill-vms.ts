// kill-vms figures on a real kernel NFS client (issue 18), by hand:
//   node --import tsx bench/kill-vms.ts [--runs N] [CASE...]
// CASE: idle | odirect | buffered (the scenario test/e2e/kill-vms.test.ts asserts once per npm test;
// here each is repeated N times for the figures), explore-ssk | explore-umountf | explore-none
// (test/e2e/guest/scenarios/kill-vms-explore.sh, no fencer: what the 6.1 kernel shows of writes
// pending to a dead NFS server, and whether a killed writer's write lands after the restore).
// One guest at a time (TCG is CPU-heavy). Per run it prints the outcome (spared or reset), cut →
// every holder gone, cut → spared/reset (guest clock), the reset's reason, and `uptime`'s load;
// everything goes to bench/out/kill-vms.json. bench/KILL-VMS.md holds the figures measured so far.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { ensureImage } from '../test/e2e/image.js';
import { Vm } from '../test/e2e/vm.js';
import { KILL_VMS_TIMING as T } from '../test/e2e/support.js';

const argv = process.argv.slice(2);
const ri = argv.indexOf('--runs');
const runs = ri >= 0 ? Number(argv.splice(ri, 2)[1]) : 1;
const cases = argv.length ? argv : ['idle', 'odirect', 'buffered'];
const up = (t: string) => Number(/uptime=(\d+\.\d+)/.exec(t)?.[1]);
const r2 = (n: number) => Math.round(n * 100) / 100;

const image = await ensureImage();
const results: unknown[] = [];
for (let r = 0; r < runs; r++) {
  for (const c of cases) {
    const explore = c.startsWith('explore-');
    const load = loadavg()[0];
    const vm = explore
      ? new Vm(image, { scenario: 'kill-vms-explore', args: { action: c.slice(8), part1: r === 0 ? 'yes' : 'no' }, hardLimitMs: 12 * 60_000 })
      : new Vm(image, { scenario: 'kill-vms', args: { ...T, case: c }, hardLimitMs: 13 * 60_000 });
    const exit = await vm.exited;
    const log = readFileSync(vm.logPath, 'utf8');
    const ev = (n: string) => vm.events.find((e) => e.event === n);
    const cut = ev('cut');
    const out: Record<string, unknown> = { case: c, run: r + 1, load_1min: r2(load), console: vm.logPath, failures: vm.failures() };
    if (explore) {
      for (const e of vm.events) if (e.event === 'data' || ['late-result', 'probe-inode-dirty-for', 'ssk-rc', 'umountf-rc'].includes(e.event)) out[e.event === 'data' ? e.text.split(' ')[0] : e.event] = e.event === 'data' ? e.text.slice(e.text.indexOf(' ') + 1) : e.text;
    } else {
      const gone = ev('holders-gone');
      const reset = vm.kernelUptime(/sysrq: Resetting|softdog: Initiating system reboot/);
      out.outcome = exit.clean ? 'spared' : reset !== undefined ? 'reset' : 'killed by the harness';
      out.cut_to_holders_gone_s = cut && gone ? r2(up(gone.text) - up(cut.text)) : null;
      out.cut_to_spared_s = cut && ev('spared') ? r2(up(ev('spared')!.text) - up(cut.text)) : null;
      out.cut_to_reset_s = cut && reset !== undefined ? r2(reset - up(cut.text)) : null;
      out.restore_to_verified_s = ev('restored') && ev('verified-again') ? r2(up(ev('verified-again')!.text) - up(ev('restored')!.text)) : null;
      out.reset_reason = /FENCING this host: ([^"]*)/.exec(log)?.[1] ?? null;
      out.killed = [...log.matchAll(/kill-vms: SIGKILL pid \d+ \((\w+)\)/g)].map((m) => m[1]);
    }
    results.push(out);
    process.stdout.write(JSON.stringify(out) + '\n');
  }
}
const dir = join(import.meta.dirname, 'out');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'kill-vms.json'), JSON.stringify({ at: new Date().toISOString(), timing: T, results }, null, 2) + '\n');
