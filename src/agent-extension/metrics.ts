// Per-method call counts and durations for GET /metrics, and what the server's guards refused.
// Each server has its own registry so tests can run several servers in one process. Method labels
// are bounded: names brick serves by name, "(vendor)" for passed-through calls, "(unparsed)" for a
// body that is no method call, and "(unknown)" for anything else, so a client cannot grow the
// label set by inventing method names.
//
// The two per-call metrics are tallied in plain fields (one Map lookup by method, a few additions)
// and handed to the registry when it is scraped: prom-client's own labelled children hash their
// label set, validate it and look it up on every increment and observation, even when kept (0.76 us
// a call against 0.02-0.04 us, measured alone). The registry renders them as it renders its own
// counters and histograms (same names, help, types, labels and bucket bounds).
import { Registry, Counter, Gauge, collectDefaultMetrics } from 'prom-client';

export type CallOutcome = 'ok' | 'fault';

const CALLS = 'brick_xmlrpc_calls_total';
const DURATION = 'brick_xmlrpc_call_duration_seconds';
/** Upper bounds (seconds) of DURATION's buckets. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300];

/** One method's calls: counts by outcome and fault, and its durations in buckets (not cumulative). */
class MethodTally {
  ok = 0;
  readonly faults = new Map<string, number>();
  /** perBucket[i]: calls in (bound[i-1], bound[i]]; the last one: above every bound. */
  readonly perBucket: number[] = new Array<number>(DURATION_BUCKETS.length + 1).fill(0);
  sum = 0;
  count = 0;
}

interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/**
 * A metric the registry renders from get(), as it renders its own (Registry.getMetricsAsString
 * takes name, help, type and values). prom-client types registerMetric for its own classes only.
 */
function tallied(registry: Registry, name: string, help: string, type: 'counter' | 'histogram', values: () => Sample[], reset: () => void): void {
  const metric = { name, help, type, aggregator: 'sum', get: async () => ({ name, help, type, aggregator: 'sum', values: values() }), reset };
  registry.registerMetric(metric as unknown as Counter);
}

export class CallMetrics {
  readonly registry = new Registry();
  private readonly tallies = new Map<string, MethodTally>();
  private readonly authFailures: Counter;
  private readonly connectionsCapped: Counter<'action'>;
  private readonly requestsRefused: Counter<'reason'>;

  constructor(opts: { defaultMetrics?: boolean; openConnections?: () => number } = {}) {
    const registers = [this.registry];
    const reset = () => this.tallies.clear();
    tallied(this.registry, CALLS, 'XML-RPC calls by method and outcome (fault name when the outcome is a fault)', 'counter', () => this.callSamples(), reset);
    tallied(this.registry, DURATION, 'XML-RPC call duration by method', 'histogram', () => this.durationSamples(), reset);
    this.authFailures = new Counter({ name: 'brick_http_auth_failures_total', help: 'requests refused with HTTP 401 (missing or wrong credentials)', registers });
    this.connectionsCapped = new Counter({
      name: 'brick_http_connections_capped_total',
      help: 'times server.max_connections was reached: action "evicted" (an unauthenticated connection closed to make room) or "refused" (the new one closed)',
      labelNames: ['action'],
      registers,
    });
    this.requestsRefused = new Counter({
      name: 'brick_http_requests_refused_total',
      help: 'requests refused while being read: reason "too_large" (413), "too_slow" (408), "limits" (a count or depth limit: PARSE_ERROR fault)',
      labelNames: ['reason'],
      registers,
    });
    const open = opts.openConnections;
    if (open)
      new Gauge({
        name: 'brick_http_connections',
        help: 'open connections to brick serve',
        registers,
        collect() {
          this.set(open());
        },
      });
    // The event-loop lag histogram samples with a timer at this precision (ms): prom-client's 10 woke
    // an idle agent 100 times a second (about 500 ms of CPU a minute on a host that serves nothing).
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'brick_', eventLoopMonitoringPrecision: 100 });
  }

  observe(method: string, outcome: CallOutcome, fault: string, seconds: number): void {
    let t = this.tallies.get(method);
    if (!t) this.tallies.set(method, (t = new MethodTally()));
    if (outcome === 'ok') t.ok++;
    else t.faults.set(fault, (t.faults.get(fault) ?? 0) + 1);
    let i = 0;
    while (i < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[i]) i++;
    t.perBucket[i]++;
    t.sum += seconds;
    t.count++;
  }

  private callSamples(): Sample[] {
    const out: Sample[] = [];
    for (const [method, t] of this.tallies) {
      if (t.ok) out.push({ labels: { method, outcome: 'ok', fault: '' }, value: t.ok });
      for (const [fault, n] of t.faults) out.push({ labels: { method, outcome: 'fault', fault }, value: n });
    }
    return out;
  }

  private durationSamples(): Sample[] {
    const out: Sample[] = [];
    for (const [method, t] of this.tallies) {
      let acc = 0;
      DURATION_BUCKETS.forEach((le, i) => {
        acc += t.perBucket[i];
        out.push({ labels: { le, method }, value: acc, metricName: `${DURATION}_bucket` });
      });
      out.push({ labels: { le: '+Inf', method }, value: t.count, metricName: `${DURATION}_bucket` });
      out.push({ labels: { method }, value: t.sum, metricName: `${DURATION}_sum` });
      out.push({ labels: { method }, value: t.count, metricName: `${DURATION}_count` });
    }
    return out;
  }

  authFailure(): void {
    this.authFailures.inc();
  }

  connectionCapped(action: 'evicted' | 'refused'): void {
    this.connectionsCapped.inc({ action });
  }

  requestRefused(reason: 'too_large' | 'too_slow' | 'limits'): void {
    this.requestsRefused.inc({ reason });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
