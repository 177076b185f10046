// Runtime pools through the XML-RPC calls with both processes running (issue 17, "pools the
// orchestrator adds"): the real `brick serve` and the real fencer, pools on real mounts (tmpfs,
// and bindfs frozen with SIGSTOP for a dead pool), calls with brick's client and with Python's
// xmlrpc.client. Bad input changes nothing; concurrent adds both land; an added pool arms on its
// first verified heartbeat; both processes killed and restarted: the pools are still there and arm;
// removal disarms without a fence and the watchdog goes on being petted; a late or expired pool
// cannot be removed (a fence due is never dodged), and a removal that races with it is deferred by
// the fencer until the pool verifies. check_dom0_storage_health_check: started / running truth.
// Every wait polls for a state with a generous deadline; no duration is asserted.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BindfsPool, FencerRun, fuseMissing, removeRoot, tempRoot, waitFor, type FencerTimings } from './fencer-harness.js';
import { freePort, startServe } from '../fixtures/serve-process.js';
import { startTestServer } from '../fixtures/server.js';
import { XmlRpcClient } from '../../src/agent-extension/client.js';
import { XmlRpcFault } from '../../src/agent-extension/codec.js';
import { methods } from '../../src/fencer/methods.js';
import { parseRuntimePools, runtimePoolsText } from '../../src/fencer/runtime-pools.js';

const GUID = 'guid-runtime-pools';
const PASSWORD = 'runtime-pools-pw';
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
const missing = fuseMissing();
const skip = missing && process.env.CI !== 'true' ? missing : false;
// Heartbeats every 0.5 s with a probe deadline of 4 s: tmpfs probes (four children each) have taken
// over 2 s at a load of 14 on the 2-core test machine. Generous waits besides.
const T: FencerTimings = { probe_interval_s: 0.5, probe_timeout_s: 4, fence_after_s: 12, watchdog_timeout_s: 4 };
const ARM_MS = 30_000;

function tmpfs(dir: string): string {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir]);
  cleanups.push(() => execFileSync('umount', ['-l', dir], { stdio: 'ignore' }));
  return dir;
}

async function fault(p: Promise<unknown>, code: number, re: RegExp, what: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof XmlRpcFault, `${what}: a fault, got ${String(e)}`);
    assert.equal(e.faultCode, code, `${what}: ${e.faultString}`);
    assert.match(e.faultString, re, what);
    return true;
  });
}

/** The serve config: the fencer's own brick.toml with a real port and a password. */
function serveConfig(f: FencerRun, port: number): string {
  const path = join(f.dir, 'serve.toml');
  const toml = readFileSync(f.configPath, 'utf8').replace('listen = "127.0.0.1:0"', `listen = "127.0.0.1:${port}"\npassword = "${PASSWORD}"\npassword_file = ""\ntls_cert = ""\ntls_key = ""`);
  writeFileSync(path, toml);
  return path;
}

function poolOf(f: FencerRun, path: string): any {
  return f.state()?.pools.find((p: any) => p.path === path);
}

const children: Array<{ kill: (s: NodeJS.Signals) => boolean }> = [];
cleanups.push(() => children.forEach((c) => c.kill('SIGKILL')));

