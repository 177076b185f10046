// A PLAN is the difference between the desired and the running state: for the Linux backend a list
// of steps, each one `ip -batch` line with its inverse; for Open vSwitch a list of ovs-vsctl
// commands run as one transaction. Planners are pure; applying is the only place that changes the
// host, in one process. `what` lines are what the reply reports as changed.
import { BrickError, isBrickError } from '../../shared/errors.js';
import type { NetHost } from './netns.js';

export interface Step {
  /** One `ip -batch` line, e.g. "link add name br0 type bridge". */
  do: string;
  /** The line that undoes it, if any (used to undo a half-applied batch and for safe-apply rollback). */
  undo?: string;
  /** For the reply: what this step changed, in the admin's words. */
  what: string;
}

export interface OvsCommand {
  /** One ovs-vsctl command's arguments, e.g. ["--may-exist", "add-br", "br0.10", "br0", "10"]. */
  args: string[];
  what: string;
}

/** The undo lines of these steps, last first. */
export function undoLines(steps: readonly Step[]): string[] {
  return steps.flatMap((s) => (s.undo ? [s.undo] : [])).reverse();
}

/** The ovs-vsctl argv for one transaction: commands joined with "--". */
export function ovsTransactionArgs(cmds: readonly OvsCommand[]): string[] {
  return cmds.flatMap((c) => ['--', ...c.args]);
}

/**
 * Apply the steps in one `ip -batch -`. ip stops at the first failing line; the lines before it
 * are then undone (best effort, `-force`) so a failed call leaves the host as it found it (all of
 * them when ip exits without naming the failed line). A batch
 * stopped part-way (the call's deadline, or the client gone) is undone whole: which of its lines
 * ran is unknown, and the undo of a line that never ran fails harmlessly under `-force` (a planner
 * only plans a step for what is not there yet).
 */
export async function applySteps(host: NetHost, steps: readonly Step[]): Promise<string[]> {
  if (!steps.length) return [];
  let r;
  try {
    r = await host.ipBatch(steps.map((s) => s.do), { allowFailure: true });
  } catch (e) {
    if (!(isBrickError(e) && e.fault === 'TIMEOUT')) throw e;
    if (e.detail?.started === false) throw new BrickError('TIMEOUT', `${e.message}; nothing was changed`, e.detail);
    const u = await host.ipBatch(undoLines(steps), { force: true, allowFailure: true, undo: true }).catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message }));
    // -force exits non-zero when a line fails, and the undo of a line that never ran fails: only
    // an undo that could not run at all (or timed out) leaves the outcome unknown.
    const undone =
      u.code === -1
        ? `undoing it FAILED (${u.stderr.trim()}); check: ${steps.map((s) => s.what).join('; ')}`
        : u.code === 0
          ? `its ${steps.length} step(s) were undone: nothing was changed`
          : `its ${steps.length} step(s) were undone; undo lines that failed (as they do for lines that had not run): ${u.stderr.trim().slice(0, 500)}`;
    throw new BrickError('TIMEOUT', `${e.message}; the batch was stopped part-way and ${undone}`, { ...e.detail, undone: u.code !== -1 });
  }
  if (r.code === 0) {
    host.changed.push(...steps.map((s) => s.what));
    return steps.map((s) => s.what);
  }
  const m = /Command failed -:(\d+)/.exec(r.stderr);
  const failed = m ? Number(m[1]) - 1 : -1;
  // No line number: ip exited on a line it could not parse (a `master` or `dev` that does not exist
  // makes it exit), after running the lines before it. Which line that was is unknown, so every
  // step is undone, as for a batch stopped part-way (the undo of a line that never ran fails
  // harmlessly under -force).
  const applied = failed >= 0 ? steps.slice(0, failed) : steps;
  const undo = undoLines(applied);
  const before = failed >= 0 ? `the ${applied.length} step(s) before it` : `ip did not say which line failed: its ${applied.length} step(s)`;
  let undone = failed >= 0 ? 'nothing before it had been applied' : 'ip did not say which line failed, and none of its steps can be undone';
  if (undo.length) {
    const u = await host.ipBatch(undo, { force: true, allowFailure: true, undo: true });
    undone =
      u.code === 0
        ? `${before} were undone`
        : failed >= 0
          ? `undoing ${before} failed too: ${u.stderr.trim()}`
          : `${before} were undone; undo lines that failed (as they do for lines that had not run): ${u.stderr.trim().slice(0, 500)}`;
  }
  const line = failed >= 0 ? `"${steps[failed].do}"` : 'a step';
  throw new BrickError('COMMAND_FAILED', `ip -batch: ${line} failed: ${r.stderr.replace(/Command failed -:\d+/, '').trim() || 'exit ' + r.code}; ${undone}`, {
    step: failed >= 0 ? steps[failed].do : undefined,
  });
}

/**
 * Apply OVS commands as one ovs-vsctl transaction (OVSDB makes it all or nothing). One stopped
 * by the call's deadline either committed whole or not at all; the fault says so. `conditions`:
 * ovs-vsctl commands run first in the same transaction that change nothing (ovsPortsGuard), and
 * `timeoutS` caps ovs-vsctl's --timeout while it waits for them.
 */
export async function applyOvs(host: NetHost, cmds: readonly OvsCommand[], o: { conditions?: readonly string[][]; timeoutS?: number } = {}): Promise<string[]> {
  if (!cmds.length) return [];
  try {
    await host.vsctl([...(o.conditions ?? []).flatMap((c) => ['--', ...c]), ...ovsTransactionArgs(cmds)], o.timeoutS !== undefined ? { timeoutS: o.timeoutS } : undefined);
  } catch (e) {
    if (!(isBrickError(e) && e.fault === 'TIMEOUT')) throw e;
    if (e.detail?.started === false) throw new BrickError('TIMEOUT', `${e.message}; nothing was changed`, e.detail);
    throw new BrickError(
      'TIMEOUT',
      `${e.message}; Open vSwitch applies a transaction whole or not at all, so either all of (${cmds.map((c) => c.what).join('; ')}) took effect or none did: asking again is safe and says which`,
      e.detail,
    );
  }
  host.changed.push(...cmds.map((c) => c.what));
  return cmds.map((c) => c.what);
}

/**
 * An undo has just removed again what these `what` lines (from applySteps/applyOvs) changed: the
 * call's journal no longer lists them as left in place. One entry per line, the latest so named.
 */
export function forgetUndone(host: NetHost, undone: readonly string[]): void {
  for (const w of undone) {
    const at = host.changed.lastIndexOf(w);
    if (at >= 0) host.changed.splice(at, 1);
  }
}
