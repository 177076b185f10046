// The files brick writes in state_dir, marker_dir and the runtime pools file's directory, with real
// writers and real children:
//  - a writer killed between its temp file and its rename (test/fixtures/durable-write-child.ts runs
//    the real durable-write steps and is SIGKILLed before its mv) leaves `.NAME.PID.tmp`; the next
//    start of the fencer, the agent's next write of the runtime pools file and the agent's start
//    (safe-apply recover) remove it; a temp file whose writer still runs is never removed;
//  - every file and directory gets its mode whatever the umask of whoever started brick (000, 077):
//    the modes brick asks for are set exactly, and brick's entry sets the umask its children's files
//    (dd in a durable write) are made with.
// The judgement of names and pids alone: test/unit/stale-temps.test.ts.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { run } from '../../src/shared/run.js';
import { writeFileAtomic } from '../../src/shared/atomic-write.js';
import { sweepStaleTemps } from '../../src/shared/stale-temps.js';
import { RuntimePoolsWriter, makeDir } from '../../src/fencer/runtime-pools-writer.js';
import { parseRuntimePools, type RuntimePoolEntry } from '../../src/fencer/runtime-pools.js';
import { ensureDir } from '../../src/fencer/state.js';
import { takeInstanceLock } from '../../src/fencer/instance-lock.js';
import { SafeApply, PENDING_FILE, pendingPath } from '../../src/network/host/safe-apply.js';
import { createLogger } from '../../src/shared/log.js';
import { networkConfig } from '../fixtures/network-ctx.js';
import { FencerRun, REPO, removeRoot, tempRoot, waitFor } from './fencer-harness.js';
import { freePort, startServe } from '../fixtures/serve-process.js';
import { XmlRpcClient } from '../../src/agent-extension/client.js';

