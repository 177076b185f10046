// End-to-end fencing times on a real kernel (test/e2e: Debian kernel under qemu TCG), repeated for
// min/median/max: NFS cut -> sysrq reset, SIGSTOPped fencer -> softdog reset, and resume from a
// suspend to RAM past fence_after_s -> sysrq reset (fence_after_s 10 there), on the guest
// kernel's clock (/proc/uptime at the cut/stop to the printk time of the reset line). Printed and
// written to bench/out/e2e.json (merged with what the e2e tests recorded). Not a test: it never
// fails on a time.
//   node --import tsx bench/e2e.ts [runs per scenario, default 3]
import { ensureImage } from '../test/e2e/image.js';
import { Vm } from '../test/e2e/vm.js';
import { TIMING, SUSPEND_TIMING, RESUME_FENCE_BOUND_S, SUSPEND_FIGURE_TITLE, figure, recordE2e, uptimeField } from '../test/e2e/support.js';

/** Seconds from the guest's cut/stop line to the reset, on the guest kernel's clock (printk time). */
async function once(image: Awaited<ReturnType<typeof ensureImage>>, scenario: string, event: string, reset: RegExp): Promise<number | undefined> {
  const vm = new Vm(image, { scenario, args: TIMING, hardLimitMs: 4 * 60_000 });
  try {
    const at = await vm.waitFor(event, 180_000);
    const exit = await vm.exited;
    if (exit.clean || vm.failures().length) {
      process.stderr.write(`bench e2e: ${scenario} did not end in a reset (${vm.failures().join('; ')}); console: ${vm.logPath}\n`);
      return undefined;
    }
    const resetAt = vm.kernelUptime(reset);
    if (resetAt === undefined) {
      process.stderr.write(`bench e2e: ${scenario}: no kernel line matching ${reset}; console: ${vm.logPath}\n`);
      return undefined;
    }
    return Math.round((resetAt - uptimeField(at)) * 1000) / 1000;
  } catch (e) {
    process.stderr.write(`bench e2e: ${scenario}: ${(e as Error).message}\n`);
    return undefined;
  } finally {
    vm.kill();
  }
}

/**
 * fence-suspend: seconds from the kernel's "PM: suspend exit" after the long suspend to the sysrq reset,
 * both printk times (that clock stops while suspended, as CLOCK_MONOTONIC does); the short suspend
 * before it must have survived.
 */
async function suspendOnce(image: Awaited<ReturnType<typeof ensureImage>>): Promise<number | undefined> {
  const vm = new Vm(image, { scenario: 'fence-suspend', args: SUSPEND_TIMING, hardLimitMs: 4 * 60_000 });
  try {
    await vm.waitFor('survived', 180_000);
    await vm.waitFor('resumed-long', 90_000);
    const exit = await vm.exited;
    const resumed = vm.kernelUptime(/PM: suspend exit/);
    const reset = vm.kernelUptime(/sysrq: Resetting/);
    if (exit.clean || vm.failures().length || resumed === undefined || reset === undefined) {
      process.stderr.write(`bench e2e: fence-suspend did not end in a reset after resume (${vm.failures().join('; ')}); console: ${vm.logPath}\n`);
      return undefined;
    }
    return Math.round((reset - resumed) * 1000) / 1000;
  } catch (e) {
    process.stderr.write(`bench e2e: fence-suspend: ${(e as Error).message}\n`);
    return undefined;
  } finally {
    vm.kill();
  }
}

async function main(): Promise<void> {
  const runs = Math.max(1, Number(process.argv[2] ?? 3));
  const image = await ensureImage();
  const cut: number[] = [];
  const stop: number[] = [];
  const resume: number[] = [];
  for (let i = 0; i < runs; i++) {
    const a = await once(image, 'fence-nfs', 'cut', /sysrq: Resetting/);
    if (a !== undefined) cut.push(a);
    const b = await once(image, 'fence-sigstop', 'stop', /softdog: Initiating system reboot/);
    if (b !== undefined) stop.push(b);
    const c = await suspendOnce(image);
    if (c !== undefined) resume.push(c);
  }
  recordE2e(
    [
      figure('fence_nfs_cut_to_reset_s', 'NFS cut to sysrq reset (guest kernel clock: uptime at the cut to the printk time of "sysrq: Resetting")', 's', cut, TIMING.fence_after_s + 1),
      figure('sigstop_to_softdog_reset_s', 'SIGSTOP of the fencer to softdog reset (guest kernel clock: uptime at the stop to the printk time of the softdog reboot)', 's', stop, TIMING.watchdog_timeout_s),
      figure('suspend_resume_to_reset_s', SUSPEND_FIGURE_TITLE, 's', resume, RESUME_FENCE_BOUND_S),
    ],
    `bench/e2e.ts: ${runs} runs each; probe ${TIMING.probe_interval_s}/${TIMING.probe_timeout_s} s, fence_after_s ${TIMING.fence_after_s} (${SUSPEND_TIMING.fence_after_s} for fence-suspend), watchdog_timeout_s ${TIMING.watchdog_timeout_s}; qemu TCG, kernel ${image.kernelVersion}`,
  );
}

main().catch((e) => {
  process.stderr.write(`bench e2e: ${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
