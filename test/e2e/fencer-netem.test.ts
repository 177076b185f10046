// Slow storage must not fence: every NFS request is delayed (netem on lo, dport 2049) so that a whole
// heartbeat probe is 0.7 × probe_timeout_s slower, for BRICK_E2E_NETEM_S seconds (default 180).
// The guest must not reset, and the heartbeat must keep landing on the server (largest gap measured
// on the server's side < fence_after_s). Recorded in bench/out/e2e.json.
//
// The premise, every probe under probe_timeout_s, is measured, not assumed: a TCG guest on a loaded
// host spends seconds of emulated CPU in a probe's child processes. The guest waits for a settled
// baseline (scaling the probe timings 2x or 3x when the emulated CPU is too slow for them),
// calibrates the delay on the fencer's own probe latencies and restarts the window when a probe
// timed out (test/e2e/guest/scenarios/fence-netem.sh); the assertions use the timings it ran with. A guest reset is a false fence unless the
// fencer's log shows probes that really ran past probe_timeout_s (then the machine broke the premise:
// another VM tries, and when none gets a clean window the test fails saying so).
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { ensureImage, type GuestImage } from './image.js';
import { Vm } from './vm.js';
import { NETEM_TIMING as TIMING, vmUnavailable, recordE2e, figure } from './support.js';

const skip = vmUnavailable();
const NETEM_S = Number(process.env.BRICK_E2E_NETEM_S ?? 180);
/** How long one guest may look for a clean window (baselines, calibration, aborted windows included). */
const BUDGET_S = Math.round(NETEM_S * 2.5) + 700;
/** Boot, NFS and fencer start-up, 8 healthy heartbeats, the end: generous for TCG on a loaded machine. */
const VM_OVERHEAD_S = 300;
/** Guests tried when one is reset by a fence the machine caused (probes past probe_timeout_s). */
const VMS = 2;

/** The fencer's log lines (JSON after the journald priority prefix) that report a probe timing out. */
function timedOutProbes(vm: Vm): { latency_ms: number; msg: string }[] {
  const out: { latency_ms: number; msg: string }[] = [];
  for (const l of vm.lines) {
    const i = l.indexOf('{"');
    if (i < 0) continue;
    try {
      const j = JSON.parse(l.slice(i)) as { timed_out?: boolean; latency_ms?: number; msg?: string };
      if (j.timed_out === true && typeof j.latency_ms === 'number') out.push({ latency_ms: j.latency_ms, msg: j.msg ?? '' });
    } catch {
      /* not a fencer line */
    }
  }
  return out;
}

const field = (text: string, name: string) => Number(new RegExp(`\\b${name}=(-?[\\d.]+)`).exec(text)?.[1]);