const CHILD = join(REPO, 'test/fixtures/durable-write-child.ts');
const POOLS: RuntimePoolEntry[] = [{ path: '/nfs/a', heartbeat: 'ovm', fence_when: 'in-use', added_at: '2026-11-30T19:00:00.000Z', added_by: 'heartbeat_add_pool' }];
const log = createLogger({ svc: 'test', level: 'silent' });
const children: ChildProcess[] = [];
test.after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** A writer of `file` stopped between its temp file (written, fsynced) and its rename: its pid and the temp file. */
async function heldWriter(file: string): Promise<{ child: ChildProcess; tmp: string; killed: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, file], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b));
  child.stderr!.on('data', (b: Buffer) => (out += b));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const tmp = await waitFor(`the writer's temp file (${out})`, () => /^temp written (.*)$/m.exec(out)?.[1], 30_000);
  assert.equal(tmp, join(dirname(file), `.${basename(file)}.${child.pid}.tmp`));
  assert.equal(readFileSync(tmp, 'utf8'), 'from the killed writer\n');
  return {
    child,
    tmp,
    killed: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A real fencer with no pool, log-only, no watchdog, in a temp root of its own: stopped and removed after the test. */
function logOnlyFencer(t: TestContext, name: string): FencerRun {
  const root = tempRoot(name);
  const f = new FencerRun(root, [], undefined, { action: 'log-only', watchdog: false });
  t.after(async () => {
    await f.stop();
    removeRoot(root);
  });
  return f;
}

const temps = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.tmp')).sort();

test('the runtime pools file: a killed writer\'s temp file is removed by the next process\'s first write; a live writer\'s is kept', async (t) => {
  const root = tempRoot('durable-rt');
  t.after(() => removeRoot(root));
  const file = join(root, 'lib', 'runtime-pools.json');
  mkdirSync(dirname(file));
  const live = await heldWriter(file);
  const dead = await heldWriter(file);
  await dead.killed();
  // One whose pid runs (another process: this test's parent) and another file's temp file stay too.
  const mine = join(dirname(file), `.runtime-pools.json.${process.ppid}.tmp`);
  const other = join(dirname(file), `.other.json.${dead.child.pid}.tmp`);
  writeFileSync(mine, 'x');
  writeFileSync(other, 'x');
  assert.equal(await new RuntimePoolsWriter().write(run, file, POOLS, 10_000), 'written');
  assert.deepEqual(parseRuntimePools(readFileSync(file, 'utf8')), { ok: true, pools: POOLS });
  assert.equal(existsSync(dead.tmp), false, 'the killed writer\'s temp file is gone');
  assert.equal(existsSync(live.tmp), true, 'the live writer\'s temp file is kept (it may still rename it)');
  assert.deepEqual(temps(dirname(file)), [basename(live.tmp), basename(other), basename(mine)].sort());
  // Once the live one is killed too, the next process's first write removes it.
  await live.killed();
  assert.equal(await new RuntimePoolsWriter().write(run, file, POOLS, 10_000), 'written');
  assert.deepEqual(temps(dirname(file)), [basename(other), basename(mine)].sort());
});

test('the fencer\'s start removes the temp files killed writers left in state_dir and marker_dir, and keeps a live writer\'s', async (t) => {
  const f = logOnlyFencer(t, 'durable-fencer');
  mkdirSync(f.stateDir);
  mkdirSync(f.markerDir);
  const dead = [];
  for (const file of [join(f.stateDir, 'fencer.json'), join(f.markerDir, 'fence-marker.json'), join(f.markerDir, 'fencer-lease.json'), join(f.markerDir, 'killed-vm-u1-1764530000000.json')]) {
    const w = await heldWriter(file);
    await w.killed();
    dead.push(w.tmp);
  }
  const live = await heldWriter(join(f.markerDir, 'fence-marker.json'));
  f.start();
  await waitFor(`the fencer's state (${f.log()})`, () => f.state(), 30_000);
  for (const tmp of dead) assert.equal(existsSync(tmp), false, `${tmp} removed`);
  assert.equal(existsSync(live.tmp), true, 'a live writer\'s temp file is kept');
  await f.logged(/removed 1 temp file\(s\) a writer that is gone left in .*state/);
  await f.logged(/removed 3 temp file\(s\) a writer that is gone left in .*marker/);
  await live.killed();
});

test('the agent\'s start (safe-apply recover): the temp file of a pending-change record a killed brick left is removed', async () => {
  const config = networkConfig({});
  const w = await heldWriter(pendingPath(config));
  const live = await heldWriter(pendingPath(config));
  await w.killed();
  assert.equal(await new SafeApply().recover(config, run, log), 'none');
  assert.equal(existsSync(w.tmp), false);
  assert.equal(existsSync(live.tmp), true);
  assert.deepEqual(temps(config.fencer.state_dir), [basename(live.tmp)]);
  await live.killed();
  assert.deepEqual(sweepStaleTemps(config.fencer.state_dir, (b) => b === PENDING_FILE), { removed: [live.tmp], errors: [] });
  removeRoot(config.fencer.state_dir);
});

const mode = (p: string) => (statSync(p).mode & 0o7777).toString(8);

for (const umask of [0o000, 0o077]) {
  test(`under umask ${umask.toString(8).padStart(3, '0')}: atomic writes, the lock, the directories brick makes get their own modes`, async (t) => {
    const root = tempRoot('durable-mode');
    const old = process.umask(umask);
    t.after(() => {
      process.umask(old);
      removeRoot(root);
    });
    // (A durable write's file is dd's: 0666 less the umask, which brick's entry sets to 022; the
    // real programs below show it under umask 000 and 077.)
    // Atomic writes (the fencer's state; the pending network change, 0600).
    writeFileAtomic(join(root, 'fencer.json'), 'x\n', { durable: false });
    assert.equal(mode(join(root, 'fencer.json')), '644');
    writeFileAtomic(join(root, 'network-pending.json'), 'x\n', { mode: 0o600 });
    assert.equal(mode(join(root, 'network-pending.json')), '600');
    // state_dir (0755) and marker_dir (0700) with a missing parent; the runtime pools file's directory (0700).
    ensureDir(join(root, 'run', 'brick'), 0o755);
    assert.deepEqual([mode(join(root, 'run')), mode(join(root, 'run', 'brick'))], ['755', '755']);
    ensureDir(join(root, 'lib', 'brick'), 0o700);
    assert.deepEqual([mode(join(root, 'lib')), mode(join(root, 'lib', 'brick'))], ['700', '700']);
    await makeDir(join(root, 'rt', 'pools'));
    assert.deepEqual([mode(join(root, 'rt')), mode(join(root, 'rt', 'pools'))], ['700', '700']);
    // One that is there already is left as it is (brick doctor says when others can write it).
    mkdirSync(join(root, 'there'), { mode: 0o750 });
    ensureDir(join(root, 'there'), 0o700);
    await makeDir(join(root, 'there'));
    assert.equal(mode(join(root, 'there')), (0o750 & ~umask).toString(8));
    // The fencer's lock.
    const lock = await takeInstanceLock(join(root, 'run', 'brick'));
    t.after(() => lock.release());
    assert.equal(mode(join(root, 'run', 'brick', 'fencer.lock')), '644');
  });
}

test('the real fencer started under umask 000: nothing it makes is writable by others', async (t) => {
  const f = logOnlyFencer(t, 'durable-fencer-mode');
  const old = process.umask(0);
  try {
    f.start();
  } finally {
    process.umask(old);
  }
  const lease = join(f.markerDir, 'fencer-lease.json');
  await waitFor(`the fencer's state and lease (${f.log()})`, () => f.state() && existsSync(lease), 30_000);
  assert.deepEqual(
    [f.stateDir, join(f.stateDir, 'fencer.json'), join(f.stateDir, 'fencer.lock'), f.markerDir, lease].map((p) => `${basename(p)} ${mode(p)}`),
    ['state 755', 'fencer.json 644', 'fencer.lock 644', 'marker 700', 'fencer-lease.json 644'],
  );
});

test('the real fencer with a state_dir every user can write (there already): it runs, says so at start, and leaves the mode the admin chose', async (t) => {
  const f = logOnlyFencer(t, 'durable-fencer-loose');
  mkdirSync(f.stateDir);
  chmodSync(f.stateDir, 0o777);
  f.start();
  await waitFor(`the fencer's state (${f.log()})`, () => f.state(), 30_000);
  await waitFor(`the warning (${f.log()})`, () => /fencer\.state_dir .* has mode 0777: its group and every user can write it: others can replace what the fencer writes there/.test(f.log()), 10_000);
  assert.doesNotMatch(f.log(), /fencer\.marker_dir .* has mode/, 'marker_dir, made by the fencer 0700, is fine');
  assert.equal(mode(f.stateDir), '777');
});

for (const umask of [0o000, 0o077]) {
  test(`brick serve started under umask ${umask.toString(8).padStart(3, '0')}: heartbeat_add_pool writes the runtime pools file 0644 in a directory it makes 0700`, { timeout: 120_000 }, async (t) => {
    const root = tempRoot('durable-serve-mode');
    const children: Array<{ kill: (s: NodeJS.Signals) => boolean }> = [];
    const pool = join(root, 'pool');
    mkdirSync(pool);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', pool]);
    t.after(() => {
      children.forEach((c) => c.kill('SIGKILL'));
      execFileSync('umount', ['-l', pool], { stdio: 'ignore' });
      removeRoot(root);
    });
    const port = await freePort();
    const config = join(root, 'brick.toml');
    const rt = join(root, 'lib', 'brick', 'runtime-pools.json');
    writeFileSync(
      config,
      `[server]\nlisten = "127.0.0.1:${port}"\npassword = "pw"\ngenerate_credentials = false\ntls_cert = ""\ntls_key = ""\n` +
        `[fencer]\nstate_dir = "${join(root, 'state')}"\nmarker_dir = "${join(root, 'marker')}"\nruntime_pools_file = "${rt}"\nwatchdog_device = ""\n`,
    );
    const old = process.umask(umask);
    let serve;
    try {
      serve = startServe(config, children); // the child inherits the umask; brick's entry sets its own
    } finally {
      process.umask(old);
    }
    await serve.listening;
    const c = new XmlRpcClient({ url: `http://127.0.0.1:${port}/`, user: 'oracle', password: 'pw', keepAlive: false, timeoutMs: 60_000 });
    try {
      const r = (await c.call('heartbeat_add_pool', pool, 'ovm', 'in-use')) as { added: boolean };
      assert.equal(r.added, true);
    } finally {
      c.close();
    }
    assert.deepEqual(parseRuntimePools(readFileSync(rt, 'utf8')).ok, true);
    assert.deepEqual(
      [join(root, 'lib'), dirname(rt), rt].map((p) => `${basename(p)} ${mode(p)}`),
      ['lib 700', 'brick 700', 'runtime-pools.json 644'],
    );
  });
}
