// The call metrics brick tallies itself (src/agent-extension/metrics.ts) render exactly as
// prom-client's own Counter and Histogram would for the same calls: same lines, same values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry, Counter, Histogram } from 'prom-client';
import { CallMetrics } from '../../src/agent-extension/metrics.js';

const callLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('brick_xmlrpc_call') || /^# (HELP|TYPE) brick_xmlrpc_call/.test(l))
    .sort();

test("call counts and durations: the same text as prom-client's Counter and Histogram given the same calls", async () => {
  const ours = new CallMetrics();
  const ref = new Registry();
  const calls = new Counter({ name: 'brick_xmlrpc_calls_total', help: 'XML-RPC calls by method and outcome (fault name when the outcome is a fault)', labelNames: ['method', 'outcome', 'fault'], registers: [ref] });
  const duration = new Histogram({
    name: 'brick_xmlrpc_call_duration_seconds',
    help: 'XML-RPC call duration by method',
    labelNames: ['method'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
    registers: [ref],
  });
  assert.deepEqual(callLines(await ours.text()), callLines(await ref.metrics()), 'before any call');
  const methods = ['get_module_version', '(unknown)', 'network_ensure_bridge', 'a "quoted"\\name'];
  const faults = ['CONFLICT', 'TIMEOUT', 'INVALID_PARAMS'];
  // Every bucket edge exactly (a value equal to a bound is in that bucket), either side of it, and beyond the last.
  const edges = [0, 0.001, 0.0010001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 300.5, 1e6, 0.0049999];
  let seed = 11;
  const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
  for (let i = 0; i < 3000; i++) {
    const method = methods[rnd(methods.length)];
    const fault = rnd(4) === 0 ? faults[rnd(faults.length)] : '';
    const s = i < edges.length ? edges[i] : rnd(100000) / 1000;
    ours.observe(method, fault ? 'fault' : 'ok', fault, s);
    calls.inc({ method, outcome: fault ? 'fault' : 'ok', fault });
    duration.observe({ method }, s);
  }
  const got = callLines(await ours.text());
  assert.equal(got.filter((l) => l.includes('_bucket{')).length, methods.length * 12, 'every method observed');
  assert.deepEqual(got, callLines(await ref.metrics()));
});
