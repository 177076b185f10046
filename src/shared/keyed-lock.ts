// Serialize work on one thing (a bridge, a port, a file) while letting work on other things run.
// Keys are compared as strings; a caller holding several keys takes them in sorted order so two
// callers can never wait on each other.
import { BrickError } from './errors.js';

/** What code that serializes its changes needs: run fn holding every key. */
export interface LockTable {
  with<T>(keys: string | readonly string[], fn: () => Promise<T>): Promise<T>;
}

export class KeyedLock implements LockTable {
  private readonly tails = new Map<string, Promise<void>>();

  /**
   * `signal`: the call's; when it aborts while this waits for a key, the wait ends with TIMEOUT
   * and fn never runs (a call stopped at its deadline must not change anything later).
   */
  async with<T>(keys: string | readonly string[], fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const sorted = [...new Set(typeof keys === 'string' ? [keys] : keys)].sort();
    const releases: Array<() => void> = [];
    try {
      for (const k of sorted) releases.push(await this.acquire(k, signal));
      return await fn();
    } finally {
      for (const r of releases.reverse()) r();
    }
  }

  /** How many keys have work queued or running; for tests and metrics. */
  get busyKeys(): number {
    return this.tails.size;
  }

  /** The same table, with every wait bounded by this signal. */
  bound(signal: AbortSignal | undefined): LockTable {
    return { with: (keys, fn) => this.with(keys, fn, signal) };
  }

  private async acquire(key: string, signal?: AbortSignal): Promise<() => void> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    const done = () => {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
    if (!signal) {
      await prev;
      return done;
    }
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<'aborted'>((r) => {
      if (signal.aborted) r('aborted');
      else signal.addEventListener('abort', (onAbort = () => r('aborted')), { once: true });
    });
    const got = await Promise.race([prev.then(() => 'got' as const), aborted]);
    if (onAbort) signal.removeEventListener('abort', onAbort);
    if (got === 'aborted') {
      void prev.then(done); // keep the queue's order: our turn passes straight on
      const why = signal.reason instanceof Error ? signal.reason.message : 'the call was stopped';
      throw new BrickError('TIMEOUT', `${why} while waiting for another change on ${key} to finish; nothing was changed`);
    }
    return done;
  }
}
