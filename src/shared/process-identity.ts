// A process named by its pid AND its start time (/proc/<pid>/stat field 22, starttime: clock ticks
// since boot). A pid alone names a process only until it exits: pid_max (32768 by default) wraps
// within hours on a busy host, and the next process to draw that pid is another one. A record that
// must later tell whether its writer still runs (the pending network change, the fencer's state
// file) keeps both; the facts are gathered here, the judgement (recordedProcess) is pure.
import { readFileSync } from 'node:fs';
import { parseStat } from './proc-stat.js';

/** starttime (field 22) of /proc/<pid>/stat; undefined when it cannot be read. */
export function procStart(pid: number | 'self'): string | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const start = parseStat(text)?.start;
  return start !== undefined && /^\d+$/.test(start) ? start : undefined;
}

/** What /proc says now of the process a record names. */
export interface ProcessFacts {
  /** A process with the record's pid exists (signal 0, EPERM included). */
  pidExists: boolean;
  /** Its start time, when readable. */
  pidStart: string | undefined;
}

/**
 * Gathered: whether a process has this pid (signal 0: no signal is sent; EPERM: it exists, it is
 * not ours) and its start time. A pid that is no positive integer names no process (0 and negative
 * pids would ask about a process group).
 */
export function processFacts(pid: number): ProcessFacts {
  if (!Number.isInteger(pid) || pid <= 0) return { pidExists: false, pidStart: undefined };
  let pidExists: boolean;
  try {
    process.kill(pid, 0);
    pidExists = true;
  } catch (e) {
    pidExists = (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  return { pidExists, pidStart: pidExists ? procStart(pid) : undefined };
}

/**
 * Whether the process a record names still runs (pure): 'runs'; 'gone' (no process has its pid);
 * 'reused' (a process has its pid but another start time: the writer exited and another process drew
 * the pid). A record without a start time (written before records carried one), or a process whose
 * start time cannot be read, is judged by the pid alone.
 */
export function recordedProcess(r: { pid: number; start?: string }, f: ProcessFacts): 'runs' | 'gone' | 'reused' {
  if (!f.pidExists) return 'gone';
  return r.start === undefined || f.pidStart === undefined || f.pidStart === r.start ? 'runs' : 'reused';
}
