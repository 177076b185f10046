// RootFlights (src/agent-extension/ovm3/files.ts): a file root whose disk stopped answering gets no
// new file call (each would hold one of the agent's four threadpool threads), other roots go on.
// The thresholds at -ε, = and +ε with a clock of the test's own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_SLOW_MS, ROOT_STUCK_MS, RootFlights, rootOf } from '../../src/agent-extension/ovm3/files.js';
import { rejects } from '../fixtures/faults.js';

function flights() {
  let now = 0;
  const f = new RootFlights(() => now);
  const pending: Array<() => void> = [];
  /** An operation that stays under way until settle() is called. */
  const hold = (root: string) => {
    let release!: () => void;
    const p = f.run(root, () => new Promise<string>((r) => (release = () => r('done'))));
    pending.push(() => release());
    return p;
  };
  return { f, hold, at: (ms: number) => (now = ms), settleAll: () => pending.splice(0).forEach((r) => r()) };
}
const quick = (f: RootFlights, root: string) => f.run(root, async () => 'ran');

test(`one operation under way: a new one under its root starts until it is ${ROOT_STUCK_MS} ms old (-1 ms), not at = or +1 ms`, async () => {
  const { f, hold, at, settleAll } = flights();
  const stuck = hold('/OVS/Repositories');
  at(ROOT_STUCK_MS - 1);
  assert.equal(await quick(f, '/OVS/Repositories'), 'ran');
  at(ROOT_STUCK_MS);
  await rejects(quick(f, '/OVS/Repositories'), 'TIMEOUT', /^\/OVS\/Repositories: an earlier file call there has had no answer from its disk for 10 s \(a hung disk\?\): not starting another .*nothing was done$/);
  at(ROOT_STUCK_MS + 1);
  await rejects(quick(f, '/OVS/Repositories'), 'TIMEOUT', /no answer from its disk/);
  assert.equal(await quick(f, '/root/.ssh'), 'ran', 'another root is not affected');
  settleAll();
  assert.equal(await stuck, 'done');
  assert.equal(await quick(f, '/OVS/Repositories'), 'ran', 'once it ended, the root takes calls again');
});

test(`two operations under way: refused once the younger is ${ROOT_SLOW_MS} ms old (-1 ms starts), one alone at that age is fine`, async () => {
  const { f, hold, at, settleAll } = flights();
  hold('/OVS/Repositories');
  at(500);
  hold('/OVS/Repositories');
  at(500 + ROOT_SLOW_MS - 1);
  assert.equal(await quick(f, '/OVS/Repositories'), 'ran');
  at(500 + ROOT_SLOW_MS);
  await rejects(quick(f, '/OVS/Repositories'), 'TIMEOUT', /^\/OVS\/Repositories: 2 earlier file calls there have had no answer from its disk for 3\.5 s/);
  at(500 + ROOT_SLOW_MS + 1);
  await rejects(quick(f, '/OVS/Repositories'), 'TIMEOUT', /2 earlier file calls/);
  settleAll();
  await new Promise((r) => setImmediate(r));
  assert.equal(await quick(f, '/OVS/Repositories'), 'ran');
  // one alone, ROOT_SLOW_MS old: a slow disk, not a hung one
  const one = flights();
  one.hold('/r');
  one.at(ROOT_SLOW_MS + 1);
  assert.equal(await quick(one.f, '/r'), 'ran');
  one.settleAll();
});

test('an operation that fails still ends its flight', async () => {
  const { f, at } = flights();
  await assert.rejects(f.run('/r', async () => Promise.reject(new Error('EIO'))), /EIO/);
  at(ROOT_STUCK_MS * 2);
  assert.equal(await quick(f, '/r'), 'ran');
});

test('rootOf: the deepest file root that holds the path as written; the path itself when none does', () => {
  const roots = ['/OVS/Repositories', '/opt/cloudstack', '/root/.ssh', '/OVS/Repositories/abc/'];
  assert.equal(rootOf('/OVS/Repositories/abc/VirtualMachines/x', roots), '/OVS/Repositories/abc');
  assert.equal(rootOf('/OVS/Repositories/def', roots), '/OVS/Repositories');
  assert.equal(rootOf('/root/.ssh/id_rsa', roots), '/root/.ssh');
  assert.equal(rootOf('/etc/passwd', roots), '/etc/passwd');
});
