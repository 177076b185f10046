// The agent's reads of the fencer's local files (state in state_dir, fence marker in marker_dir) on
// a disk that hangs: each read answers by its deadline, at most one is outstanding per directory
// (the next answers at once that the directory has not answered), and the callers judge that as
// "could not be read", never as a healthy pool. The disk is a readFile that never settles (or
// settles when the test says): nothing here depends on how fast the machine is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { BoundedReader, readFailure, type BoundedRead } from '../../src/shared/bounded-read.js';
import { loadFencerStateBounded, readFencerStateBounded, type FencerState } from '../../src/fencer/state.js';
import { readFenceMarkerBounded } from '../../src/fencer/marker.js';
import { checkPool, heartbeatStatusReply, type HeartbeatFacts } from '../../src/fencer/methods.js';
import { readRuntimePoolsBounded, runtimePoolsText } from '../../src/fencer/runtime-pools.js';
import { defaultConfig } from '../../src/config/load.js';
import { registerFencerMetrics } from '../../src/fencer/metrics.js';
import { BrickError } from '../../src/shared/errors.js';

/** A disk: each readFile is recorded and settles only when the test settles it. */
function disk() {
  const calls: Array<{ path: string; resolve: (t: string) => void; reject: (e: Error) => void }> = [];
  let t = 0;
  const reader = new BoundedReader({
    readFile: (path) => new Promise<string>((resolve, reject) => calls.push({ path, resolve, reject })),
    now: () => t,
  });
  return { reader, calls, advance: (ms: number) => (t += ms) };
}

test('a read with no answer by its deadline answers "timeout"; while it is outstanding no other read of that directory starts (busy at once); other directories read; once it ends, the next read reads again', async () => {
  const d = disk();
  const first = await d.reader.read('/var/lib/brick/fence-marker.json', 20);
  assert.deepEqual(first, { kind: 'timeout', deadlineMs: 20 });
  assert.equal(d.calls.length, 1);
  d.advance(5000);
  // The same file and another file of that directory: answered at once, nothing started.
  assert.deepEqual(await d.reader.read('/var/lib/brick/fence-marker.json', 60_000), { kind: 'busy', sinceMs: 5000 });
  assert.deepEqual(await d.reader.read('/var/lib/brick/runtime-pools.json', 60_000), { kind: 'busy', sinceMs: 5000 });
  assert.equal(d.calls.length, 1, 'no second read piles up behind the stuck one');
  // Another directory is not held by it.
  const other = d.reader.read('/run/brick/fencer.json', 60_000);
  assert.equal(d.calls.length, 2);
  d.calls[1].resolve('{}');
  assert.deepEqual(await other, { kind: 'ok', text: '{}' });
  // The stuck read ends (the disk came back): the directory reads again.
  d.calls[0].resolve('late');
  await new Promise((r) => setImmediate(r));
  const again = d.reader.read('/var/lib/brick/fence-marker.json', 60_000);
  assert.equal(d.calls.length, 3);
  const e = Object.assign(new Error('gone'), { code: 'ENOENT' });
  d.calls[2].reject(e);
  assert.deepEqual(await again, { kind: 'error', code: 'ENOENT' });
  // A failed read frees its directory too.
  const third = d.reader.read('/var/lib/brick/fence-marker.json', 60_000);
  assert.equal(d.calls.length, 4);
  d.calls[3].resolve('x');
  assert.deepEqual(await third, { kind: 'ok', text: 'x' });
});

