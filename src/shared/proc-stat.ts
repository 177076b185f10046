// /proc/<pid>/stat, parsed once for every reader: kill-vms (which processes use a mount), the
// process identity of records (pid + start time: shared/process-identity.ts) and a domain's uptime
// (ovm3/stats.ts).
export interface ProcStat {
  state: string;
  /** Start time in clock ticks since boot: with the pid, names one process across pid reuse. */
  start: string;
  comm: string;
  ppid: number;
  /** Task flags (PF_*): PF_KTHREAD 0x00200000 marks a kernel thread. */
  flags: number;
}

/** /proc/<pid>/stat (comm may hold spaces and parentheses: split at the LAST ')'). */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const rest = text.slice(close + 2).split(' ');
  // rest[0] = state (field 3), rest[1] = ppid (4), rest[19] = starttime (22)
  if (rest.length < 20) return undefined;
  return { comm: text.slice(open + 1, close), state: rest[0], ppid: Number(rest[1]), flags: Number(rest[6]), start: rest[19] };
}
