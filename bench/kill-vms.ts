// fencer.action = "kill-vms" on a real kernel NFS client (issue 18; scenario test/e2e/guest/scenarios/kill-vms.sh).
// NOT in npm test yet: on this shared 2-core machine at load 25+ the TCG guest's probes took over
// probe_timeout_s (6 s) and both pools expired before the cut, and the kernel showed a dirty NFS
// inode with 0 kB dirty that brick counts as pending (see README, kill-vms findings); the cases
// below are the acceptance the issue asks for, run by hand:
//   node --import tsx --test bench/kill-vms.ts      (writes its figures to bench/out/e2e.json)
// The late-write rule: the guest may only be spared when nothing on it can still write to the cut
// pool. Readers on a server that refuses connections: spared, and the export's data (hashed on the
// server side) is unchanged >= 60 s after the server is back; heartbeats on the second export go on.
// An O_DIRECT writer and a buffered writer blocked on a partitioned server: their WRITEs stay queued
// in the kernel after the kill, so brick must reset the guest (qemu exits, sysrq b) as reboot would.
// Times (cut → all holders gone, cut → spared/reset) go to bench/out/e2e.json.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ensureImage, type GuestImage } from '../test/e2e/image.js';
import { Vm } from '../test/e2e/vm.js';
import { vmUnavailable, recordE2e, figure, uptimeField } from '../test/e2e/support.js';

const skip = vmUnavailable();
const KILL_TIMEOUT_S = 10;
/**
 * Longer than support.ts's TIMING: this guest runs two NFS mounts, two pools' probes and the
 * holders; under TCG on a loaded 2-core machine probes of 2 s never armed. 15 + 10 + 10 + 5 = 40 s < 60 s.
 */
const TIMING = { probe_interval_s: 2, probe_timeout_s: 6, fence_after_s: 15, watchdog_timeout_s: 10 } as const;
const ARGS = { ...TIMING, kill_timeout_s: KILL_TIMEOUT_S };

function uptimeOf(text: string): number {
  const m = /uptime=(\d+\.\d+)/.exec(text);
  if (!m) throw new Error(`no uptime= in "${text}"`);
  return Number(m[1]);
}
const r3 = (n: number) => Math.round(n * 1000) / 1000;

