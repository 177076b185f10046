// Failed HTTP Basic logins, counted and summarised so that a wrong-password flood cannot drive the
// log: the first failure from a source in an interval is logged at once, and at the end of the
// interval one line per source says how many more there were. At most MAX_SOURCES sources get their
// own line per interval; the rest are one line. The metric counts every failure.
import type { Logger } from '../shared/log.js';

const MAX_SOURCES = 20;
const MAX_TRACKED = 1000;
const OTHERS = '(other sources)';

export class AuthFailures {
  private counts = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly log: Logger,
    readonly intervalMs = 10_000,
    private readonly onFailure?: () => void,
  ) {
    this.timer = setInterval(() => this.flush(), intervalMs);
    this.timer.unref();
  }

  note(source: string, url: string): void {
    this.onFailure?.();
    const key = this.counts.has(source) || this.counts.size < MAX_TRACKED ? source : OTHERS;
    const n = this.counts.get(key);
    if (n !== undefined) this.counts.set(key, n + 1);
    else if (key !== OTHERS && this.counts.size < MAX_SOURCES) {
      this.counts.set(key, 0); // logged now; the summary counts the ones after it
      this.log.warn({ remote: source, url }, 'authentication failed');
    } else this.counts.set(key, 1);
  }

  flush(): void {
    if (!this.counts.size) return;
    const secs = this.intervalMs / 1000;
    let listed = 0;
    let otherSources = 0;
    let otherFailures = 0;
    for (const [source, n] of this.counts) {
      if (n === 0) continue;
      if (listed < MAX_SOURCES && source !== OTHERS) {
        this.log.warn({ remote: source, failures: n, interval_s: secs }, `${n} more authentication failures from ${source} in the last ${secs} s`);
        listed++;
      } else {
        otherSources++;
        otherFailures += n;
      }
    }
    if (otherFailures) this.log.warn({ sources: otherSources, failures: otherFailures, interval_s: secs }, `${otherFailures} more authentication failures from ${otherSources} other sources in the last ${secs} s`);
    this.counts = new Map();
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }
}
