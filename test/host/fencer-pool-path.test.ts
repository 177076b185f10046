// Issue 17 item 5 against the REAL fencer program, short timings P/T/F/W = 0.5/2/5/4 s: a pool path
// configured as a symlink to the mount is resolved at start (a `realpath -e` child with a deadline),
// so the device/mount check sees the mounted filesystem: the pool arms, and a frozen mount fences
// within fence_after_s + 1 s of the freeze. (Before: `stat -c %d` on the symlink saw the root
// filesystem, the pool never armed, and a frozen pool never fenced.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { BindfsPool, FencerRun, SHORT, fuseMissing, removeRoot, sleep, tempRoot, waitFor } from './fencer-harness.js';

const missing = fuseMissing();
const skip = missing && process.env.CI !== 'true' ? missing : false;
const BOUND_MS = (SHORT.fence_after_s + 1) * 1000;

const cleanups: Array<() => void | Promise<unknown>> = [];
before(() => {
  if (missing && process.env.CI === 'true') throw new Error(`fencer host tests need FUSE: ${missing}`);
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('item 5: a pool configured as a symlink to a bindfs mount arms; frozen, it fences within fence_after_s + 1 s', { skip }, async () => {
  const root = tempRoot('fencer-symlink');
  const pool = new BindfsPool(root);
  const link = join(root, 'pool-link');
  symlinkSync(pool.mnt, link);
  const f = new FencerRun(root, [{ path: link, fence_when: 'always' }], SHORT);
  cleanups.push(() => removeRoot(root), () => pool.cleanup(), () => f.kill());
  await pool.mount();
  f.start();
  await f.armed(15_000).catch((e) => assert.fail(`the symlinked pool never armed: ${(e as Error).message}\n${f.log()}`));
  assert.match(f.log(), new RegExp(`pool ${link} resolves to ${pool.mnt}`), 'the resolved path is logged');
  const st = f.state();
  assert.equal(st.pools[0].path, link, 'the pool keeps its configured name');
  assert.ok(st.pools[0].heartbeat_file.startsWith(pool.mnt + '/'), `heartbeat written through the resolved path: ${st.pools[0].heartbeat_file}`);
  await sleep(1000);
  assert.equal(f.sysrqText(), '', 'no fence while the pool is healthy');
  const t0 = performance.now();
  pool.freeze();
  await waitFor("sysrq 'b'", () => f.sysrqText().includes('b'), BOUND_MS + 5000, 10);
  const took = performance.now() - t0;
  assert.ok(took <= BOUND_MS, `fenced ${Math.round(took)} ms after the freeze; bound ${BOUND_MS} ms`);
  assert.ok(took >= SHORT.fence_after_s * 1000 - SHORT.probe_interval_s * 1000 - 300, `fenced too early: ${Math.round(took)} ms`);
  assert.match(f.log(), new RegExp(`FENCING this host: pool ${link} `));
  await f.stop();
});