describe('e2e: slow NFS (netem) on a real kernel', { skip, timeout: (VMS * (BUDGET_S + VM_OVERHEAD_S) + 600) * 1000 }, () => {
  let image: GuestImage;
  before(async () => {
    image = await ensureImage();
  }, { timeout: 10 * 60_000 });

  it(`NFS ${0.7} × probe_timeout_s slower per probe for ${NETEM_S} s: no reset, heartbeats keep landing`, { timeout: VMS * (BUDGET_S + VM_OVERHEAD_S) * 1000 }, async (t) => {
    const premiseMisses: string[] = [];
    for (let n = 1; n <= VMS; n++) {
      const vm = new Vm(image, {
        scenario: 'fence-netem',
        args: { ...TIMING, netem_s: NETEM_S, netem_budget_s: BUDGET_S },
        hardLimitMs: (BUDGET_S + VM_OVERHEAD_S) * 1000,
      });
      try {
        const result = await vm.waitFor('netem-result', (BUDGET_S + VM_OVERHEAD_S) * 1000).catch(async (e: Error) => {
          const exit = await Promise.race([vm.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 1000))]);
          if (!exit) throw e;
          assert.deepEqual(vm.failures(), [], `guest reported failures; console: ${vm.logPath}`);
          if (exit.clean) throw e;
          // Reset before a clean window ended. Legitimate only when probes really ran past probe_timeout_s.
          // (a scaled run's timeout is longer: the fencer's own timed_out flag and latency say it)
          const late = timedOutProbes(vm).filter((p) => p.latency_ms >= TIMING.probe_timeout_s * 1000);
          assert.ok(
            late.length > 0,
            `the guest was reset under slow NFS although no probe ran past probe_timeout_s (a false fence); guest failures: ${JSON.stringify(vm.failures())}; console: ${vm.logPath}`,
          );
          return undefined;
        });
        if (!result) {
          const late = timedOutProbes(vm).map((p) => Math.round(p.latency_ms));
          premiseMisses.push(`guest ${n}: reset after probes of ${late.join(', ')} ms (probe_timeout_s ${TIMING.probe_timeout_s}); console: ${vm.logPath}`);
          t.diagnostic(`fence-netem: ${premiseMisses.at(-1)}: the machine, not the storage, made the probes time out; trying another guest`);
          continue;
        }
        const exit = await vm.exited;
        assert.deepEqual(vm.failures(), [], `guest reported failures; console: ${vm.logPath}`);
        assert.equal(exit.clean, true, `the guest was reset under slow NFS (a false fence); console: ${vm.logPath}`);
        const plan = await vm.waitFor('netem-plan', 1);
        const on = vm.events.filter((e) => e.event === 'netem-on').at(-1)!;
        const ran = {
          window_s: field(result.text, 'window_s'),
          probe_interval_s: field(result.text, 'probe_interval_s'),
          probe_timeout_s: field(result.text, 'probe_timeout_s'),
          fence_after_s: field(result.text, 'fence_after_s'),
          scale: field(result.text, 'scale'),
        };
        const beats = field(result.text, 'heartbeats');
        const maxGap = field(result.text, 'max_gap_s');
        const probes = field(result.text, 'probes');
        const minProbe = field(result.text, 'min_probe_ms');
        const maxProbe = field(result.text, 'max_probe_ms');
        const added = field(plan.text, 'added_per_probe_ms');
        const baseline = field(plan.text, 'baseline_ms');
        const state = JSON.parse(vm.data('state-under-netem') ?? '{}') as { pools?: { probes_failed?: number }[] };
        const before = JSON.parse(vm.data('state-before-netem') ?? '{}') as { pools?: { probe_latency_ms?: { max: number | null } }[] };
        const aborts = vm.events.filter((e) => e.event === 'netem-abort').map((e) => e.text);
        recordE2e(
          [
            figure('netem_max_heartbeat_gap_s', `largest gap between heartbeats under netem (${ran.window_s} s, server side)`, 's', [maxGap], ran.fence_after_s),
            figure('netem_probe_latency_max_ms', 'slowest probe under netem (fencer state)', 'ms', [maxProbe], ran.probe_timeout_s * 1000),
            figure('netem_probe_latency_min_ms', 'fastest probe under netem (fencer state)', 'ms', [minProbe]),
            figure('netem_probe_latency_before_max_ms', 'slowest probe before netem (fencer state; TCG process start-up dominates)', 'ms', [before.pools?.[0]?.probe_latency_ms?.max ?? NaN]),
          ],
          `fence-netem: probe ${ran.probe_interval_s}/${ran.probe_timeout_s} s, fence_after_s ${ran.fence_after_s}${ran.scale !== 1 ? ` (${ran.scale} × the configured timings: healthy probes did not settle under 0.2 × probe_timeout_s)` : ''}; ${plan.text}; ${beats} heartbeats and ${probes} probes in ${ran.window_s} s, ${state.pools?.[0]?.probes_failed ?? '?'} probes failed in all; windows restarted: ${aborts.length}${premiseMisses.length ? `; guests reset by the machine: ${premiseMisses.length}` : ''}; netem on at ${((on.hostMs - vm.startedMs) / 1000).toFixed(1)} s of VM time`,
        );
        assert.ok([1, 2, 3].includes(ran.scale) && ran.probe_timeout_s === ran.scale * TIMING.probe_timeout_s, `timings: ${result.text}`);
        assert.ok(ran.window_s >= NETEM_S && ran.window_s >= 3 * ran.fence_after_s, `a ${ran.window_s} s window`);
        const target = 0.7 * ran.probe_timeout_s * 1000;
        assert.ok(Math.abs(added - target) <= target * 0.2, `netem adds ${added} ms per probe (measured over a baseline of ${baseline} ms); meant ≈ 0.7 × probe_timeout_s`);
        // the premise held (the guest restarts the window otherwise) and the storage really was slow throughout
        assert.ok(maxProbe < ran.probe_timeout_s * 1000, `slowest probe in the window ${maxProbe} ms; probe_timeout_s is ${ran.probe_timeout_s}`);
        assert.ok(minProbe >= 0.5 * ran.probe_timeout_s * 1000, `fastest probe in the window ${minProbe} ms: netem did not slow every probe`);
        assert.ok(maxGap < ran.fence_after_s, `a ${maxGap} s gap between heartbeats under netem; fence_after_s is ${ran.fence_after_s}`);
        assert.ok(beats >= ran.window_s / (ran.probe_timeout_s + ran.probe_interval_s) / 2, `only ${beats} heartbeats in ${ran.window_s} s`);
        return;
      } finally {
        vm.kill();
      }
    }
    assert.fail(`fence-netem: the scenario did not happen: every guest was reset after probes the machine pushed past probe_timeout_s (not a verdict on brick; retry on a less loaded machine):\n${premiseMisses.join('\n')}`);
  });
});
