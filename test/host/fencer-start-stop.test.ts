// `systemctl stop` right as the fencer starts: the watchdog is opened (and petted once) early in
// start-up, so a SIGTERM that lands before the loop runs must still be a clean stop — magic 'V'
// and exit 0 — or the host would be reset by a watchdog nobody pets any more.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FencerRun, removeRoot, tempRoot, waitFor } from './fencer-harness.js';

const root = tempRoot('start-stop');
// A run that fails half-way must not leave its fencer running: the test file would never end.
const fencers: FencerRun[] = [];
after(() => {
  for (const f of fencers) f.kill();
  removeRoot(root);
});

test('SIGTERM right after the watchdog is opened is a clean stop: V written, exit 0', { timeout: 300_000 }, async () => {
  for (let i = 0; i < 3; i++) {
    const pool = join(root, `pool-${i}`);
    mkdirSync(pool);
    const fencer = new FencerRun(join(root, `run-${i}`), [{ path: pool }], undefined, { action: 'log-only' });
    fencers.push(fencer);
    fencer.start();
    await waitFor('the first pet', () => fencer.watchdogSize() > 0, 60_000, 1);
    fencer.proc!.kill('SIGTERM');
    const code = await fencer.exit;
    assert.equal(code, 0, `run ${i}: the fencer was killed instead of stopping cleanly:\n${fencer.log()}`);
    assert.equal(fencer.watchdogBytes().at(-1), 'V'.charCodeAt(0), `run ${i}: the watchdog was left armed (no magic close)`);
  }
});
