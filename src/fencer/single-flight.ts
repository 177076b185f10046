// At most one child per key at a time: a read of a hung pool whose child the kernel holds past its
// SIGKILL (D state) is joined by the next caller instead of starting another child that would stick
// too and pile up with every call (reference/fencing.md §6.2: never spawn a second while one is
// alive). Each caller still answers by its own deadline. Per runner, so runners never share a flight.
import type { Runner } from '../shared/run.js';

export class SingleFlight<T> {
  private flights = new WeakMap<Runner, Map<string, Promise<T>>>();

  /** The flight of `key` under way with `run`, or a new one from `start`; it ends when `start`'s promise settles. */
  join(run: Runner, key: string, start: () => Promise<T>): Promise<T> {
    let m = this.flights.get(run);
    if (!m) this.flights.set(run, (m = new Map()));
    const under = m.get(key);
    if (under) return under;
    const map = m;
    const p = start().finally(() => {
      if (map.get(key) === p) map.delete(key);
    });
    map.set(key, p);
    return p;
  }

  /** Tests: forget every flight. */
  clear(): void {
    this.flights = new WeakMap();
  }
}
