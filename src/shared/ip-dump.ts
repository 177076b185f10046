// An `ip ... show` that lists (a netlink dump: every link, every address, every route, or those of
// one master) is read in parts. When links, addresses or routes change between two parts, the kernel
// flags the reply (NLM_F_DUMP_INTR) and iproute2 prints "Dump was interrupted and may be
// inconsistent." on stderr, yet exits 0 (6.1; newer ones may exit non-zero). Its output may then
// miss or repeat entries. Measured here: with 600 bridges in a namespace and another process adding
// and deleting one link in a loop, 28 of 100 `ip -json -details link show` were interrupted, every
// one with exit 0. A plan made from such a read could, say, leave a route behind on an uplink it
// thinks has none. So such a read is never used: it is read again, and after DUMP_ATTEMPTS
// interrupted reads in a row the call fails (COMMAND_FAILED) before it changes anything.
import { BrickError, isBrickError } from './errors.js';
import { describeCommand, type RunOptions, type Runner, type RunResult } from './run.js';

/** What iproute2 prints when the kernel flagged a dump as interrupted. */
export const DUMP_INTERRUPTED = /Dump was interrupted/;

/** Reads of one dump before giving up: at 28 % interrupted, 8 in a row happen once in 26,000 reads. */
export const DUMP_ATTEMPTS = 8;

/**
 * `read()` (one `ip` that may dump) until its dump was not interrupted. A read that threw because a
 * newer iproute2 exits non-zero on an interrupted dump counts as interrupted too; any other outcome
 * (an answer, or another error) is the caller's as it is.
 */
export async function uninterruptedDump(read: () => Promise<RunResult>, shown: string, attempts = DUMP_ATTEMPTS): Promise<RunResult> {
  for (let i = 1; ; i++) {
    let r: RunResult | undefined;
    try {
      r = await read();
    } catch (e) {
      if (!(isBrickError(e) && e.fault === 'COMMAND_FAILED' && DUMP_INTERRUPTED.test(e.message))) throw e;
    }
    if (r && !DUMP_INTERRUPTED.test(r.stderr)) return r;
    if (i >= attempts)
      throw new BrickError(
        'COMMAND_FAILED',
        `${shown}: the kernel interrupted its dump ${attempts} times in a row (links, addresses or routes were changing meanwhile), so what it printed may be inconsistent and was not used; nothing was changed; try again`,
        { command: shown },
      );
  }
}

/**
 * Whether an `ip` run only reads: its command (after any options) is `show`/`list`, or, for
 * `-batch -`, every line of its input is one.
 */
export function ipOnlyReads(args: readonly string[], input?: string): boolean {
  const show = (words: readonly string[]) => words.includes('show') || words.includes('list');
  if (args.includes('-batch')) return input !== undefined && input.split('\n').every((l) => !l.trim() || show(l.trim().split(/\s+/)));
  return show(args);
}

/**
 * `ip ARGS` through the runner; when it only reads (ipOnlyReads), read again while its dump was
 * interrupted (uninterruptedDump). The one way brick runs `ip` outside its network layer's batches.
 */
export function runIp(run: Runner, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  const once = () => run('ip', args, opts);
  return ipOnlyReads(args, typeof opts.input === 'string' ? opts.input : undefined) ? uninterruptedDump(once, describeCommand('ip', args)) : once();
}
