// `brick serve` with the fencer's directories on a disk that hangs (a failing disk, a marker_dir an
// admin put on a hard NFS mount): faultfs in "hang" mode holds every operation in the kernel, as a
// dead disk does. The agent reads the fencer's files for heartbeat_status, host_capabilities,
// check_dom0_storage_health_check and GET /metrics; a read that hangs must never stop the agent:
// an unrelated call (system.listMethods, /healthz) answers while it is stuck, and the call that
// reads the hung file answers with a clear "could not be read in time", never a healthy pool.
// No duration is asserted: every wait is a generous bound, and the order of the answers decides.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FaultFsPool, faultfsMissing, fuseMissing, fuseSuite, removeRoot, tempRoot, sleep, within } from './fencer-harness.js';
import { freePort, startServe } from '../fixtures/serve-process.js';
import { XmlRpcClient } from '../../src/agent-extension/client.js';
import { XmlRpcFault } from '../../src/agent-extension/codec.js';
import { FENCER_FILE_READ_DEADLINE_MS } from '../../src/shared/bounded-read.js';
import { bootId } from '../../src/fencer/lease.js';

const { skip, cleanups } = fuseSuite(fuseMissing() ?? faultfsMissing());
const PASSWORD = 'hung-disk-pw';
/** Far above any answer of a free event loop on a loaded 2-core machine, far below "never". */
const ANSWER_MS = 20_000;

/** A fencer state that says the pool is guarded and healthy: what a hung disk must never let the agent report as current. */
function state(pool: string): string {
  const now = Date.now();
  return JSON.stringify({
    version: 1,
    pid: process.pid,
    boot_id: bootId() ?? null,
    host_id: 'guid-hung-disk',
    written_at_ms: now,
    started_at_ms: now - 60_000,
    action: 'reboot',
    fence_after_s: 60,
    probe_interval_s: 1,
    probe_timeout_s: 10,
    watchdog: { device: '', open: false, petting: false, last_pet_age_s: null, timeout_s: 0 },
    fenced: null,
    last_fence: null,
    pools: [
      {
        path: pool,
        source: 'config',
        heartbeat: 'ovm',
        heartbeat_file: `${pool}/.hb-guid-hung-disk`,
        fence_when: 'always',
        state: 'healthy',
        armed: true,
        in_use: true,
        last_ok_age_s: 0.5,
        fence_in_s: 59.5,
        probe_latency_ms: { last: 1, min: 1, max: 1 },
        stuck_probes: 0,
        stuck_for_s: null,
        probes_ok: 10,
        probes_failed: 0,
        last_error: null,
      },
    ],
  }) + '\n';
}

/** The agent's threads and where each waits in the kernel (wchan): a FUSE read in "hang" waits in request_wait_answer. */
function wchans(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((t) => {
    try {
      return readFileSync(`/proc/${pid}/task/${t}/wchan`, 'utf8');
    } catch {
      return '?';
    }
  });
}
const inFuse = (pid: number) => wchans(pid).filter((w) => /request_wait_answer|fuse/.test(w)).length;

