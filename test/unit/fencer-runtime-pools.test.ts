// Runtime pools (issue 17, "pools the orchestrator adds"): the pure decisions of
// src/fencer/runtime-pools.ts and the planner's start-up window for a pool added while the fencer
// runs. The host test (test/host/fencer-runtime-pools.test.ts) drives the same through both processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_RUNTIME_POOLS, normalizePoolPath, parseRuntimePools, planAdd, planRemove, reconcile, removableNow, runtimePoolsText,
  type GuardedPool, type GuardedRuntime, type RuntimePoolEntry,
} from '../../src/fencer/runtime-pools.js';
import { planTick, type Facts, type PoolFacts } from '../../src/fencer/planner.js';
import type { Timing } from '../../src/fencer/pool-health.js';
import { BrickError } from '../../src/shared/errors.js';

const entry = (path: string, o: Partial<RuntimePoolEntry> = {}): RuntimePoolEntry => ({ path, heartbeat: 'ovm', fence_when: 'in-use', added_at: '2026-11-29T12:00:00.000Z', added_by: 'heartbeat_add_pool', ...o });

test('pool paths: absolute, no "..", NUL or newline; normalized without a trailing slash', () => {
  assert.equal(normalizePoolPath('/mnt/p/'), '/mnt/p');
  assert.equal(normalizePoolPath('//mnt//p///'), '/mnt/p');
  assert.equal(normalizePoolPath('/mnt/./p'), '/mnt/p');
  assert.equal(normalizePoolPath('/'), '/');
  for (const bad of ['mnt/p', '', '/mnt/../etc', '/mnt/p\0', '/mnt/p\nx', 7, null, undefined, '/' + 'a'.repeat(4096)]) assert.equal(normalizePoolPath(bad), undefined, JSON.stringify(bad));
});

test('the runtime pools file: round trip; any bad entry, duplicate, truncation or wrong version makes the whole file unusable', () => {
  const pools = [entry('/mnt/a'), entry('/mnt/b', { heartbeat: 'kvm', fence_when: 'always' })];
  assert.deepEqual(parseRuntimePools(runtimePoolsText(pools)), { ok: true, pools });
  assert.deepEqual(parseRuntimePools('{"version":1,"pools":[]}'), { ok: true, pools: [] });
  const text = runtimePoolsText(pools);
  const bad: Array<[string, RegExp]> = [
    [text.slice(0, text.length - 9), /not JSON/],
    ['', /not JSON/],
    ['{"version":2,"pools":[]}', /version 1/],
    ['{"version":1}', /version 1/],
    [JSON.stringify({ version: 1, pools: [entry('/mnt/a'), entry('/mnt/a')] }), /listed twice/],
    [JSON.stringify({ version: 1, pools: [entry('mnt/a')] }), /pools\[0\]\.path/],
    [JSON.stringify({ version: 1, pools: [entry('/mnt/a/')] }), /pools\[0\]\.path/],
    [JSON.stringify({ version: 1, pools: [entry('/mnt/a', { heartbeat: 'nfs' as never })] }), /heartbeat/],
    [JSON.stringify({ version: 1, pools: [entry('/mnt/a', { fence_when: 'never' as never })] }), /fence_when/],
    [JSON.stringify({ version: 1, pools: Array.from({ length: MAX_RUNTIME_POOLS + 1 }, (_, i) => entry(`/mnt/${i}`)) }), /at most/],
  ];
  for (const [t, why] of bad) {
    const r = parseRuntimePools(t);
    assert.equal(r.ok, false, t.slice(0, 60));
    assert.match((r as { error: string }).error, why);
  }
});

const guarded = (path: string, o: Partial<GuardedPool> = {}): GuardedPool => ({ path, resolved: path, heartbeat: 'ovm', fence_when: 'in-use', source: 'runtime', ...o });
const req = (path: string, o: Partial<Parameters<typeof planAdd>[2]> = {}) => ({ path, resolved: path, heartbeat: 'ovm' as const, fenceWhen: 'in-use' as const, addedBy: 't', nowIso: 'now', ...o });

