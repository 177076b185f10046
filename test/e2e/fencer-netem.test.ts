// Slow storage must not fence: every NFS request is delayed (netem on lo, dport 2049) so that a whole
// heartbeat probe is 0.7 × probe_timeout_s slower, for BRICK_E2E_NETEM_S seconds (default 180).
// The guest must not reset, and the heartbeat must keep landing on the server (largest gap measured
// on the server's side < fence_after_s). Recorded in bench/out/e2e.json.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { ensureImage, type GuestImage } from './image.js';
import { Vm } from './vm.js';
import { NETEM_TIMING as TIMING, vmUnavailable, recordE2e, figure } from './support.js';

const skip = vmUnavailable();
const NETEM_S = Number(process.env.BRICK_E2E_NETEM_S ?? 180);

describe('e2e: slow NFS (netem) on a real kernel', { skip, timeout: 20 * 60_000 }, () => {
  let image: GuestImage;
  before(async () => {
    image = await ensureImage();
  }, { timeout: 10 * 60_000 });

  it(`NFS ${0.7} × probe_timeout_s slower per probe for ${NETEM_S} s: no reset, heartbeats keep landing`, { timeout: (NETEM_S + 300) * 1000 }, async () => {
    const vm = new Vm(image, { scenario: 'fence-netem', args: { ...TIMING, netem_s: NETEM_S }, hardLimitMs: (NETEM_S + 240) * 1000 });
    try {
      const plan = await vm.waitFor('netem-plan', 150_000);
      const on = await vm.waitFor('netem-on', 30_000);
      const result = await vm.waitFor('netem-result', (NETEM_S + 60) * 1000);
      const exit = await vm.exited;
      assert.deepEqual(vm.failures(), [], `guest reported failures; console: ${vm.logPath}`);
      assert.equal(exit.clean, true, `the guest was reset under slow NFS (a false fence); console: ${vm.logPath}`);
      const m = /heartbeats=(\d+) max_gap_s=([\d.]+)/.exec(result.text);
      assert.ok(m, `netem-result line: ${result.text}`);
      const beats = Number(m[1]);
      const maxGap = Number(m[2]);
      const added = Number(/added_per_probe_ms=(\d+)/.exec(plan.text)?.[1]);
      const state = JSON.parse(vm.data('state-under-netem') ?? '{}') as { pools?: { probe_latency_ms?: { max: number | null }; probes_failed?: number }[] };
      const pool = state.pools?.[0];
      const before = JSON.parse(vm.data('state-before-netem') ?? '{}') as { pools?: { probe_latency_ms?: { max: number | null } }[] };
      recordE2e(
        [
          figure('netem_max_heartbeat_gap_s', `largest gap between heartbeats under netem (${NETEM_S} s, server side)`, 's', [maxGap], TIMING.fence_after_s),
          figure('netem_probe_latency_max_ms', 'slowest probe under netem (fencer state)', 'ms', [pool?.probe_latency_ms?.max ?? NaN], TIMING.probe_timeout_s * 1000),
          figure('netem_probe_latency_before_max_ms', 'slowest probe before netem (fencer state; TCG process start-up dominates)', 'ms', [before.pools?.[0]?.probe_latency_ms?.max ?? NaN]),
        ],
        `fence-netem: probe ${TIMING.probe_interval_s}/${TIMING.probe_timeout_s} s, fence_after_s ${TIMING.fence_after_s}; ${plan.text}; ${beats} heartbeats in ${NETEM_S} s, ${pool?.probes_failed ?? '?'} probes failed; netem on at ${((on.hostMs - vm.startedMs) / 1000).toFixed(1)} s of VM time`,
      );
      assert.ok(Math.abs(added - 0.7 * TIMING.probe_timeout_s * 1000) <= 0.7 * TIMING.probe_timeout_s * 1000 * 0.2, `netem adds ${added} ms per probe; meant ≈ 0.7 × probe_timeout_s`);
      assert.ok(maxGap < TIMING.fence_after_s, `a ${maxGap} s gap between heartbeats under netem; fence_after_s is ${TIMING.fence_after_s}`);
      assert.ok(beats >= NETEM_S / (TIMING.probe_timeout_s + TIMING.probe_interval_s) / 2, `only ${beats} heartbeats in ${NETEM_S} s`);
    } finally {
      vm.kill();
    }
  });
});