test('brick serve with marker_dir and state_dir hung: unrelated calls and /healthz answer, the calls that read them say they could not be read in time, /metrics answers', { skip, timeout: 300_000 }, async () => {
  const root = tempRoot('serve-hung-disk');
  cleanups.push(() => removeRoot(root));
  const markerFs = new FaultFsPool(root, 'marker');
  const stateFs = new FaultFsPool(root, 'state');
  // Cleaned up in every case: a hung mount released (mode ok) and unmounted; the agent killed first.
  cleanups.push(() => markerFs.cleanup(), () => stateFs.cleanup());
  await markerFs.mount();
  await stateFs.mount();
  const pool = join(root, 'pool');
  mkdirSync(pool);
  // The fencer stand-in rewrites its state every 0.5 s, as the fencer does; stopped before state_dir hangs (a write there would hang this process).
  const writeState = () => writeFileSync(join(stateFs.mnt, 'fencer.json'), state(pool));
  writeState();
  let writer: NodeJS.Timeout | undefined = setInterval(writeState, 500);
  cleanups.push(() => clearInterval(writer));
  writeFileSync(
    join(markerFs.mnt, 'fence-marker.json'),
    JSON.stringify({ at: '2026-11-30T10:00:00.000Z', pool, reason: 'test', action: 'reboot', host_id: 'guid-hung-disk', last_ok_age_s: 61 }) + '\n',
  );
  const port = await freePort();
  const config = join(root, 'brick.toml');
  writeFileSync(
    config,
    `[server]\nlisten = "127.0.0.1:${port}"\npassword = "${PASSWORD}"\ngenerate_credentials = false\ntls_cert = ""\ntls_key = ""\n` +
      `[fencer]\nstate_dir = "${stateFs.mnt}"\nmarker_dir = "${markerFs.mnt}"\nruntime_pools_file = "${join(markerFs.mnt, 'runtime-pools.json')}"\nwatchdog_device = ""\n`,
  );
  const children: Array<{ kill: (s: NodeJS.Signals) => boolean }> = [];
  cleanups.push(() => children.forEach((c) => c.kill('SIGKILL')));
  const serve = startServe(config, children);
  await serve.listening;
  const client = () => new XmlRpcClient({ url: `http://127.0.0.1:${port}/`, user: 'oracle', password: PASSWORD, keepAlive: false, timeoutMs: 120_000 });
  const call = (m: string, ...args: unknown[]) => {
    const c = client();
    return c.call(m, ...args).then((v) => JSON.parse(JSON.stringify(v)) as any).finally(() => c.close());
  };
  const auth = { authorization: `Basic ${Buffer.from(`oracle:${PASSWORD}`).toString('base64')}` };
  const get = (path: string) => fetch(`http://127.0.0.1:${port}${path}`, { headers: auth, signal: AbortSignal.timeout(120_000) }).then(async (r) => ({ status: r.status, text: await r.text() }));

  // Before the disk hangs: the marker is read, the pool is healthy.
  const before = await call('heartbeat_status');
  assert.equal(before[pool].state, 'healthy');
  assert.equal(before[pool].last_fence?.reason, 'test');

  // ---- marker_dir hangs: heartbeat_status reads the fence marker there ----
  markerFs.setMode('hang');
  const hb1 = call('heartbeat_status');
  hb1.catch(() => {});
  await sleep(300); // the agent has taken the call and is in the marker read
  const list = await within(call('system.listMethods'), ANSWER_MS);
  assert.ok(list !== 'pending' && 'ok' in list, `system.listMethods must answer while marker_dir hangs; got ${list === 'pending' ? `no answer in ${ANSWER_MS} ms` : String((list as { err: unknown }).err)}`);
  assert.ok((list.ok as string[]).includes('heartbeat_status'));
  const health = await within(get('/healthz'), ANSWER_MS);
  assert.ok(health !== 'pending' && 'ok' in health && health.ok.status === 200, `/healthz must answer while marker_dir hangs: ${JSON.stringify(health)}`);
  // The hung call answers within its read deadline (and the bound): the state is readable, so the
  // pools are reported, and the fence marker is the fencer's own copy (null here), as when the
  // marker file cannot be read.
  const r1 = await within(hb1, FENCER_FILE_READ_DEADLINE_MS + ANSWER_MS);
  assert.ok(r1 !== 'pending' && 'ok' in r1, `heartbeat_status with marker_dir hung must answer; got ${JSON.stringify(r1)}`);
  assert.equal(r1.ok[pool].state, 'healthy', 'the state file is readable: the pool state is reported');
  assert.equal(r1.ok[pool].last_fence, null, "the marker could not be read: the fencer's copy stands in");
  // Again while the first read is still stuck in the kernel: no second read is started, same answer.
  const r2 = await within(call('heartbeat_status'), FENCER_FILE_READ_DEADLINE_MS + ANSWER_MS);
  assert.ok(r2 !== 'pending' && 'ok' in r2, `a second heartbeat_status must answer too: ${JSON.stringify(r2)}`);
  const m1 = await within(get('/metrics'), FENCER_FILE_READ_DEADLINE_MS + ANSWER_MS);
  assert.ok(m1 !== 'pending' && 'ok' in m1 && m1.ok.status === 200, `/metrics must answer while marker_dir hangs: ${JSON.stringify(m1)}`);
  assert.match(m1.ok.text, /^brick_fencer_running 1$/m, 'the state is readable: the fencer runs');

  // The runtime pools file is in marker_dir too (as by default, /var/lib/brick): the calls that read it
  // answer that it could not be read, and change nothing.
  const add = await within(call('heartbeat_add_pool', pool, 'ovm', 'always'), FENCER_FILE_READ_DEADLINE_MS + ANSWER_MS);
  assert.ok(add !== 'pending' && 'err' in add, `heartbeat_add_pool must answer with a fault: ${JSON.stringify(add)}`);
  assert.equal((add.err as XmlRpcFault).faultCode, 1011, String(add.err));
  assert.match((add.err as XmlRpcFault).faultString, /runtime pools file .*runtime-pools\.json could not be read.*nothing changed/);
  const peer = await within(call('check_dom0_storage_health', pool, '/opt/cloudstack/bin', 'guid-peer', 60), FENCER_FILE_READ_DEADLINE_MS + ANSWER_MS);
  assert.ok(peer !== 'pending' && 'err' in peer, `check_dom0_storage_health must answer: ${JSON.stringify(peer)}`);
  assert.match((peer.err as XmlRpcFault).faultString, /runtime pools file .* could not be read/);
  const hbc = await within(call('heartbeat_check', pool, 'guid-peer', 60), FENCER_FILE_READ_DEADLINE_MS + ANSWER_MS);
  assert.ok(hbc !== 'pending' && 'err' in hbc, `heartbeat_check must answer: ${JSON.stringify(hbc)}`);
  assert.match((hbc.err as XmlRpcFault).faultString, /not a fencer pool .*runtime pools file .* could not be read/);

  // ---- state_dir hangs too: every reader of the state says it could not be read in time ----
  clearInterval(writer);
  writer = undefined;
  stateFs.setMode('hang');
  const hb3 = call('heartbeat_status');
  hb3.catch(() => {});
  await sleep(300);
  const list2 = await within(call('system.listMethods'), ANSWER_MS);
  assert.ok(list2 !== 'pending' && 'ok' in list2, `system.listMethods must answer while state_dir hangs; got ${JSON.stringify(list2)}`);
  const r3 = await within(hb3, FENCER_FILE_READ_DEADLINE_MS + ANSWER_MS);
  assert.ok(r3 !== 'pending' && 'err' in r3, `heartbeat_status with state_dir hung must answer with a fault; got ${JSON.stringify(r3)}`);
  const e3 = r3.err as XmlRpcFault;
  assert.ok(e3 instanceof XmlRpcFault, String(e3));
  assert.equal(e3.faultCode, 1011, e3.faultString);
  assert.match(e3.faultString, new RegExp(`fencer\\.json could not be read within ${FENCER_FILE_READ_DEADLINE_MS / 1000} s`));
  // A call while that read is still stuck: answered at once with the same truth.
  const r4 = await within(call('heartbeat_status'), ANSWER_MS);
  assert.ok(r4 !== 'pending' && 'err' in r4, `a second heartbeat_status must answer too: ${JSON.stringify(r4)}`);
  assert.match((r4.err as XmlRpcFault).faultString, /could not be read/);
  const caps = await within(call('host_capabilities'), FENCER_FILE_READ_DEADLINE_MS + ANSWER_MS);
  assert.ok(caps !== 'pending' && 'ok' in caps, `host_capabilities must answer: ${JSON.stringify(caps)}`);
  assert.equal(caps.ok.fencer.running, false);
  assert.match(caps.ok.fencer.state, /could not be read/);
  const check = await within(call('check_dom0_storage_health_check', pool, '/opt/cloudstack/bin', 'guid-hung-disk', 120, 10), FENCER_FILE_READ_DEADLINE_MS + ANSWER_MS);
  assert.ok(check !== 'pending' && 'ok' in check, `check_dom0_storage_health_check must answer: ${JSON.stringify(check)}`);
  assert.equal(check.ok[0], false, 'an unreadable state never says the path is guarded');
  const m2 = await within(get('/metrics'), FENCER_FILE_READ_DEADLINE_MS + ANSWER_MS);
  assert.ok(m2 !== 'pending' && 'ok' in m2 && m2.ok.status === 200, `/metrics must answer while state_dir hangs: ${JSON.stringify(m2)}`);
  assert.match(m2.ok.text, /^brick_fencer_state_unusable 1$/m);
  assert.match(m2.ok.text, /^brick_fencer_running 0$/m, "a state that could not be read is no running fencer");
  assert.doesNotMatch(m2.ok.text, /brick_fencer_pool_state\{/, 'no pool state from a state that could not be read');
  // Every one of those calls read (or would have read) a hung file, some twice: still at most one read
  // per directory is held in the kernel (marker_dir's since the first call, state_dir's), not one
  // per call: the libuv threadpool (4 threads) keeps threads for everything else.
  const stuck = inFuse(serve.child.pid!);
  assert.ok(stuck >= 1 && stuck <= 2, `threads of the agent held in FUSE: ${stuck} (${wchans(serve.child.pid!).join(', ')})`);
  const health2 = await within(get('/healthz'), ANSWER_MS);
  assert.ok(health2 !== 'pending' && 'ok' in health2 && health2.ok.status === 200, `/healthz: ${JSON.stringify(health2)}`);

  // ---- the disk answers again: the next calls read it ----
  markerFs.setMode('ok');
  stateFs.setMode('ok');
  writeState();
  writer = setInterval(writeState, 500);
  let after: any;
  for (let i = 0; i < 100; i++) {
    after = await call('heartbeat_status').catch((e: unknown) => e);
    if (!(after instanceof Error) && after[pool]?.last_fence) break;
    await sleep(200);
  }
  assert.ok(!(after instanceof Error), String(after));
  assert.equal(after[pool].state, 'healthy');
  assert.equal(after[pool].last_fence?.reason, 'test', 'the marker is read again once the disk answers');
  clearInterval(writer);
  // SIGTERM is handled: the agent ends.
  serve.child.kill('SIGTERM');
  assert.equal(await Promise.race([serve.exited, sleep(ANSWER_MS).then(() => 'still running')]), 0);
});
