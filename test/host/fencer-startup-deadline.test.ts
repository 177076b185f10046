// A fencer start-up that waits on something that never answers must end, not run on guarding
// nothing: each step has its own deadline, and startupDeadline() bounds them all. A test-only
// stall (BRICK_TEST_STARTUP_STALL, ignored by the shipped binary) holds one step forever; the
// fencer must exit 1 naming that step, no sooner than the deadline, with the watchdog never
// opened (not one byte written to it) — and a stall before the marker worker starts must not end
// the process silently with exit 0 either.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FencerRun, SHORT, removeRoot, tempRoot } from './fencer-harness.js';
import { startupDeadline } from '../../src/fencer/daemon.js';

const root = tempRoot('startup-deadline');
const runs: FencerRun[] = [];
after(() => {
  for (const r of runs) r.kill();
  removeRoot(root);
});

const deadlineMs = startupDeadline({ probeIntervalMs: SHORT.probe_interval_s * 1000, probeTimeoutMs: SHORT.probe_timeout_s * 1000, fenceAfterMs: SHORT.fence_after_s * 1000 });

for (const stepName of ['VM query tool', 'pool paths']) {
  test(`a start-up stalled at "${stepName}" exits 1 at the start-up deadline, naming the step; the watchdog is never opened`, { timeout: deadlineMs + 120_000 }, async () => {
    const pool = join(root, `pool-${stepName.replace(/\W/g, '')}`);
    mkdirSync(pool);
    const f = new FencerRun(join(root, `run-${stepName.replace(/\W/g, '')}`), [{ path: pool }], SHORT, { action: 'log-only' });
    runs.push(f);
    const t0 = performance.now();
    f.start({ BRICK_TEST_STARTUP_STALL: stepName });
    const code = await f.exit;
    const took = performance.now() - t0;
    assert.equal(code, 1, `exit code; log:\n${f.log()}`);
    assert.ok(took >= deadlineMs, `exited after ${Math.round(took)} ms, before the ${deadlineMs} ms deadline`);
    await f.logged(new RegExp(`start-up did not finish within ${deadlineMs / 1000} s \\(waiting on: ${stepName}\\)`));
    assert.equal(f.watchdogSize(), 0, 'nothing was written to the watchdog');
  });
}