describe('e2e: kill-vms on a real NFS client', { skip, timeout: 40 * 60_000 }, () => {
  let image: GuestImage;
  before(async () => {
    image = await ensureImage();
  }, { timeout: 20 * 60_000 });

  it('readers on a partitioned server: killed, their queued requests destroyed (ss -K), guest spared, export unchanged 60 s after the restore, heartbeats on the other export go on', { timeout: 12 * 60_000 }, async () => {
    const vm = new Vm(image, { scenario: 'kill-vms', args: { ...ARGS, case: 'reader', cut: 'drop' }, hardLimitMs: 11 * 60_000 });
    try {
      const cut = await vm.waitFor('cut', 480_000);
      const gone = await vm.waitFor('holders-gone', (TIMING.fence_after_s + KILL_TIMEOUT_S + 30) * 1000);
      const spared = await vm.waitFor('spared', (KILL_TIMEOUT_S + 15) * 1000);
      const exit = await vm.exited;
      assert.deepEqual(vm.failures(), [], `guest reported failures; console: ${vm.logPath}`);
      assert.equal(exit.clean, true, `the guest was reset although nothing was pending; console: ${vm.logPath}`);
      const ok = vm.events.filter((e) => e.event === 'ok').map((e) => e.text.split(' ')[0]);
      assert.deepEqual(ok.filter((n) => ['heartbeats-on-B', 'no-late-write', 'pool-a-verified-again'].includes(n)).sort(), ['heartbeats-on-B', 'no-late-write', 'pool-a-verified-again']);
      const log = readFileSync(vm.logPath, 'utf8');
      assert.match(log, /kill-vms: SIGKILL pid \d+ \(dd\)|kill-vms: SIGKILL pid \d+ \(sh\)/);
      assert.doesNotMatch(log, /FENCING this host/);
      const goneS = r3(uptimeOf(gone.text) - uptimeField(cut));
      const sparedS = r3(uptimeOf(spared.text) - uptimeField(cut));
      recordE2e(
        [
          figure('kill_vms_reader_cut_to_holders_gone_s', 'kill-vms, readers on a partitioned NFS server: cut to every holder gone (guest clock)', 's', [goneS], TIMING.fence_after_s + 1 + KILL_TIMEOUT_S),
          figure('kill_vms_reader_cut_to_spared_s', 'kill-vms, readers: cut to "spared, no write pending" (guest clock)', 's', [sparedS], TIMING.fence_after_s + 1 + KILL_TIMEOUT_S),
        ],
        `kill-vms-reader (partition, nft DROP): probe ${TIMING.probe_interval_s}/${TIMING.probe_timeout_s} s, fence_after_s ${TIMING.fence_after_s}, kill_timeout_s ${KILL_TIMEOUT_S}; spared (no reset); export hash unchanged 62 s after the restore`,
      );
      assert.ok(goneS <= TIMING.fence_after_s + 1 + KILL_TIMEOUT_S, `holders gone ${goneS} s after the cut`);
    } finally {
      vm.kill();
    }
  });

  for (const c of ['odirect', 'buffered'] as const) {
    it(`${c === 'odirect' ? 'an O_DIRECT' : 'a buffered'} writer on a partitioned server: killed, but its WRITEs stay queued: reset (sysrq b) at kill_timeout_s`, { timeout: 11 * 60_000 }, async () => {
      const vm = new Vm(image, { scenario: 'kill-vms', args: { ...ARGS, case: c, cut: 'drop' }, hardLimitMs: 10 * 60_000 });
      try {
        const cut = await vm.waitFor('cut', 480_000);
        const exit = await vm.exited;
        assert.deepEqual(vm.failures(), [], `guest reported failures; console: ${vm.logPath}`);
        assert.equal(exit.clean, false, `the guest was spared although its writes were pending; console: ${vm.logPath}`);
        const log = readFileSync(vm.logPath, 'utf8');
        assert.match(log, /sysrq: Resetting/, 'reset through sysrq b, as action = "reboot"');
        assert.match(log, /FENCING this host: pool \/mnt\/pool .*kill-vms could not show within kill_timeout_s \(10 s\)/);
        assert.match(log, /writes still pending: .*(RPC task\(s\)|page cache|not yet acknowledged)/);
        const gone = vm.events.find((e) => e.event === 'holders-gone');
        assert.ok(gone, `the writer was not killed before the reset; console: ${vm.logPath}`);
        const resetAt = vm.kernelUptime(/sysrq: Resetting/)!;
        const goneS = r3(uptimeOf(gone.text) - uptimeField(cut));
        const resetS = r3(resetAt - uptimeField(cut));
        recordE2e(
          [
            figure(`kill_vms_${c}_cut_to_holders_gone_s`, `kill-vms, ${c} writer on a partitioned NFS server: cut to the writer gone (guest clock)`, 's', [goneS], TIMING.fence_after_s + 1 + KILL_TIMEOUT_S),
            figure(`kill_vms_${c}_cut_to_reset_s`, `kill-vms, ${c} writer: cut to the reset (writes still pending; guest clock)`, 's', [resetS], TIMING.fence_after_s + 1 + KILL_TIMEOUT_S + 1),
          ],
          `kill-vms-${c}: reset (writes pending after the kill: ${/writes still pending: ([^"]*)/.exec(log)?.[1]?.slice(0, 200) ?? '?'})`,
        );
        assert.ok(resetS <= TIMING.fence_after_s + 1 + KILL_TIMEOUT_S + 1, `reset ${resetS} s after the cut`);
      } finally {
        vm.kill();
      }
    });
  }
});
