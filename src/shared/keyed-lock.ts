// Serialize work on one thing (a bridge, a port, a file) while letting work on other things run.
// Keys are compared as strings; a caller holding several keys takes them in sorted order so two
// callers can never wait on each other.
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  async with<T>(keys: string | readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(typeof keys === 'string' ? [keys] : keys)].sort();
    const releases: Array<() => void> = [];
    try {
      for (const k of sorted) releases.push(await this.acquire(k));
      return await fn();
    } finally {
      for (const r of releases.reverse()) r();
    }
  }

  /** How many keys have work queued or running; for tests and metrics. */
  get busyKeys(): number {
    return this.tails.size;
  }

  private async acquire(key: string): Promise<() => void> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    return () => {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }
}