test('an outstanding read is waited for until it is as old as its deadline (−ε: the next read waits, then reads), and is a hung directory from then on (=, +ε: busy at once)', async () => {
  const d = disk();
  // The first read's deadline is 1000 ms on the reader's clock (its own timer, a minute of real time, never runs here).
  void d.reader.read('/run/brick/fencer.json', 1000);
  assert.equal(d.calls.length, 1);
  d.advance(999);
  const waiting = d.reader.read('/run/brick/fencer.json', 60_000);
  let answered = false;
  void waiting.then(() => (answered = true));
  d.advance(1);
  assert.deepEqual(await d.reader.read('/run/brick/fencer.json', 60_000), { kind: 'busy', sinceMs: 1000 }, '=');
  d.advance(1);
  assert.deepEqual(await d.reader.read('/run/brick/fencer.json', 60_000), { kind: 'busy', sinceMs: 1001 }, '+ε');
  await new Promise((r) => setImmediate(r));
  assert.equal(answered, false, 'the read made at −ε is still waiting for the first');
  d.calls[0].resolve('{"first":1}');
  await new Promise((r) => setImmediate(r));
  assert.equal(d.calls.length, 2, 'then it reads itself');
  d.calls[1].resolve('{"second":2}');
  assert.deepEqual(await waiting, { kind: 'ok', text: '{"second":2}' });
});

test('two reads of one directory at once on a disk that answers (two calls, a call and a scrape): the second waits for the first, then reads; neither is "busy"', async () => {
  const d = disk();
  const a = d.reader.read('/run/brick/fencer.json', 60_000);
  d.advance(10);
  const b = d.reader.read('/run/brick/fencer.json', 60_000);
  const c = d.reader.read('/run/brick/other.json', 60_000);
  assert.equal(d.calls.length, 1, 'one read at a time in a directory');
  d.calls[0].resolve('A');
  assert.deepEqual(await a, { kind: 'ok', text: 'A' });
  await new Promise((r) => setImmediate(r));
  assert.equal(d.calls.length, 2, 'the next waiting read started once the first ended');
  d.calls[1].resolve(d.calls[1].path);
  await new Promise((r) => setImmediate(r));
  assert.equal(d.calls.length, 3);
  d.calls[2].resolve(d.calls[2].path);
  const got = [await b, await c].map((r) => (r.kind === 'ok' ? r.text : r.kind)).sort();
  assert.deepEqual(got, ['/run/brick/fencer.json', '/run/brick/other.json']);
});

test('a read waiting behind one that then hangs answers "timeout" at its own deadline and starts nothing', async () => {
  const d = disk();
  const first = d.reader.read('/var/lib/brick/a.json', 40);
  const second = d.reader.read('/var/lib/brick/b.json', 40);
  assert.deepEqual(await first, { kind: 'timeout', deadlineMs: 40 });
  assert.deepEqual(await second, { kind: 'timeout', deadlineMs: 40 });
  d.calls[0].resolve('late');
  await new Promise((r) => setImmediate(r));
  assert.equal(d.calls.length, 1, 'the timed-out waiter did not start a read when the stuck one ended');
});

test('the real reader: a file is read, a missing one is ENOENT', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'brick-bounded-read-'));
  writeFileSync(join(dir, 'f'), 'text');
  const r = new BoundedReader();
  assert.deepEqual(await r.read(join(dir, 'f')), { kind: 'ok', text: 'text' });
  assert.deepEqual(await r.read(join(dir, 'missing')), { kind: 'error', code: 'ENOENT' });
  rmSync(dir, { recursive: true, force: true });
});

test('readFailure says what went wrong, and a read with no answer says so with its deadline', () => {
  assert.equal(readFailure({ kind: 'timeout', deadlineMs: 2000 }), 'could not be read within 2 s (no answer: a hung disk?)');
  assert.match(readFailure({ kind: 'busy', sinceMs: 12_345 }), /could not be read: an earlier read .* no answer for 12.3 s/);
  assert.equal(readFailure({ kind: 'error', code: 'EIO' }), 'cannot read it: EIO');
});

/** A reader that answers every read with `r` (a hung disk: busy; a gone file: ENOENT). */
const answering = (r: BoundedRead) => ({ read: async () => r }) as unknown as BoundedReader;
const hung = answering({ kind: 'busy', sinceMs: 30_000 });

