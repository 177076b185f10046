// Deadlines for the server's requests (a body's arrival, a call's answer) on one Node timer.
//
// Each request set two or three timers and cleared them a fraction of a millisecond later. Node keeps
// a list of timers per duration and drops the list when its last timer is cleared, so a server
// answering one call at a time made and dropped a list, a priority-queue entry and a libuv timer
// for every timer of every call (setTimeout alone 7 % of the server's busy time in a profile at
// one connection; 5-14 us a call in A/B runs). Here the deadlines sit in a binary heap; the one Node timer is armed for the
// earliest, and is left armed when deadlines are cancelled: when it fires it runs what is due and
// arms itself for the next deadline, if there is one. A deadline never runs before its time
// (performance.now()), and runs once; a cancelled one never runs.
//
// The timer is unref'd: a deadline keeps nothing alive by itself. Every deadline here belongs to a
// request whose connection keeps the server's process running.
import { performance } from 'node:perf_hooks';

export interface Deadline {
  /** Forget it: it will not run. Safe to call more than once, or after it ran. */
  cancel(): void;
}

class Entry implements Deadline {
  /** Position in the heap; -1 when not in it (ran or cancelled). */
  index = -1;
  constructor(
    readonly owner: Deadlines,
    readonly at: number,
    readonly seq: number,
    readonly fn: () => void,
  ) {}
  cancel(): void {
    if (this.index >= 0) this.owner.remove(this);
  }
}

export class Deadlines {
  private readonly heap: Entry[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** When the Node timer fires (performance.now() time); Infinity when it is not armed. */
  private armedFor = Infinity;
  private seq = 0;

  /** @param now the clock deadlines are counted on (monotonic: performance.now()); callers measure what has elapsed on it too. */
  constructor(readonly now: () => number = () => performance.now()) {}

  /** Run fn once, no sooner than ms from now (unless cancelled first). */
  after(ms: number, fn: () => void): Deadline {
    const e = new Entry(this, this.now() + Math.max(0, ms), this.seq++, fn);
    e.index = this.heap.length;
    this.heap.push(e);
    this.up(e.index);
    if (e.at < this.armedFor) this.arm(e.at);
    return e;
  }

  /** How many deadlines are waiting (for tests). */
  get size(): number {
    return this.heap.length;
  }

  /** @internal Entry.cancel */
  remove(e: Entry): void {
    const i = e.index;
    const last = this.heap.pop()!;
    e.index = -1;
    if (last !== e) {
      this.heap[i] = last;
      last.index = i;
      this.down(i);
      this.up(last.index);
    }
    // The timer stays armed: it fires, finds nothing due and arms for the next deadline if any.
  }

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = at;
    // Node fires a timer no sooner than its whole milliseconds on its own clock, which can lag
    // performance.now() by a little: fire() checks the time and arms again for what is left.
    this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(at - this.now())));
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = this.now();
    // One at a time: a deadline may cancel (or make) another that is due in the same firing.
    while (this.heap.length > 0 && this.heap[0].at <= now) {
      const e = this.heap[0];
      this.remove(e);
      try {
        e.fn();
      } catch (err) {
        // As a throwing timer callback would (an uncaught exception), but after the others ran.
        process.nextTick(() => {
          throw err;
        });
      }
    }
    if (this.heap.length > 0 && this.heap[0].at < this.armedFor) this.arm(this.heap[0].at);
  };

  private less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private swap(i: number, j: number): void {
    const h = this.heap;
    const t = h[i];
    h[i] = h[j];
    h[j] = t;
    h[i].index = i;
    h[j].index = j;
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(this.heap[i], this.heap[p])) return;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) return;
      const r = l + 1;
      const c = r < h.length && this.less(h[r], h[l]) ? r : l;
      if (!this.less(h[c], h[i])) return;
      this.swap(i, c);
      i = c;
    }
  }
}

/** The agent's deadlines: one heap and one Node timer for the whole server. */
export const requestDeadlines = new Deadlines();
