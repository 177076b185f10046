// Per-method call counts and durations for GET /metrics, and what the server's guards refused.
// Each server has its own registry so tests can run several servers in one process. Method labels
// are bounded: names brick serves by name, "(vendor)" for passed-through calls and "(unknown)" for
// anything else, so a client cannot grow the label set by inventing method names. The labelled
// children are looked up once per label set and kept: a call pays two increments, not a label hash.
import { Registry, Counter, Histogram, Gauge, collectDefaultMetrics } from 'prom-client';

export type CallOutcome = 'ok' | 'fault';

interface Child {
  inc(): void;
}
interface TimeChild {
  observe(v: number): void;
}

export class CallMetrics {
  readonly registry = new Registry();
  private readonly calls: Counter<'method' | 'outcome' | 'fault'>;
  private readonly duration: Histogram<'method'>;
  private readonly callChildren = new Map<string, Child>();
  private readonly durationChildren = new Map<string, TimeChild>();
  private readonly authFailures: Counter;
  private readonly connectionsCapped: Counter<'action'>;
  private readonly requestsRefused: Counter<'reason'>;

  constructor(opts: { defaultMetrics?: boolean; openConnections?: () => number } = {}) {
    const registers = [this.registry];
    this.calls = new Counter({
      name: 'brick_xmlrpc_calls_total',
      help: 'XML-RPC calls by method and outcome (fault name when the outcome is a fault)',
      labelNames: ['method', 'outcome', 'fault'],
      registers,
    });
    this.duration = new Histogram({
      name: 'brick_xmlrpc_call_duration_seconds',
      help: 'XML-RPC call duration by method',
      labelNames: ['method'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
      registers,
    });
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
    const key = `${method}\0${outcome}\0${fault}`;
    let c = this.callChildren.get(key);
    if (!c) this.callChildren.set(key, (c = this.calls.labels(method, outcome, fault)));
    c.inc();
    let d = this.durationChildren.get(method);
    if (!d) this.durationChildren.set(method, (d = this.duration.labels(method)));
    d.observe(seconds);
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
