// Safe apply, as oVirt's vdsm does it: a change that could cut the host off (a bridge taking over
// the uplink that carries its addresses and default route) is applied with a deadline. Unless
// network_confirm arrives in time — over the new path, which proves the host is still reachable —
// brick undoes it. One pending change at a time: a second risky change must wait for the first to
// be confirmed or rolled back.
import type { Logger } from '../../shared/log.js';
import { BrickError } from '../../shared/errors.js';
import type { KeyedLock } from '../../shared/keyed-lock.js';
import type { NetHost } from './netns.js';

/** What a rollback must hold while it runs: the same locks the change was made under. */
export interface LockScope {
  locks: KeyedLock;
  keys: string[];
}

export interface PendingChange {
  id: number;
  changes: string[];
  /** ip -batch lines that undo it, in order. */
  undo: string[];
  host: NetHost;
  log: Logger;
  deadline: number;
  timer: NodeJS.Timeout;
  scope?: LockScope;
}

export interface RollbackRecord {
  changes: string[];
  at: Date;
  ok: boolean;
  error?: string;
}

export class SafeApply {
  private pending: PendingChange | undefined;
  /** Held from just before a risky change is applied until it is armed (or failed). */
  private reserved = false;
  private nextId = 1;
  /** The last automatic rollback, so a late network_confirm can say what happened. */
  lastRollback: RollbackRecord | undefined;
  /** Resolves after each rollback; for tests. */
  private rollbackWaiters: Array<() => void> = [];

  get hasPending(): boolean {
    return this.pending !== undefined;
  }

  /** Refuse a second risky change while one is waiting for confirmation. */
  assertFree(): void {
    if (this.reserved && !this.pending) throw new BrickError('NOT_READY', 'another network change that needs confirmation is being applied; try again in a moment');
    if (this.pending)
      throw new BrickError(
        'NOT_READY',
        `a network change is waiting for network_confirm (${this.pending.changes.length} change(s), rolled back in ${Math.max(0, Math.round((this.pending.deadline - Date.now()) / 1000))} s); confirm or let it roll back first`,
      );
  }

  /**
   * Take the one slot before applying a risky change, so two cannot be applied side by side.
   * Returns the release for when the change fails or turns out to change nothing.
   */
  reserve(): () => void {
    this.assertFree();
    this.reserved = true;
    return () => {
      this.reserved = false;
    };
  }

  /** Start the rollback timer for a change just applied (after reserve(), or alone). */
  arm(host: NetHost, log: Logger, changes: string[], undo: string[], confirmWithinS: number, scope?: LockScope): { id: number; deadline: Date } {
    if (this.pending) this.assertFree();
    this.reserved = true;
    const id = this.nextId++;
    const deadline = Date.now() + confirmWithinS * 1000;
    const timer = setTimeout(() => void this.rollback(id), confirmWithinS * 1000);
    timer.unref?.();
    this.pending = { id, changes, undo, host, log, deadline, timer, ...(scope ? { scope } : {}) };
    log.warn({ changes, confirm_within_s: confirmWithinS }, 'network change applied; rolled back unless network_confirm comes in time');
    return { id, deadline: new Date(deadline) };
  }

  /** network_confirm: keep the pending change. */
  confirm(): { kept: string[] } {
    const p = this.pending;
    if (!p) {
      const lr = this.lastRollback;
      throw new BrickError(
        'NOT_READY',
        lr
          ? `no network change is waiting for confirmation; the last one (${lr.changes.join('; ')}) was rolled back at ${lr.at.toISOString()}`
          : 'no network change is waiting for confirmation',
      );
    }
    clearTimeout(p.timer);
    this.pending = undefined;
    this.reserved = false;
    p.log.info({ changes: p.changes }, 'network change confirmed');
    return { kept: p.changes };
  }

  private async rollback(id: number): Promise<void> {
    const p = this.pending;
    if (!p || p.id !== id) return;
    this.pending = undefined;
    let ok = true;
    let error: string | undefined;
    const undo = async () => {
      const r = await p.host.ipBatch(p.undo, { force: true, allowFailure: true });
      if (r.code !== 0) [ok, error] = [false, r.stderr.trim()];
    };
    try {
      await (p.scope ? p.scope.locks.with(p.scope.keys, undo) : undo());
    } catch (e) {
      [ok, error] = [false, (e as Error).message];
    }
    this.reserved = false;
    this.lastRollback = { changes: p.changes, at: new Date(), ok, ...(error ? { error } : {}) };
    if (ok) p.log.warn({ changes: p.changes }, 'network change not confirmed in time: rolled back');
    else p.log.error({ changes: p.changes, error }, 'network change not confirmed in time: rollback FAILED, check the host');
    for (const w of this.rollbackWaiters.splice(0)) w();
  }

  /** For tests: resolves after the next rollback. */
  nextRollback(): Promise<void> {
    return new Promise((r) => this.rollbackWaiters.push(r));
  }
}

/** The one pending-change slot of this brick process. */
export const safeApply = new SafeApply();
