// The fencer on a real kernel (Debian's, under qemu): a hard NFS mount from the guest's own kernel
// NFS server, softdog, sysrq. Cutting NFS must reset the guest within fence_after_s + 1 s of the
// cut; a SIGSTOPped fencer must be reset by softdog within watchdog_timeout_s. "Reset" is qemu
// exiting (-no-reboot) without the guest's clean "end" line; the times are the host's clock from the
// guest's "cut"/"stop" console line to qemu's exit, printed and recorded in bench/out/e2e.json.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ensureImage, type GuestImage } from './image.js';
import { Vm } from './vm.js';
import { TIMING, SUSPEND_TIMING, RESUME_FENCE_BOUND_S, SUSPEND_FIGURE_TITLE, HOST_SLACK_S, GUEST_CLOCK_SLACK_S, vmUnavailable, recordE2e, figure, secondsBetween, uptimeField } from './support.js';

const skip = vmUnavailable();

describe('e2e: fencing on a real kernel', { skip, timeout: 15 * 60_000 }, () => {
  let image: GuestImage;
  before(async () => {
    image = await ensureImage();
  }, { timeout: 10 * 60_000 });

  it('an NFS cut (nft DROP on 2049) resets the guest through sysrq within fence_after_s + 1 s', { timeout: 5 * 60_000 }, async () => {
    const vm = new Vm(image, { scenario: 'fence-nfs', args: TIMING, hardLimitMs: 4 * 60_000 });
    try {
      const healthy = await vm.waitFor('healthy', 150_000);
      const cut = await vm.waitFor('cut', 30_000);
      const exit = await vm.exited;
      assert.deepEqual(vm.failures(), [], `guest reported failures; console: ${vm.logPath}`);
      assert.equal(exit.clean, false, `the guest powered off cleanly instead of being reset; console: ${vm.logPath}`);
      const log = readFileSync(vm.logPath, 'utf8');
      assert.match(log, /FENCING this host: pool \/mnt\/pool/, 'the fencer logged its decision');
      assert.match(log, /sysrq: Resetting/, 'the reset came from sysrq b (action = "reboot"), not from softdog');
      const hostS = secondsBetween(cut.hostMs, exit.hostMs);
      const resetAt = vm.kernelUptime(/sysrq: Resetting/);
      assert.ok(resetAt !== undefined, `no printk timestamp on "sysrq: Resetting"; console: ${vm.logPath}`);
      const guestS = Math.round((resetAt - uptimeField(cut)) * 1000) / 1000;
      const bound = TIMING.fence_after_s + 1;
      recordE2e(
        [
          figure('fence_nfs_cut_to_reset_s', 'NFS cut to sysrq reset (guest kernel clock: uptime at the cut to the printk time of "sysrq: Resetting")', 's', [guestS], bound),
          figure('fence_nfs_cut_to_qemu_exit_s', 'NFS cut to qemu exit (host clock: the cut line\'s arrival to qemu\'s exit)', 's', [hostS], bound + HOST_SLACK_S),
        ],
        `fence-nfs: probe ${TIMING.probe_interval_s}/${TIMING.probe_timeout_s} s, fence_after_s ${TIMING.fence_after_s}; healthy after ${secondsBetween(vm.startedMs, healthy.hostMs)} s of VM time`,
      );
      assert.ok(guestS <= bound, `reset ${guestS} s after the cut (guest clock); must be within fence_after_s + 1 = ${bound} s; console: ${vm.logPath}`);
      assert.ok(hostS <= bound + HOST_SLACK_S, `qemu exited ${hostS} s after the cut line (host clock); bound ${bound} s + ${HOST_SLACK_S} s console/exit latency; console: ${vm.logPath}`);
      assert.ok(hostS >= TIMING.fence_after_s - TIMING.probe_interval_s - TIMING.probe_timeout_s, `reset only ${hostS} s after the cut: too early to be the fencer's expiry`);
    } finally {
      vm.kill();
    }
  });

  it('a suspend to RAM past fence_after_s fences on resume; a shorter one does not', { timeout: 5 * 60_000 }, async () => {
    // CLOCK_MONOTONIC and softdog stop while the host is suspended; the peers do not, and a host
    // whose heartbeat was silent for longer than fence_after_s may have had its VMs started elsewhere.
    const vm = new Vm(image, { scenario: 'fence-suspend', args: SUSPEND_TIMING, hardLimitMs: 4 * 60_000 });
    try {
      await vm.waitFor('healthy', 150_000);
      const short = await vm.waitFor('resumed-short', 60_000);
      await vm.waitFor('survived', 60_000);
      const long = await vm.waitFor('resumed-long', 90_000);
      const exit = await vm.exited;
      assert.deepEqual(vm.failures(), [], `guest reported failures; console: ${vm.logPath}`);
      assert.equal(exit.clean, false, `the guest powered off cleanly instead of being reset; console: ${vm.logPath}`);
      const slept = (e: typeof short) => uptimeField(e) - Number(/before=([0-9.]+)/.exec(e.text)?.[1]);
      const shortS = Math.round(slept(short) * 1000) / 1000;
      const longS = Math.round(slept(long) * 1000) / 1000;
      // The RTC alarm has whole seconds: "+2" fires 1-2 s after it is set, and entering S3 takes part of that.
      assert.ok(shortS >= 0.5 && longS > SUSPEND_TIMING.fence_after_s, `the guest did not sleep as asked (short ${shortS} s, long ${longS} s by its boot clock); console: ${vm.logPath}`);
      const log = readFileSync(vm.logPath, 'utf8');
      const fenceAt = log.indexOf('FENCING this host');
      assert.ok(fenceAt > log.indexOf(' survived fencer'), `the fencer fenced during the short suspend (or never); console: ${vm.logPath}`);
      assert.match(log, /FENCING this host: pool \/mnt\/pool/, 'the fencer logged its decision');
      assert.match(log, /sysrq: Resetting/, 'the reset came from sysrq b (action = "reboot")');
      assert.match(log, /the host was suspended for/, 'the fencer said why');
      // The printk clock stops while suspended, as CLOCK_MONOTONIC does: resume and reset on one clock.
      const resumedAt = vm.kernelUptime(/PM: suspend exit/);
      const resetAt = vm.kernelUptime(/sysrq: Resetting/);
      assert.ok(resumedAt !== undefined && resetAt !== undefined, `no printk timestamp on "PM: suspend exit" or "sysrq: Resetting"; console: ${vm.logPath}`);
      const guestS = Math.round((resetAt - resumedAt) * 1000) / 1000;
      const bound = RESUME_FENCE_BOUND_S;
      recordE2e(
        [
          figure('suspend_resume_to_reset_s', SUSPEND_FIGURE_TITLE, 's', [guestS], bound),
        ],
        `fence-suspend: S3 woken by the RTC alarm; a ${shortS} s suspend survived, a ${longS} s one (fence_after_s ${SUSPEND_TIMING.fence_after_s}) fenced`,
      );
      assert.ok(guestS >= 0 && guestS <= bound, `reset ${guestS} s after resuming (guest clock); must be within ${bound} s (the fencer's first tick after resume); console: ${vm.logPath}`);
    } finally {
      vm.kill();
    }
  });

  it('a SIGSTOPped fencer is reset by softdog within watchdog_timeout_s', { timeout: 5 * 60_000 }, async () => {
    const vm = new Vm(image, { scenario: 'fence-sigstop', args: TIMING, hardLimitMs: 4 * 60_000 });
    try {
      await vm.waitFor('healthy', 150_000);
      const stop = await vm.waitFor('stop', 30_000);
      const exit = await vm.exited;
      assert.deepEqual(vm.failures(), [], `guest reported failures; console: ${vm.logPath}`);
      assert.equal(exit.clean, false, `the guest powered off cleanly instead of being reset; console: ${vm.logPath}`);
      const log = readFileSync(vm.logPath, 'utf8');
      assert.match(log, /softdog: Initiating system reboot/, 'the reset came from softdog');
      assert.doesNotMatch(log, /FENCING this host/, 'the stopped fencer cannot have decided anything');
      const hostS = secondsBetween(stop.hostMs, exit.hostMs);
      const resetAt = vm.kernelUptime(/softdog: Initiating system reboot/);
      assert.ok(resetAt !== undefined, `no printk timestamp on the softdog reboot; console: ${vm.logPath}`);
      const guestS = Math.round((resetAt - uptimeField(stop)) * 1000) / 1000;
      recordE2e(
        [
          figure('sigstop_to_softdog_reset_s', 'SIGSTOP of the fencer to softdog reset (guest kernel clock: uptime at the stop to the printk time of the softdog reboot)', 's', [guestS], TIMING.watchdog_timeout_s),
          figure('sigstop_to_qemu_exit_s', 'SIGSTOP to qemu exit (host clock)', 's', [hostS], TIMING.watchdog_timeout_s + HOST_SLACK_S),
        ],
        `fence-sigstop: softdog soft_margin = watchdog_timeout_s = ${TIMING.watchdog_timeout_s} s`,
      );
      // uptime= is read right after the kill (shell builtins only); the last pet came before the kill
      assert.ok(
        guestS <= TIMING.watchdog_timeout_s + GUEST_CLOCK_SLACK_S,
        `softdog reset ${guestS} s after SIGSTOP (guest clock); must be within watchdog_timeout_s = ${TIMING.watchdog_timeout_s} s (+ ${GUEST_CLOCK_SLACK_S} s guest clock resolution and emulated timer latency); console: ${vm.logPath}`,
      );
      assert.ok(hostS <= TIMING.watchdog_timeout_s + HOST_SLACK_S, `qemu exited ${hostS} s after the stop line (host clock); bound ${TIMING.watchdog_timeout_s} s + ${HOST_SLACK_S} s; console: ${vm.logPath}`);
    } finally {
      vm.kill();
    }
  });
});
