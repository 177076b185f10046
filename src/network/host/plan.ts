// A PLAN is the difference between the desired and the running state: for the Linux backend a list
// of steps, each one `ip -batch` line with its inverse; for Open vSwitch a list of ovs-vsctl
// commands run as one transaction. Planners are pure; applying is the only place that changes the
// host, in one process. `what` lines are what the reply reports as changed.
import { BrickError } from '../../shared/errors.js';
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
 * are then undone (best effort, `-force`) so a failed call leaves the host as it found it.
 */
export async function applySteps(host: NetHost, steps: readonly Step[]): Promise<string[]> {
  if (!steps.length) return [];
  const r = await host.ipBatch(steps.map((s) => s.do), { allowFailure: true });
  if (r.code === 0) return steps.map((s) => s.what);
  const m = /Command failed -:(\d+)/.exec(r.stderr);
  const failed = m ? Number(m[1]) - 1 : -1;
  const applied = failed >= 0 ? steps.slice(0, failed) : [];
  const undo = undoLines(applied);
  let undone = 'nothing before it had been applied';
  if (undo.length) {
    const u = await host.ipBatch(undo, { force: true, allowFailure: true });
    undone = u.code === 0 ? `the ${applied.length} step(s) before it were undone` : `undoing the ${applied.length} step(s) before it failed too: ${u.stderr.trim()}`;
  }
  const line = failed >= 0 ? `"${steps[failed].do}"` : 'a step';
  throw new BrickError('COMMAND_FAILED', `ip -batch: ${line} failed: ${r.stderr.replace(/Command failed -:\d+/, '').trim() || 'exit ' + r.code}; ${undone}`, {
    step: failed >= 0 ? steps[failed].do : undefined,
  });
}

/** Apply OVS commands as one ovs-vsctl transaction (OVSDB makes it all or nothing). */
export async function applyOvs(host: NetHost, cmds: readonly OvsCommand[]): Promise<string[]> {
  if (!cmds.length) return [];
  await host.vsctl(ovsTransactionArgs(cmds));
  return cmds.map((c) => c.what);
}
