// check_dom0_storage_health_check answers [running, started] truthfully (issue 17, "Pools the
// orchestrator adds", second item): a real fencer on a local-directory pool, asked over XML-RPC
// with brick's client. running only for the path it guards (also given with a trailing slash or
// through a symlink), never for another path, never once the fencer is stopped, never with
// action = "log-only"; started is always false (brick adds no runtime pools in this version).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { FencerRun, SHORT, removeRoot, sleep, tempRoot, waitFor } from './fencer-harness.js';
import { startTestServer, type TestServer } from '../fixtures/server.js';
import { methods } from '../../src/agent-extension/ovm3/methods.js';
import { STATE_STALE_S } from '../../src/fencer/state.js';

const GUID = 'guid-health-check';
const cleanups: Array<() => void | Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function setup(action: string): Promise<{ f: FencerRun; srv: TestServer; pool: string; other: string; link: string }> {
  const root = tempRoot(`ovm3-hbcheck-${action}`);
  cleanups.push(() => removeRoot(root));
  const pool = join(root, 'pool');
  const other = join(root, 'other-pool');
  const link = join(root, 'pool-link');
  mkdirSync(pool);
  mkdirSync(other);
  symlinkSync(pool, link);
  const f = new FencerRun(root, [{ path: pool, fence_when: 'in-use', require_mount: false }], SHORT, { action, host_id: GUID, watchdog: false });
  cleanups.push(() => f.kill());
  f.start();
  await f.armed();
  const srv = await startTestServer({ fencer: { state_dir: f.stateDir, probe_timeout_s: SHORT.probe_timeout_s, fence_after_s: SHORT.fence_after_s } }, methods);
  cleanups.push(() => srv.close());
  return { f, srv, pool, other, link };
}

const ask = async (srv: TestServer, path: string) => srv.call('check_dom0_storage_health_check', path, 'storagehealth.py', GUID, 120, 1);

test('a running fencer guarding the path → [true, false]; another path → [false, false]; stopped → [false, false]', async () => {
  const { f, srv, pool, other, link } = await setup('reboot');
  assert.deepEqual(await ask(srv, pool), [true, false], `the guarded path\n${f.log()}`);
  assert.deepEqual(await ask(srv, pool + '/'), [true, false], 'the guarded path with a trailing slash');
  assert.deepEqual(await ask(srv, link), [true, false], 'the guarded path through a symlink');
  assert.deepEqual(await ask(srv, other), [false, false], 'a path the fencer does not guard');
  assert.deepEqual(await ask(srv, '/opt/cloudstack/bin'), [false, false], 'the script directory CloudStack passes is not a pool');
  assert.ok(srv.logs.some((l) => /does not guard/.test(String(l.why))), 'the log says why');
  // Stopped: at once after a SIGKILL (the state file is still fresh, its writer is gone) …
  f.kill();
  await f.exit;
  assert.deepEqual(await ask(srv, pool), [false, false], 'fencer killed, state file still fresh');
  assert.ok(srv.logs.some((l) => /is gone/.test(String(l.why))));
  // … and once the state file is stale.
  await sleep((STATE_STALE_S + 0.5) * 1000);
  assert.deepEqual(await ask(srv, pool), [false, false], 'fencer stopped, state file stale');
});

test('action = "log-only": armed and guarding the path, but nothing is protected → [false, false]', async () => {
  const { f, srv, pool } = await setup('log-only');
  await waitFor('state with log-only', () => f.state()?.action === 'log-only', 5000);
  assert.deepEqual(await ask(srv, pool), [false, false], f.log());
  assert.ok(srv.logs.some((l) => /log-only/.test(String(l.why))));
});