test('add: a new pool is appended; the same pool again (same path, or the same mount through another path) changes nothing; other settings are a conflict', () => {
  const cur = [entry('/mnt/a')];
  const g = [guarded('/mnt/a'), guarded('/OVS/Repositories/x', { source: 'config', resolved: '/nfs/x' })];
  const add = planAdd(cur, g, req('/mnt/b'));
  assert.equal(add.kind, 'add');
  assert.deepEqual((add as { pools: RuntimePoolEntry[] }).pools.map((p) => p.path), ['/mnt/a', '/mnt/b']);
  assert.deepEqual((add as { pools: RuntimePoolEntry[] }).pools[1], { path: '/mnt/b', heartbeat: 'ovm', fence_when: 'in-use', added_at: 'now', added_by: 't' });
  assert.deepEqual(planAdd(cur, g, req('/mnt/a')), { kind: 'exists', pool: g[0] });
  assert.deepEqual(planAdd(cur, g, req('/link-to-a', { resolved: '/mnt/a' })), { kind: 'exists', pool: g[0] }, 'a symlink to a guarded pool');
  assert.deepEqual(planAdd(cur, g, req('/nfs/x', { resolved: '/nfs/x' })), { kind: 'exists', pool: g[1] }, 'the resolved path of a config pool');
  const c1 = planAdd(cur, g, req('/mnt/a', { heartbeat: 'kvm' }));
  assert.equal(c1.kind, 'conflict');
  assert.match((c1 as { message: string }).message, /heartbeat "ovm", not "kvm".*remove it first/);
  const c2 = planAdd(cur, g, req('/nfs/x', { fenceWhen: 'always' }));
  assert.match((c2 as { message: string }).message, /\(as \/OVS\/Repositories\/x\) with fence_when "in-use", not "always", in brick.toml/);
  const full = Array.from({ length: MAX_RUNTIME_POOLS }, (_, i) => entry(`/mnt/${i}`));
  assert.throws(() => planAdd(full, [], req('/mnt/new')), (e: unknown) => e instanceof BrickError && e.fault === 'TOO_LARGE');
});

test('remove: a config pool never; a late, expired or fenced pool is refused; healthy, unverified and dead pools go; no fencer state: the entry goes', () => {
  const cur = [entry('/mnt/a'), entry('/mnt/b')];
  assert.deepEqual(planRemove(cur, ['/cfg'], '/cfg', undefined), { kind: 'config' });
  assert.deepEqual(planRemove(cur, ['/cfg'], '/mnt/z', undefined), { kind: 'absent' });
  for (const [state, fenced] of [['late', false], ['expired', false], ['healthy', true]] as const) {
    const r = planRemove(cur, [], '/mnt/a', { state, armed: true, fenced });
    assert.equal(r.kind, 'refuse', `${state} fenced=${fenced}`);
    assert.match((r as { message: string }).message, /cannot be removed now: .*once it verifies again/);
  }
  for (const state of ['healthy', 'unverified', 'dead'] as const) {
    const r = planRemove(cur, [], '/mnt/a', { state, armed: state !== 'unverified', fenced: false });
    assert.equal(r.kind, 'remove', state);
    assert.deepEqual((r as { pools: RuntimePoolEntry[] }).pools.map((p) => p.path), ['/mnt/b']);
  }
  assert.equal(planRemove(cur, [], '/mnt/b', undefined).kind, 'remove');
  assert.deepEqual(removableNow({ state: 'expired', armed: true, fenced: false }), { ok: false, why: 'it is expired: a fence is due' });
});

