// What every command shares with main.ts: where it writes, and the error a bad config becomes
// (kept here, not in main.ts, so the commands do not import the module that imports them).
export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

export class ConfigProblems extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}
