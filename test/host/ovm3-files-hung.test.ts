// Ovm3 file calls when one file root's disk stops answering (faultfs "hang": every operation there
// blocks, as on a hard NFS mount whose server is gone). Before: every call resolved every file root
// (realpath), so a call under /root/.ssh hung on the dead repository too, and each stuck call held
// one of the agent's four threadpool threads for as long as the disk did. Now: a call under another
// root never touches the hung one, and once two calls there have had no answer for ROOT_SLOW_MS the
// next one there is refused at once (TIMEOUT); when the disk answers again, so does everything.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfig } from '../../src/config/load.js';
import type { CallContext } from '../../src/rpc/catalogue.js';
import { ROOT_SLOW_MS, ovsCheckFile, ovsUploadSshKey } from '../../src/agent-extension/ovm3/files.js';
import { memoryLogger } from '../fixtures/server.js';
import { callContext } from '../fixtures/call-context.js';
import { rejects } from '../fixtures/faults.js';
import { prerequisite } from '../fixtures/network-ctx.js';
import { FaultFsPool, faultfsMissing, removeRoot, sleep, tempRoot } from './fencer-harness.js';

const skip = prerequisite(!faultfsMissing(), faultfsMissing() ?? '');
let root: string;
let repo: FaultFsPool;
/** The hung file root: a directory on the faultfs mount (as /OVS/Repositories/<uuid> on the storage). */
let hungRoot: string;
let okRoot: string;
let ctx: CallContext;

before(async () => {
  if (skip) return;
  root = tempRoot('ovm3-hung');
  repo = new FaultFsPool(root, 'repo');
  await repo.mount();
  hungRoot = join(repo.mnt, 'repos');
  mkdirSync(hungRoot);
  writeFileSync(join(hungRoot, 'vm.cfg'), 'x');
  okRoot = join(root, 'ok');
  mkdirSync(join(okRoot, 'keys'), { recursive: true });
  writeFileSync(join(okRoot, 'present'), 'x');
  const config = defaultConfig();
  // the hung root first: it was resolved first, and waited for, by every call
  config.server.file_roots = [hungRoot, okRoot];
  config.ovm3.ssh_key = join(okRoot, 'keys', 'id_rsa.cloud');
  config.fencer.state_dir = join(root, 'state');
  config.fencer.watchdog_device = '';
  ctx = callContext(config, { log: memoryLogger().log });
});
after(() => {
  if (skip) return;
  repo.cleanup();
  removeRoot(root);
});

/** p's outcome within ms, or 'pending'. */
async function within<T>(p: Promise<T>, ms: number): Promise<{ ok: T } | { err: unknown } | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([p.then((ok) => ({ ok }), (err: unknown) => ({ err })), new Promise<'pending'>((res) => (timer = setTimeout(() => res('pending'), ms)))]);
  clearTimeout(timer);
  return r;
}

test('a hung file root: calls under another root answer; after two stuck calls a third there is refused at once; all answer once the disk does', { skip, timeout: 60_000 }, async () => {
  repo.setMode('hang');
  await sleep(1500); // past the kernel's FUSE attribute cache: a look now asks the daemon, which holds it
  const stuck = [ovsCheckFile([join(hungRoot, 'vm.cfg')], ctx), ovsCheckFile([join(hungRoot, 'other.cfg')], ctx)];
  assert.deepEqual(await within(Promise.race(stuck), 1000), 'pending', 'calls on the hung disk wait for it');
  // another root: answered, never waiting on the hung one's realpath
  assert.deepEqual(await within(ovsCheckFile([join(okRoot, 'present')], ctx), 3000), { ok: true });
  assert.deepEqual(await within(ovsUploadSshKey(['id_rsa.pub', 'ssh-ed25519 AAAA test\n'], ctx), 3000), { ok: true });
  await sleep(ROOT_SLOW_MS + 200);
  const t0 = performance.now();
  await rejects(ovsCheckFile([join(hungRoot, 'vm.cfg')], ctx), 'TIMEOUT', new RegExp(`^${hungRoot}: 2 earlier file calls there have had no answer from its disk for \\d+(\\.\\d)? s \\(a hung disk\\?\\): not starting another`));
  assert.ok(performance.now() - t0 < 1000, 'refused at once, not after waiting on the disk');
  assert.deepEqual(await within(ovsCheckFile([join(okRoot, 'present')], ctx), 3000), { ok: true }, 'the other root still answers');
  repo.setMode('ok');
  assert.deepEqual(await within(Promise.all(stuck), 10_000), { ok: [true, false] }, 'the stuck calls end once the disk answers');
  assert.equal(await ovsCheckFile([join(hungRoot, 'vm.cfg')], ctx), true, 'and the root takes calls again');
});
