// The shipped alert rules and Grafana dashboard (packaging/monitoring/) name only metrics brick
// exports: every metric in their expressions is checked against a real scrape of the agent's
// registry with a fencer state file in place. `promtool test rules` itself runs in
// test/host/monitoring.test.ts (promtool is a Debian package).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CallMetrics } from '../../src/agent-extension/metrics.js';
import { registerFencerMetrics } from '../../src/fencer/metrics.js';
import { writeFencerState } from '../../src/fencer/state.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'packaging', 'monitoring');
const rules = readFileSync(join(dir, 'brick-alerts.yml'), 'utf8');
const dashboard = JSON.parse(readFileSync(join(dir, 'brick-grafana.json'), 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };

/** Metric names in a PromQL expression (brick_* and up). */
const metricsIn = (expr: string) => [...expr.matchAll(/\b(brick_[a-z_]+|up)\b(?=\s*[{[)\s]|$)/g)].map((m) => m[1]);

async function exported(): Promise<Set<string>> {
  const state = mkdtempSync(join(tmpdir(), 'brick-monitoring-'));
  try {
    writeFencerState(state, {
      version: 1, pid: 1, host_id: 'h', written_at_ms: Date.now(), started_at_ms: Date.now(), action: 'reboot',
      fence_after_s: 30, probe_interval_s: 5, probe_timeout_s: 10,
      watchdog: { device: '/dev/watchdog', open: true, petting: true, last_pet_age_s: 1, timeout_s: 20 }, fenced: null, last_fence: null,
      pools: [{ path: '/p', heartbeat: 'ovm', heartbeat_file: '/p/.hb-h', fence_when: 'in-use', state: 'healthy', armed: true, in_use: true, last_ok_age_s: 1, fence_in_s: 29,
        probe_latency_ms: { last: 1, min: 1, max: 1 }, stuck_probes: 0, stuck_for_s: null, probes_ok: 1, probes_failed: 0, last_error: null }],
    });
    const m = new CallMetrics();
    registerFencerMetrics(m.registry, { state_dir: state, marker_dir: state });
    m.observe('x', 'ok', '', 0.01);
    const names = new Set([...(await m.text()).matchAll(/^# TYPE (\S+) /gm)].map((x) => x[1]));
    names.add('up'); // Prometheus's own
    return names;
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
}

test('every metric the alert rules and the dashboard use is one brick exports', async () => {
  const have = await exported();
  const exprs = [...rules.matchAll(/^\s+expr: (.+)$/gm)].map((m) => m[1]);
  assert.ok(exprs.length >= 10, 'the rules have expressions');
  for (const p of dashboard.panels) for (const t of p.targets) exprs.push(t.expr);
  for (const e of exprs) {
    const used = metricsIn(e);
    assert.ok(used.length, `no metric in ${e}`);
    for (const name of used) assert.ok(have.has(name), `${name} (in ${e}) is not exported`);
  }
});

test('every alert has a promtool test case that makes it fire, and one where it does not', () => {
  const alerts = [...rules.matchAll(/^\s+- alert: (\w+)$/gm)].map((m) => m[1]);
  const tests = readFileSync(join(dir, 'brick-alerts.test.yml'), 'utf8');
  for (const a of alerts) {
    const cases = [...tests.matchAll(new RegExp(`alertname: ${a}\\n\\s+exp_alerts:( \\[\\])?`, 'g'))];
    assert.ok(cases.some((c) => c[1] === ' []'), `${a}: no case where it stays quiet`);
    assert.ok(cases.some((c) => c[1] === undefined), `${a}: no case where it fires`);
  }
});

test('the dashboard is valid Grafana JSON: unique panel ids, a datasource variable, a host variable', () => {
  const d = dashboard as unknown as { uid: string; templating: { list: Array<{ name: string }> }; panels: Array<{ id: number; datasource: { uid: string } }> };
  assert.equal(d.uid, 'brick-fencer');
  assert.deepEqual(d.templating.list.map((v) => v.name), ['datasource', 'instance']);
  assert.equal(new Set(d.panels.map((p) => p.id)).size, d.panels.length);
  for (const p of d.panels) assert.equal(p.datasource.uid, '${datasource}');
});
