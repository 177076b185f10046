// What kill-vms puts in the fencer's state file (state.ts), for brick status, heartbeat_status and /metrics.

/** What `brick status`, heartbeat_status and /metrics show per pool (in the fencer's state file). */
export interface PoolKillSnapshot {
  phase: 'idle' | 'killing' | 'fenced';
  /** Wall clock (ISO) the pool was fenced by kill-vms; null when it is not. */
  fenced_since: string | null;
  /** Why it is not spared yet (killing only). */
  waiting_for: string | null;
  /** The processes killed in the current or last episode. */
  killed: Array<{ pid: number; comm: string; vm: string | null; uuid: string | null; killed_at: string; gone_after_s: number | null }>;
  last_kill_at: string | null;
  processes_killed_total: number;
  vms_killed_total: number;
  spared_total: number;
  /** The pool's mount as recorded while healthy (kill-vms cannot act without it). */
  mount: { dev: string; fstype: string; mount_point: string } | null;
}

export interface KillVmsCounters {
  processes_killed_total: number;
  vms_killed_total: number;
  spared_total: number;
}