test('runtime pools over XML-RPC with brick serve and the fencer running: add, idempotence, bad input, arming, restart of both, removal, check_dom0_storage_health_check', { skip }, async () => {
  const root = tempRoot('runtime-pools');
  cleanups.push(() => removeRoot(root));
  const cfgPool = join(root, 'config-pool');
  mkdirSync(cfgPool);
  const a = tmpfs(join(root, 'mnt-a'));
  const b = tmpfs(join(root, 'mnt-b'));
  const d = tmpfs(join(root, 'OVS-Repositories-d'));
  const notMount = join(root, 'plain-dir');
  mkdirSync(notMount);
  const aFile = join(root, 'a-file');
  writeFileSync(aFile, 'x');
  const f = new FencerRun(root, [{ path: cfgPool, require_mount: false, fence_when: 'in-use' }], T, { host_id: GUID, action: 'reboot' });
  cleanups.push(() => f.kill());
  f.start();
  await f.armed(ARM_MS);
  const port = await freePort();
  const config = serveConfig(f, port);
  let serve = startServe(config, children);
  await serve.listening;
  const client = new XmlRpcClient({ url: `http://127.0.0.1:${port}/`, user: 'oracle', password: PASSWORD });
  cleanups.push(() => client.close());
  // Structs come back with a null prototype: compared as plain JSON.
  const call = (m: string, ...args: unknown[]) => client.call(m, ...args).then((v) => JSON.parse(JSON.stringify(v))) as Promise<any>;

  // ---- bad input: a clear fault each, and nothing changes (no runtime pools file at all) ----
  await fault(call('heartbeat_add_pool', 'mnt/a', 'ovm', 'in-use'), -32602, /pool_path: must be an absolute path/, 'relative path');
  await fault(call('heartbeat_add_pool', a, 'nfs', 'in-use'), -32602, /format: must be "ovm".*"nfs"/, 'unknown format');
  await fault(call('heartbeat_add_pool', a, 'ovm', 'never'), -32602, /fence_when: must be "in-use" or "always"/, 'unknown fence_when');
  await fault(call('heartbeat_add_pool', join(root, 'missing'), 'ovm', 'in-use'), 1001, /no such directory/, 'missing path');
  await fault(call('heartbeat_add_pool', notMount, 'ovm', 'in-use'), 1003, /is not a mount point/, 'a directory that is no mount');
  await fault(call('heartbeat_add_pool', '/proc', 'ovm', 'in-use'), 1003, /is a proc mount, one of the kernel's own filesystems/, '/proc');
  await fault(call('heartbeat_add_pool', '/sys/', 'kvm', 'always'), 1003, /is a sysfs mount/, '/sys');
  await fault(call('heartbeat_add_pool', aFile, 'ovm', 'in-use'), -32602, /not a directory/, 'a file');
  await fault(call('heartbeat_remove_pool', cfgPool), 1002, /config pools cannot be removed/, 'a config pool');
  assert.equal(existsSync(f.runtimePoolsFile), false, 'no bad call wrote the runtime pools file');
  assert.deepEqual(await call('heartbeat_remove_pool', a), { removed: false, path: a, state: 'absent' });

  // ---- two adds at once: both land (the agent serializes the file's read-modify-write) ----
  const [ra, rb] = await Promise.all([call('heartbeat_add_pool', a + '/', 'ovm', 'in-use'), call('heartbeat_add_pool', b, 'kvm', 'always')]);
  assert.equal(ra.added, true);
  assert.equal(ra.path, a, 'the trailing slash is normalized away');
  assert.equal(ra.source, 'runtime');
  assert.equal(rb.added, true);
  const file = parseRuntimePools(readFileSync(f.runtimePoolsFile, 'utf8'));
  assert.ok(file.ok);
  assert.deepEqual(file.pools.map((p) => [p.path, p.heartbeat, p.fence_when]).sort(), [[a, 'ovm', 'in-use'], [b, 'kvm', 'always']]);
  // The same pool again: nothing changes; other settings: a conflict; a config pool: guarded already.
  const again = await call('heartbeat_add_pool', a, 'ovm', 'in-use');
  assert.equal(again.added, false);
  assert.equal(again.source, 'runtime');
  await fault(call('heartbeat_add_pool', a, 'kvm', 'in-use'), 1002, /already guarded with heartbeat "ovm", not "kvm"/, 'other format');
  const cfgAgain = await call('heartbeat_add_pool', cfgPool + '/', 'ovm', 'in-use');
  assert.deepEqual([cfgAgain.added, cfgAgain.source, cfgAgain.path], [false, 'config', cfgPool], 'a config pool is guarded already');
  await fault(call('heartbeat_add_pool', cfgPool, 'ovm', 'always'), 1002, /already guarded with fence_when "in-use", not "always", in brick.toml/, 'a config pool with other settings');
  assert.equal(readFileSync(f.runtimePoolsFile, 'utf8'), runtimePoolsText(file.pools), 'unchanged by the repeated and conflicting adds');

  // ---- the fencer picks them up; each arms on its first verified heartbeat ----
  await waitFor('both runtime pools armed', () => poolOf(f, a)?.state === 'healthy' && poolOf(f, b)?.state === 'healthy', ARM_MS);
  assert.equal(poolOf(f, a).source, 'runtime');
  assert.equal(poolOf(f, cfgPool).source, 'config');
  assert.ok(existsSync(join(a, `.hb-${GUID}`)), 'ovm heartbeat file on the added pool');
  assert.ok(existsSync(join(b, 'KVMHA', `hb-${GUID}`)), 'kvm heartbeat file on the added pool');
  await f.logged(/runtime pool .*mnt-a added: guarded from now on/);
  const st = await call('heartbeat_status');
  assert.equal(st[a].source, 'runtime');
  assert.equal(st[b].source, 'runtime');
  assert.equal(st[cfgPool].source, 'config');
  assert.equal(st[a].state, 'healthy');
  // A peer's view through this agent: heartbeat_check accepts a runtime pool's path (not under
  // file_roots), and the Ovm3 peer check reads the runtime pools too.
  assert.equal((await call('heartbeat_check', b, GUID, 60, 'kvm')).alive, true, 'heartbeat_check on a runtime pool');
  assert.equal(await call('check_dom0_storage_health', '/opt/cloudstack/bin', 'storagehealth.py', GUID, 60), true, 'the Ovm3 peer check covers runtime pools');
  // Python's xmlrpc.client sees the same.
  const py = execFileSync('python3', ['-c', `import sys, xmlrpc.client as x; s = x.ServerProxy(sys.argv[1]); st = s.heartbeat_status(); print(st[sys.argv[2]]['source'], st[sys.argv[2]]['armed'], s.heartbeat_add_pool(sys.argv[2], 'ovm', 'in-use')['added'])`, `http://oracle:${PASSWORD}@127.0.0.1:${port}/`, a], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(py.trim(), 'runtime True False');

  // ---- check_dom0_storage_health_check: started when this call added the pool; running once armed ----
  const hc = (p: string) => call('check_dom0_storage_health_check', p, 'storagehealth.py', GUID, 120, 1);
  assert.deepEqual(await hc(a), [true, false], 'guarded, armed, action reboot; added before');
  assert.deepEqual(await hc('/opt/cloudstack/bin'), [false, false], 'the script directory CloudStack passes is no mount: not added');
  assert.deepEqual(await hc(notMount), [false, false], 'no mount: not added');
  assert.deepEqual(await hc(d), [false, true], 'added by this call, not armed yet');
  const dEntry = parseRuntimePools(readFileSync(f.runtimePoolsFile, 'utf8'));
  assert.ok(dEntry.ok);
  assert.deepEqual(dEntry.pools.find((p) => p.path === d), { path: d, heartbeat: 'ovm', fence_when: 'always', added_at: dEntry.pools.find((p) => p.path === d)!.added_at, added_by: 'check_dom0_storage_health_check' });
  await waitFor('the Ovm3 pool armed', () => poolOf(f, d)?.armed, ARM_MS);
  assert.deepEqual(await hc(d), [true, false], 'armed now; this call added nothing');

  // ---- both processes killed (a crash) and started again: the runtime pools are there and arm ----
  serve.child.kill('SIGKILL');
  await serve.exited;
  f.kill();
  await f.exit;
  assert.deepEqual(await client.call('system.listMethods').then(() => 'up', () => 'down'), 'down');
  f.lines = [];
  // The watchdog stand-in is a plain file each fencer writes from offset 0: empty it, so the new
  // fencer's pets show as growth.
  writeFileSync(f.watchdog, '');
  f.start();
  serve = startServe(config, children);
  await serve.listening;
  // The killed fencer's state file is still there: judge only the new process's.
  await waitFor("the new fencer's state", () => f.state()?.pid === f.proc!.pid, ARM_MS);
  // Armed at once (inherited from the crashed fencer, the age carried on: possibly expired and held
  // until the first probe's deadline), then healthy once this process verified each.
  await waitFor('every pool armed after the restart', () => [cfgPool, a, b, d].every((p) => poolOf(f, p)?.armed), ARM_MS);
  await waitFor('every pool healthy after the restart', () => [cfgPool, a, b, d].every((p) => poolOf(f, p)?.state === 'healthy'), ARM_MS);
  assert.equal(f.sysrqText(), '', `a crash and restart on healthy storage does not fence\n${f.log()}`);
  assert.deepEqual([a, b, d].map((p) => poolOf(f, p).source), ['runtime', 'runtime', 'runtime']);
  await f.logged(/pool .*mnt-a stays armed from the previous fencer/, `a crash keeps the runtime pool armed (no lost expiry)\n${f.log()}`);
  assert.deepEqual(await hc(d), [true, false], 'after the restart of both');

  // ---- removal: no fence, the watchdog goes on being petted ----
  const r = await call('heartbeat_remove_pool', a + '/');
  assert.deepEqual(r, { removed: true, path: a, state: 'healthy' });
  await waitFor('the fencer no longer guards the removed pool', () => f.state() && !poolOf(f, a), ARM_MS);
  const petted = f.watchdogSize();
  await waitFor('the watchdog petted after the removal', () => f.watchdogSize() > petted + 2, ARM_MS).catch((e: Error) => {
    throw new Error(`${e.message}; state: ${JSON.stringify(f.state())}\n${f.log()}`);
  });
  assert.equal(f.sysrqText(), '', 'no fence');
  assert.equal(f.state().fenced, null);
  assert.equal(f.state().watchdog.petting, true);
  await f.logged(/runtime pool .*mnt-a removed \(it was healthy\): no longer guarded/);
  assert.deepEqual(await call('heartbeat_remove_pool', a), { removed: false, path: a, state: 'absent' });
  assert.equal((await call('heartbeat_status'))[a], undefined);
  assert.deepEqual(await hc(a), [false, true], 'asked again, the Ovm3 call adds it back');

  // ---- a clean stop and start: the set is the file's ----
  assert.equal(await f.stop(), 0);
  f.lines = [];
  writeFileSync(f.watchdog, '');
  f.start();
  await waitFor("the new fencer's state", () => f.state()?.pid === f.proc!.pid, ARM_MS);
  await waitFor('every pool healthy after a clean restart', () => [cfgPool, a, b, d].every((p) => poolOf(f, p)?.state === 'healthy'), ARM_MS);
  // A start within fence_after_s of a clean stop is a restart: the armed pools carry on (no lost
  // expiry, planner.inherit), and on healthy storage their first probes verify: no fence.
  await f.logged(/pool .*mnt-b stays armed from the previous fencer/, `a restart keeps the runtime pool armed\n${f.log()}`);
  assert.equal(f.sysrqText(), '', `a clean stop and restart on healthy storage does not fence\n${f.log()}`);
});

test('removal never dodges a fence: a late or expired pool is refused; a removal written while it is expired is deferred until it verifies', { skip }, async () => {
  const root = tempRoot('runtime-pools-expire');
  cleanups.push(() => removeRoot(root));
  const pool = new BindfsPool(root);
  cleanups.push(() => pool.cleanup());
  await pool.mount();
  // log-only: the expiry is reported, not carried out, so the dead pool can be watched while expired.
  const f = new FencerRun(root, [], T, { host_id: GUID, action: 'log-only', watchdog: true });
  cleanups.push(() => f.kill());
  f.start();
  await waitFor('fencer state', () => f.state(), ARM_MS);
  const srv = await startTestServer({ fencer: { ...T, state_dir: f.stateDir, runtime_pools_file: f.runtimePoolsFile, pool: [] } }, methods);
  cleanups.push(() => srv.close());
  const r = (await srv.call('heartbeat_add_pool', pool.mnt, 'ovm', 'always')) as any;
  assert.equal(r.added, true);
  await waitFor('the added pool armed', () => poolOf(f, pool.mnt)?.armed, ARM_MS);

  pool.freeze();
  await waitFor('the frozen pool expired', () => poolOf(f, pool.mnt)?.state === 'expired', ARM_MS);
  const before = readFileSync(f.runtimePoolsFile, 'utf8');
  await fault(srv.call('heartbeat_remove_pool', pool.mnt), 1002, /cannot be removed now: .*(expired|fenced)/, 'expired pool');
  assert.equal(readFileSync(f.runtimePoolsFile, 'utf8'), before, 'a refused removal changes nothing');

  // The agent's check and the fencer's tick can race: the file is written without the pool while
  // it is expired. The fencer keeps guarding it, says why, and keeps it out of the watchdog's favour.
  writeFileSync(f.runtimePoolsFile, runtimePoolsText([]));
  await waitFor('the removal deferred', () => poolOf(f, pool.mnt)?.removing, ARM_MS);
  assert.match(poolOf(f, pool.mnt).removing, /expired|fenced/);
  assert.equal(poolOf(f, pool.mnt).state, 'expired', 'still judged');
  assert.equal(((await srv.call('heartbeat_status')) as any)[pool.mnt].removing, poolOf(f, pool.mnt).removing);
  await f.logged(/was removed from the runtime pools file, but .*: it stays guarded until it verifies again/);

  // A corrupt file: the last good set (no pool) stays, said loudly; nothing is added or dropped.
  writeFileSync(f.runtimePoolsFile, '{"version":1,"pools":[{"path":');
  await waitFor('the unusable file reported', () => f.state()?.runtime_pools?.error, ARM_MS);
  await f.logged(/runtime pools file .* is unusable \(not JSON/);
  assert.ok(poolOf(f, pool.mnt), 'still guarded');
  const other = tmpfs(join(root, 'other-mnt'));
  await fault(srv.call('heartbeat_add_pool', other, 'ovm', 'always'), 1011, /unusable.*nothing changed/, 'the agent never overwrites an unusable file');
  writeFileSync(f.runtimePoolsFile, runtimePoolsText([]));
  await waitFor('the file usable again', () => f.state()?.runtime_pools?.error === null, ARM_MS);

  // The storage answers again: the pool verifies, and only then goes.
  pool.thaw();
  await waitFor('the pool removed once it verified', () => f.state() && !poolOf(f, pool.mnt), ARM_MS);
  await f.logged(/runtime pool .* removed \(it was healthy\): no longer guarded/);
});