test('the fencer reconciles: adds new entries, removes what may go, defers a late/expired/fenced pool, updates fence_when, ignores config paths and format changes', () => {
  const g = (path: string, state: GuardedRuntime['view']['state'], o: Partial<GuardedRuntime> = {}): GuardedRuntime => ({
    path, source: 'runtime', heartbeat: 'ovm', fence_when: 'in-use', view: { state, armed: state !== 'unverified', fenced: false }, ...o,
  });
  const guardedNow = [
    g('/cfg', 'healthy', { source: 'config' }),
    g('/keep', 'healthy'),
    g('/gone-healthy', 'healthy'),
    g('/gone-unverified', 'unverified'),
    g('/gone-dead', 'dead'),
    g('/gone-late', 'late'),
    g('/gone-expired', 'expired'),
    g('/gone-fenced', 'healthy', { view: { state: 'healthy', armed: true, fenced: true } }),
    g('/fw', 'healthy'),
    g('/fmt', 'healthy'),
  ];
  const r = reconcile(guardedNow, [entry('/keep'), entry('/new'), entry('/cfg'), entry('/fw', { fence_when: 'always' }), entry('/fmt', { heartbeat: 'kvm' })]);
  assert.deepEqual(r.add.map((e) => e.path), ['/new']);
  assert.deepEqual(r.remove, ['/gone-healthy', '/gone-unverified', '/gone-dead']);
  assert.deepEqual(r.defer.map((d) => d.path), ['/gone-late', '/gone-expired', '/gone-fenced']);
  assert.deepEqual(r.update, [{ path: '/fw', fence_when: 'always' }]);
  assert.deepEqual(r.ignore.map((i) => i.path), ['/cfg', '/fmt']);
  // A missing or emptied file removes runtime pools by the same rules; config pools are never touched.
  const empty = reconcile(guardedNow, []);
  assert.ok(!empty.remove.includes('/cfg') && !empty.defer.some((d) => d.path === '/cfg'));
  assert.deepEqual(empty.defer.map((d) => d.path), ['/gone-late', '/gone-expired', '/gone-fenced']);
});

test('start-up window of a pool added while the fencer runs: counted from when it was added, at −ε/=/+ε; it never fails start-up, a start pool does', () => {
  const T: Timing = { probeIntervalMs: 5000, probeTimeoutMs: 10000, fenceAfterMs: 30000 };
  const W = 120_000;
  const E = 1;
  const startup = { startedMs: 1000, windowMs: W };
  const added = 500_000;
  const p = (o: Partial<PoolFacts> = {}): PoolFacts => ({ path: '/rt', fenceWhen: 'always', lastOkMs: undefined, firstProbeDeadlineMs: added + 10_000, probeInFlight: true, lastProbeStartMs: added, addedMs: added, ...o });
  const facts = (nowMs: number, pools: PoolFacts[]): Facts => ({ nowMs, timing: T, action: 'reboot', watchdog: true, fenced: null, pools, vm: { inFlight: false, never: true, refreshMs: 5000, timeoutMs: 10_000 }, startup });
  let plan = planTick(facts(added + W - E, [p()]));
  assert.equal(plan.pools[0].overdue, false, 'long after the fencer started, but inside its own window');
  assert.equal(plan.pet, true);
  for (const now of [added + W, added + W + E]) {
    plan = planTick(facts(now, [p()]));
    assert.equal(plan.pools[0].overdue, true, `${now}`);
    assert.equal(plan.failStartup, undefined, 'an added pool never ends the fencer');
    assert.equal(plan.pet, true, 'the other pools stay guarded, the watchdog petted');
    assert.equal(plan.fence, undefined, 'never verified: never fences');
  }
  // The same pool present at start (no addedMs) fails start-up at startedMs + W.
  plan = planTick(facts(1000 + W, [p({ addedMs: undefined })]));
  assert.deepEqual(plan.failStartup, { pools: ['/rt'] });
  // Once verified, an added pool arms and expires like any other.
  plan = planTick(facts(added + 20_000 + T.fenceAfterMs, [p({ lastOkMs: added + 20_000, probeInFlight: false, lastProbeStartMs: added + 20_000 + T.fenceAfterMs })]));
  assert.equal(plan.pools[0].state, 'expired');
  assert.equal(plan.fence?.pool.path, '/rt');
});
