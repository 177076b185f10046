// What every command shares: where its output goes, a bad config as a list of problems, and the
// seconds option parser. Kept apart from main.ts so the commands never import the entry point.
import { UsageError } from '../shared/errors.js';
import { MAX_SECONDS } from '../config/limits.js';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

export class ConfigProblems extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

/** A --timeout-like option: 0 < seconds ≤ MAX_SECONDS (a longer Node timer fires after 1 ms). */
export function seconds(v: string | undefined, def: number, option = '--timeout'): number {
  if (v === undefined) return def;
  const t = Number(v);
  if (!(t > 0 && t <= MAX_SECONDS)) throw new UsageError(`${option}: must be a number of seconds > 0 and ≤ ${MAX_SECONDS}, got "${v}"`);
  return t;
}