const state: FencerState = {
  version: 1, pid: process.pid, host_id: 'h', written_at_ms: Date.now(), started_at_ms: 0, action: 'reboot', fence_after_s: 30, probe_interval_s: 5, probe_timeout_s: 10,
  watchdog: { device: '', open: false, petting: false, last_pet_age_s: null, timeout_s: 20 }, fenced: null,
  last_fence: { at: '2026-01-01T00:00:00Z', pool: '/mnt/p', reason: 'r', action: 'reboot', host_id: 'h', last_ok_age_s: 30 },
  pools: [{ path: '/mnt/p', heartbeat: 'ovm', heartbeat_file: '/mnt/p/.hb-h', fence_when: 'in-use', state: 'healthy', armed: true, in_use: true,
    last_ok_age_s: 1, fence_in_s: 29, probe_latency_ms: { last: 1, min: 1, max: 1 }, stuck_probes: 0, stuck_for_s: null, probes_ok: 1, probes_failed: 0, last_error: null }],
};

test('the fencer files read with no answer: the state is "could not be read" (no state, no guard), the marker is unread (neither there nor gone)', async () => {
  assert.deepEqual(await loadFencerStateBounded('/run/brick', answering({ kind: 'timeout', deadlineMs: 2000 })), { problem: 'could not be read within 2 s (no answer: a hung disk?)', noAnswer: true });
  assert.deepEqual(await loadFencerStateBounded('/run/brick', answering({ kind: 'error', code: 'EIO' })), { problem: 'cannot read it: EIO' });
  assert.deepEqual(await loadFencerStateBounded('/run/brick', answering({ kind: 'error', code: 'ENOENT' })), {});
  assert.deepEqual((await loadFencerStateBounded('/run/brick', answering({ kind: 'ok', text: JSON.stringify(state) }))).state?.host_id, 'h');
  assert.match((await readFencerStateBounded('/run/brick', hung)).unread ?? '', /could not be read/);
  assert.equal((await readFencerStateBounded('/run/brick', hung)).state, undefined);
  assert.deepEqual(await readFencerStateBounded('/run/brick', answering({ kind: 'error', code: 'ENOENT' })), {});
  assert.match((await readFenceMarkerBounded('/var/lib/brick', hung)).unread ?? '', /could not be read/);
  assert.deepEqual(await readFenceMarkerBounded('/var/lib/brick', answering({ kind: 'error', code: 'ENOENT' })), { gone: true });
  assert.deepEqual(await readFenceMarkerBounded('/var/lib/brick', answering({ kind: 'ok', text: 'garbage' })), { unread: 'not a fence marker' });
});

test('heartbeat_status: a state with no answer is NOT_READY saying it could not be read in time, never a pool state; a marker with no answer: the fencer\'s own copy stands in', () => {
  const facts = (over: Partial<HeartbeatFacts>): HeartbeatFacts => ({ stateFile: '/run/brick/fencer.json', loaded: { state }, marker: { gone: true }, ...over });
  assert.throws(
    () => heartbeatStatusReply(facts({ loaded: { problem: 'could not be read within 2 s (no answer: a hung disk?)', noAnswer: true } })),
    (e: BrickError) => e.fault === 'NOT_READY' && /^the fencer state \/run\/brick\/fencer\.json could not be read within 2 s .*cannot tell what the fencer guards/.test(e.message),
  );
  const now = state.written_at_ms + 1000;
  const unread = heartbeatStatusReply(facts({ marker: { unread: 'could not be read within 2 s (no answer: a hung disk?)' } }), now) as any;
  assert.equal(unread['/mnt/p'].state, 'healthy');
  assert.equal(unread['/mnt/p'].last_fence.at, '2026-01-01T00:00:00Z', "the fencer's copy");
  assert.equal((heartbeatStatusReply(facts({ marker: { gone: true } }), now) as any)['/mnt/p'].last_fence, null, 'removed by the admin');
  const m = { ...state.last_fence!, at: '2026-02-02T00:00:00Z' };
  assert.equal((heartbeatStatusReply(facts({ marker: { marker: m } }), now) as any)['/mnt/p'].last_fence.at, m.at, 'the file decides');
});

