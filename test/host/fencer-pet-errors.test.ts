// A watchdog pet that fails (EIO from the device) is an error the operator must see, but said on
// change and then once a minute like the fencer's other repeated errors, not at every tick.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BindfsPool, FaultFsPool, FencerRun, SHORT, faultfsMissing, fuseMissing, removeRoot, sleep, tempRoot, waitFor, fuseSuite } from './fencer-harness.js';

const { skip, cleanups } = fuseSuite(fuseMissing() ?? faultfsMissing());

test('a watchdog that fails every pet with EIO: one error line, not one per tick; said again when it works', { skip }, async () => {
  const root = tempRoot('fen3-pet-eio');
  const pool = new BindfsPool(root);
  const wdFs = new FaultFsPool(root, 'wd');
  const f = new FencerRun(root, [{ path: pool.mnt, fence_when: 'always' }], SHORT);
  cleanups.push(() => removeRoot(root), () => pool.cleanup(), () => wdFs.cleanup(), () => f.kill());
  await pool.mount();
  await wdFs.mount();
  writeFileSync(join(wdFs.src, 'watchdog'), '');
  f.setConfig('watchdog_device', join(wdFs.mnt, 'watchdog'));
  f.start();
  await f.armed();
  wdFs.setMode('EIO');
  await waitFor('a failed pet', () => /cannot pet/.test(f.log()), 5000);
  await sleep(3000); // a dozen ticks
  const fails = f.lines.filter((l) => /cannot pet/.test(l));
  assert.equal(fails.length, 1, `one line for a pet that keeps failing, got ${fails.length}:\n${fails.slice(0, 5).join('\n')}`);
  assert.match(fails[0], /EIO/);
  wdFs.setMode('ok');
  await waitFor('petting again said', () => /petted again/.test(f.log()), 5000);
  assert.equal(f.sysrqText(), '');
  assert.equal(await f.stop(), 0);
});
