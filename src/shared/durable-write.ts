// A durable replacement of a small file on local disk done by short coreutils children, each with a
// deadline (src/shared/run.ts), for a process that must not block on that disk: the fencer's fence
// marker and lease (fencer/marker.ts), the agent's runtime pools file (fencer/pool-admin.ts). A
// synchronous write (shared/atomic-write.ts) on a disk that hangs holds the main thread in the
// kernel; a child that hangs holds only itself, and its caller answers at its own deadline.
import { basename, dirname, join } from 'node:path';
import type { Runner } from './run.js';
import { requireTools } from './host-tools.js';

/** The coreutils a durable write runs, absolute paths resolved once (host-tools.ts). */
export interface DurableWriteTools {
  dd: string;
  mv: string;
  sync: string;
}

export async function resolveDurableWriteTools(needs: string): Promise<DurableWriteTools> {
  return requireTools(['dd', 'mv', 'sync'], needs);
}

/** Each child's deadline (it is SIGKILLed then; one stuck in the kernel keeps its file's writer, never the caller). */
export const DURABLE_STEP_TIMEOUT_MS = 10_000;

/** Written: the file holds the new text, durably. timeout: the caller's deadline passed first (the write goes on). */
export type DurableOutcome = 'written' | 'timeout' | { error: string };

export type DurableStep = 'write' | 'rename' | 'fsync of the directory';

/**
 * One durable replacement of `file`: the same steps as writeFileAtomic, each a child.
 *   1. dd of=TMP conv=fsync    the text (stdin), on disk when dd exits; dd creates TMP 0666 less
 *                              the umask, which brick sets to 022 at start (src/cli/main.ts): 0644
 *   2. mv -f -T -- TMP FILE    rename-atomic: a reset leaves the old text or the new, never a mix
 *   3. sync -- DIR             fsync the directory: the rename itself survives a reset
 * TMP is fixed per process and file: one write per file runs at a time (the caller sees to it). A
 * process killed before its rename leaves TMP behind: its next start removes it (shared/stale-temps.ts).
 */
export function durableWriteSteps(tools: DurableWriteTools, file: string, text: string): Array<{ what: DurableStep; cmd: string; args: string[]; input?: string }> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  return [
    { what: 'write', cmd: tools.dd, args: [`of=${tmp}`, 'bs=4096', 'conv=fsync', 'status=none'], input: text },
    { what: 'rename', cmd: tools.mv, args: ['-f', '-T', '--', tmp, file] },
    { what: 'fsync of the directory', cmd: tools.sync, args: ['--', dirname(file)] },
  ];
}

/**
 * Run the steps in order; null when all succeeded, else the step that failed and why: a non-zero
 * exit (`code`: the step did not happen), a failed spawn or a child killed at its deadline (no
 * `code`). Never rejects. Before 'rename' failed the
 * file is untouched; a failed 'rename' (killed at its deadline) may or may not have renamed; at
 * 'fsync of the directory' the file holds the new text, not known to survive a reset.
 */
export async function writeDurablyAt(run: Runner, tools: DurableWriteTools, file: string, text: string, stepTimeoutMs: number): Promise<{ step: DurableStep; error: string; code?: number } | null> {
  for (const s of durableWriteSteps(tools, file, text)) {
    try {
      const r = await run(s.cmd, s.args, { timeoutMs: stepTimeoutMs, input: s.input, allowFailure: true });
      if (r.code !== 0) return { step: s.what, error: `${s.what} failed (exit ${r.code}): ${r.stderr.trim().split('\n')[0] || 'no message'}`, code: r.code };
    } catch (e) {
      // A spawn that failed (EAGAIN, ENOMEM), a child killed at its deadline.
      return { step: s.what, error: (e as Error).message };
    }
  }
  return null;
}

/** writeDurablyAt's outcome as a message: null when written. */
export async function writeDurably(run: Runner, tools: DurableWriteTools, file: string, text: string, stepTimeoutMs: number): Promise<string | null> {
  return (await writeDurablyAt(run, tools, file, text, stepTimeoutMs))?.error ?? null;
}
