// Per-method call counts and durations for GET /metrics. Each server has its own registry so tests
// can run several servers in one process. Method labels are bounded: names brick serves by name,
// "(vendor)" for passed-through calls and "(unknown)" for anything else, so a client cannot grow
// the label set by inventing method names.
import { Registry, Counter, Histogram, collectDefaultMetrics } from 'prom-client';

export type CallOutcome = 'ok' | 'fault';

export class CallMetrics {
  readonly registry = new Registry();
  private readonly calls: Counter<'method' | 'outcome' | 'fault'>;
  private readonly duration: Histogram<'method'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    this.calls = new Counter({
      name: 'brick_xmlrpc_calls_total',
      help: 'XML-RPC calls by method and outcome (fault name when the outcome is a fault)',
      labelNames: ['method', 'outcome', 'fault'],
      registers: [this.registry],
    });
    this.duration = new Histogram({
      name: 'brick_xmlrpc_call_duration_seconds',
      help: 'XML-RPC call duration by method',
      labelNames: ['method'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
      registers: [this.registry],
    });
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'brick_' });
  }

  observe(method: string, outcome: CallOutcome, fault: string, seconds: number): void {
    this.calls.inc({ method, outcome, fault });
    this.duration.observe({ method }, seconds);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
