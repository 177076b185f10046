// The files brick writes in state_dir, marker_dir and the runtime pools file's directory, with real
// writers and real children:
//  - a writer killed between its temp file and its rename (test/fixtures/durable-write-child.ts runs
//    the real durable-write steps and is SIGKILLed before its mv) leaves `.NAME.PID.tmp`; the next
//    start of the fencer, the agent's next write of the runtime pools file and the agent's start
//    (safe-apply recover) remove it; a temp file whose writer still runs is never removed.
// The judgement of names and pids alone: test/unit/stale-temps.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { run } from '../../src/shared/run.js';
import { sweepStaleTemps } from '../../src/shared/stale-temps.js';
import { RuntimePoolsWriter } from '../../src/fencer/runtime-pools-writer.js';
import { parseRuntimePools, type RuntimePoolEntry } from '../../src/fencer/runtime-pools.js';
import { SafeApply, PENDING_FILE, pendingPath } from '../../src/network/host/safe-apply.js';
import { createLogger } from '../../src/shared/log.js';
import { networkConfig } from '../fixtures/network-ctx.js';
import { FencerRun, REPO, removeRoot, tempRoot, waitFor } from './fencer-harness.js';

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
  const root = tempRoot('durable-fencer');
  const f = new FencerRun(root, [], undefined, { action: 'log-only', watchdog: false });
  t.after(async () => {
    await f.stop();
    removeRoot(root);
  });
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
  assert.match(f.log(), /removed 1 temp file\(s\) a writer that is gone left in .*state/);
  assert.match(f.log(), /removed 3 temp file\(s\) a writer that is gone left in .*marker/);
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