test('/metrics with the state file not read in time: brick_fencer_state_unusable 1, no metric read from the state, the scrape answers', async () => {
  const scrape = async (reader: BoundedReader) => {
    const reg = new Registry();
    registerFencerMetrics(reg, { state_dir: '/run/brick', marker_dir: '/var/lib/brick' }, reader);
    return reg.metrics();
  };
  const text = await scrape(hung);
  assert.match(text, /^brick_fencer_state_unusable 1$/m);
  assert.match(text, /^brick_fencer_running 0$/m);
  // Per-pool metrics come from the state only (unlabelled gauges read 0, as for a corrupt file).
  assert.doesNotMatch(text, /^brick_fencer_pool_\w+\{/m);
  // A state that reads: 0, and the fencer's metrics are there.
  const byPath = { read: async (p: string) => (p.endsWith('fencer.json') ? { kind: 'ok', text: JSON.stringify({ ...state, written_at_ms: Date.now() }) } : { kind: 'error', code: 'ENOENT' }) } as unknown as BoundedReader;
  const ok = await scrape(byPath);
  assert.match(ok, /^brick_fencer_state_unusable 0$/m);
  assert.match(ok, /^brick_fencer_running 1$/m);
  assert.match(ok, /^brick_fencer_pools 1$/m);
  assert.match(ok, /^brick_fencer_pool_state\{pool="\/mnt\/p",state="healthy"\} 1$/m);
});

test('the runtime pools file with no answer (it is in marker_dir\'s directory by default): an error that says so, never "no runtime pools"; heartbeat_check names it when it refuses a path', async () => {
  const hungRt = await readRuntimePoolsBounded('/var/lib/brick/runtime-pools.json', hung);
  assert.equal(hungRt.kind, 'error');
  assert.match(hungRt.kind === 'error' ? hungRt.error : '', /could not be read: an earlier read .* no answer/);
  assert.equal(hungRt.kind === 'error' && hungRt.noAnswer, true);
  assert.deepEqual(await readRuntimePoolsBounded('/x/rt.json', answering({ kind: 'error', code: 'ENOENT' })), { kind: 'missing', sig: 'missing' });
  const eio = await readRuntimePoolsBounded('/x/rt.json', answering({ kind: 'error', code: 'EIO' }));
  assert.deepEqual(eio, { kind: 'error', sig: '', error: 'cannot read it: EIO' });
  const entry = { path: '/mnt/r', heartbeat: 'ovm' as const, fence_when: 'always' as const, added_at: 'x', added_by: 'y' };
  const ok = await readRuntimePoolsBounded('/x/rt.json', answering({ kind: 'ok', text: runtimePoolsText([entry]) }));
  assert.deepEqual(ok, { kind: 'ok', sig: '', pools: [entry] });
  assert.equal((await readRuntimePoolsBounded('/x/rt.json', answering({ kind: 'ok', text: '{' }))).kind, 'error');
  // heartbeat_check's pool: a runtime pool when the file reads; refused, naming the unread file, when it does not.
  const c = defaultConfig();
  assert.deepEqual(checkPool(c, '/mnt/r', undefined, ok), { poolPath: '/mnt/r', format: 'ovm' });
  assert.throws(() => checkPool(c, '/mnt/r', undefined, hungRt), (e: BrickError) => e.fault === 'PATH_REFUSED' && /runtime pools file .* could not be read/.test(e.message));
  assert.throws(() => checkPool(c, '/mnt/r', undefined, eio), (e: BrickError) => e.fault === 'PATH_REFUSED' && !/could not be read/.test(e.message));
});
