// The fencer's state on the agent's GET /metrics: a real server (brick's own, on 127.0.0.1) scraped
// over HTTP with auth while a state file says what a fencer would; each metric the alert rules use
// is checked by value, and a stopped fencer shows no countdown.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFencerState, type FencerState, type PoolState } from '../../src/fencer/state.js';
import { writeFenceMarker } from '../../src/fencer/marker.js';
import { startTestServer, type TestServer } from '../fixtures/server.js';

let dir: string;
let srv: TestServer;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'brick-fencer-metrics-'));
  mkdirSync(join(dir, 'run'));
  mkdirSync(join(dir, 'lib'));
  srv = await startTestServer({ fencer: { state_dir: join(dir, 'run'), marker_dir: join(dir, 'lib') } });
});
after(async () => {
  await srv.close();
  rmSync(dir, { recursive: true, force: true });
});

async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(new URL('/metrics', srv.url), { headers: { authorization: 'Basic ' + Buffer.from(`${srv.user}:${srv.password}`).toString('base64') } });
  assert.equal(res.status, 200);
  const m = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (!line.startsWith('brick_fencer_')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

const pool = (path: string, over: Partial<PoolState> = {}): PoolState => ({
  path,
  heartbeat: 'ovm',
  heartbeat_file: `${path}/.hb-h1`,
  fence_when: 'in-use',
  state: 'healthy',
  armed: true,
  in_use: true,
  last_ok_age_s: 2,
  fence_in_s: 28,
  probe_latency_ms: { last: 4, min: 2, max: 250 },
  stuck_probes: 0,
  stuck_for_s: null,
  probes_ok: 120,
  probes_failed: 3,
  last_error: null,
  ...over,
});

function write(writtenAtMs: number, pools: PoolState[], over: Partial<FencerState> = {}): void {
  writeFencerState(join(dir, 'run'), {
    version: 1,
    pid: 1,
    host_id: 'h1',
    written_at_ms: writtenAtMs,
    started_at_ms: writtenAtMs - 60_000,
    action: 'reboot',
    fence_after_s: 30,
    probe_interval_s: 5,
    probe_timeout_s: 10,
    watchdog: { device: '/dev/watchdog', open: true, petting: true, last_pet_age_s: 0.5, timeout_s: 20 },
    fenced: null,
    last_fence: null,
    pools,
    ...over,
  });
}

test('no state file: the fencer is not running and nothing else is made up', async () => {
  const m = await scrape();
  assert.equal(m.get('brick_fencer_running'), 0);
  assert.ok(![...m.keys()].some((k) => k.startsWith('brick_fencer_pool_')), [...m.keys()].join('\n'));
});

test('a state file the agent cannot use (a null pool, truncated): the scrape answers, the fencer is not running', async () => {
  // Before: a null pool made every scrape fail (a TypeError in a collect()), so the alerts saw no data.
  for (const text of [JSON.stringify({ version: 1, pid: 1, host_id: 'h1', written_at_ms: Date.now(), action: 'reboot', fenced: null, watchdog: { device: '', open: false, petting: false }, pools: [null] }), '{"version":1,']) {
    writeFileSync(join(dir, 'run', 'fencer.json'), text);
    const m = await scrape();
    assert.equal(m.get('brick_fencer_running'), 0, text);
    assert.ok(![...m.keys()].some((k) => k.startsWith('brick_fencer_pool_')), text);
  }
  rmSync(join(dir, 'run', 'fencer.json'));
});

test('a running fencer: per pool state, armed, heartbeat age, time to fence, probe latency and failures; watchdog petting', async () => {
  // Written "now" (a margin ahead so a slow scrape cannot make it stale); ages grow with the file's age.
  write(Date.now() + 2000, [pool('/mnt/a'), pool('/mnt/b', { state: 'late', last_ok_age_s: 20, fence_in_s: 10, in_use: false, armed: true, probes_failed: 7 })]);
  const m = await scrape();
  assert.equal(m.get('brick_fencer_running'), 1);
  assert.equal(m.get('brick_fencer_pools'), 2);
  assert.equal(m.get('brick_fencer_fence_after_seconds'), 30);
  assert.equal(m.get('brick_fencer_watchdog_petting'), 1);
  assert.equal(m.get('brick_fencer_watchdog_open'), 1);
  assert.equal(m.get('brick_fencer_fenced'), 0);
  assert.equal(m.get('brick_fencer_pool_state{pool="/mnt/a",state="healthy"}'), 1);
  assert.equal(m.get('brick_fencer_pool_state{pool="/mnt/a",state="late"}'), 0);
  assert.equal(m.get('brick_fencer_pool_state{pool="/mnt/b",state="late"}'), 1);
  assert.equal(m.get('brick_fencer_pool_armed{pool="/mnt/a"}'), 1);
  assert.equal(m.get('brick_fencer_pool_in_use{pool="/mnt/b"}'), 0);
  assert.equal(m.get('brick_fencer_pool_heartbeat_age_seconds{pool="/mnt/b"}'), 20);
  assert.equal(m.get('brick_fencer_pool_fence_in_seconds{pool="/mnt/b"}'), 10);
  assert.equal(m.get('brick_fencer_pool_probe_latency_seconds{pool="/mnt/a",stat="max"}'), 0.25);
  assert.equal(m.get('brick_fencer_pool_probe_latency_seconds{pool="/mnt/a",stat="last"}'), 0.004);
  assert.equal(m.get('brick_fencer_pool_probe_failures_total{pool="/mnt/b"}'), 7);
  assert.equal(m.get('brick_fencer_pool_probes_ok_total{pool="/mnt/a"}'), 120);
  assert.equal(m.get('brick_fencer_pool_stuck_probes{pool="/mnt/a"}'), 0);
  assert.equal(m.get('brick_fencer_last_fence_timestamp_seconds'), 0, 'never fenced (no marker)');
});

test('a stopped fencer: running 0, pools "unknown", no countdown, not petting; the fence marker gives the last fence time', async () => {
  write(Date.now() - 60_000, [pool('/mnt/a', { fence_in_s: 0.5 })]);
  writeFenceMarker(join(dir, 'lib'), { at: '2026-11-29T08:00:00.000Z', pool: '/mnt/a', reason: 'no verified heartbeat', action: 'reboot', host_id: 'h1', last_ok_age_s: 30 });
  const m = await scrape();
  assert.equal(m.get('brick_fencer_running'), 0);
  assert.ok(m.get('brick_fencer_state_age_seconds')! >= 60);
  assert.equal(m.get('brick_fencer_pool_state{pool="/mnt/a",state="unknown"}'), 1);
  assert.equal(m.get('brick_fencer_pool_state{pool="/mnt/a",state="healthy"}'), 0);
  assert.equal(m.has('brick_fencer_pool_fence_in_seconds{pool="/mnt/a"}'), false);
  assert.equal(m.get('brick_fencer_watchdog_petting'), 0);
  assert.ok(m.get('brick_fencer_pool_heartbeat_age_seconds{pool="/mnt/a"}')! >= 62, 'the heartbeat keeps ageing while nothing probes');
  assert.equal(m.get('brick_fencer_last_fence_timestamp_seconds'), Date.parse('2026-11-29T08:00:00.000Z') / 1000);
});
