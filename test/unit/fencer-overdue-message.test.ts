// The error the fencer logs once for a pool that has not verified within startup_window_s says what
// happens next, and that depends on the pool: a runtime pool (added by heartbeat_add_pool while the
// fencer ran) never fails start-up, so it must not be told "start-up fails".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { overdueMessage } from '../../src/fencer/daemon.js';

const P = '/mnt/pool1';

test('a configured pool that guards VMs: start-up fails', () => {
  const m = overdueMessage(P, 120, 'EIO', { armed: false, guards: true, runtime: false });
  assert.equal(m, `pool ${P} has NOT verified within startup_window_s (120 s) of start (last error: EIO): it guards VMs, so start-up fails`);
});

test('a configured pool no VM uses: the fencer keeps running', () => {
  const m = overdueMessage(P, 120, undefined, { armed: false, guards: false, runtime: false });
  assert.match(m, /of start: no running VM uses it, so the fencer keeps running/);
});

test('armed from the previous fencer: its expiry fences, whatever kind of pool', () => {
  for (const runtime of [false, true]) {
    const m = overdueMessage(P, 120, undefined, { armed: true, guards: true, runtime });
    assert.match(m, /it is armed from the previous fencer, so its expiry fences unless it verifies first$/);
  }
});

test('a runtime pool is never told start-up fails, and says its window ran from its adding', () => {
  for (const guards of [true, false]) {
    const m = overdueMessage(P, 30, 'ETIMEDOUT', { armed: false, guards, runtime: true });
    assert.doesNotMatch(m, /start-up fails/);
    assert.match(m, new RegExp(`^runtime pool ${P} has NOT verified within startup_window_s \\(30 s\\) of being added \\(last error: ETIMEDOUT\\): `));
    assert.match(m, /the fencer keeps guarding the other pools and arms this one on its first verified heartbeat$/);
    assert.match(m, guards ? /VMs may use it, unguarded until it verifies/ : /no running VM uses it/);
  }
});
