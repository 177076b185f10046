// Safe apply, as oVirt's vdsm does it: a change that could cut the host off (a bridge taking over
// the uplink that carries its addresses and default route) is applied with a deadline. Unless
// network_confirm arrives in time — over the new path, which proves the host is still reachable —
// brick undoes it. One pending change at a time: a second risky change must wait for the first to
// be confirmed or rolled back.
// The undo is written to disk (PENDING_FILE under the state directory, fsynced with its directory)
// BEFORE the change is applied, and removed when it is confirmed or rolled back. `brick serve` rolls
// a pending change back when it stops, and on start rolls back what a process that died left
// pending (same boot only: the state directory is /run, and a reboot has undone the change itself).
import { existsSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../shared/log.js';
import { BrickError } from '../../shared/errors.js';
import type { KeyedLock } from '../../shared/keyed-lock.js';
import type { Runner } from '../../shared/run.js';
import { fsyncDir, writeFileAtomic } from '../../shared/atomic-write.js';
import { sweepStaleTemps } from '../../shared/stale-temps.js';
import { procStart, processFacts, recordedProcess, type ProcessFacts } from '../../shared/process-identity.js';
import { netHost, type NetHost } from './netns.js';

export const PENDING_FILE = 'network-pending.json';

/** Where a pending change's undo is kept: `<fencer.state_dir>/network-pending.json`. */
export function pendingPath(config: Config): string {
  return join(config.fencer.state_dir, PENDING_FILE);
}

/** What is on disk while a change waits for confirmation. */
export interface PendingRecord {
  version: 1;
  pid: number;
  /**
   * The writer's start time (/proc/<pid>/stat starttime, clock ticks since boot): with pid, one
   * process across pid reuse. Absent in records written before it was.
   */
  start?: string;
  /** /proc/sys/kernel/random/boot_id: a record from another boot is not rolled back. */
  boot_id: string;
  namespace: string;
  /** What the change does (planned, then as applied). */
  changes: string[];
  /** ip -batch lines that undo it, in order. */
  undo: string[];
  /** Wall clock (epoch ms) it rolls back at; 0 while it is being applied. */
  deadline_ms: number;
  /**
   * While it is being applied (deadline_ms 0), how a later start tells how far the batch got: the
   * change enslaves `dev` to `master`, and only the steps before that (undo_before) can have run
   * when dev is not master's port. The address and route moves come after it: replaying their undo
   * for a batch that never got there would put back an address or route an admin removed meanwhile.
   */
  witness?: Witness;
}

export interface Witness {
  dev: string;
  master: string;
  /** ip -batch lines that undo the steps before the enslave, in order. */
  undo_before: string[];
}

/**
 * The undo lines a start replays for a record a dead process left (pure): all of them once the
 * change was applied (armed), or when the witness shows the batch got to the enslave; only those
 * of the steps before it when it did not (`masterNow`: the witness device's master now).
 */
export function undoToReplay(r: Pick<PendingRecord, 'deadline_ms' | 'undo' | 'witness'>, masterNow: string | undefined): { undo: string[]; partial: boolean } {
  if (r.deadline_ms !== 0 || !r.witness || masterNow === r.witness.master) return { undo: r.undo, partial: false };
  return { undo: r.witness.undo_before, partial: true };
}

export function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

function writeRecord(file: string, r: PendingRecord): void {
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o755 });
  writeFileAtomic(file, JSON.stringify(r) + '\n', { mode: 0o600 });
}

function removeRecord(file: string | undefined): void {
  if (!file || !existsSync(file)) return;
  rmSync(file, { force: true });
  fsyncDir(join(file, '..'));
}

export function readPending(file: string): PendingRecord | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const r = JSON.parse(text) as PendingRecord;
    const lines = (u: unknown) => Array.isArray(u) && u.every((l) => typeof l === 'string');
    const w = r?.witness;
    if (r && r.version === 1 && lines(r.undo) && (w === undefined || (typeof w.dev === 'string' && typeof w.master === 'string' && lines(w.undo_before)))) return r;
  } catch {
    /* fall through */
  }
  throw new BrickError('INTERNAL', `${file}: not a pending network change brick wrote; look at it and remove it`);
}

/** What recover() knows of the record's writer, gathered from /proc (shared/process-identity). */
export interface OwnerFacts extends ProcessFacts {
  selfPid: number;
}

/**
 * The record's writer still runs (pure). Our own pid is a previous process's come round again (the
 * record was read before this process wrote one); a process with the pid but another start time is
 * not the writer either (recordedProcess: pid_max 32768 wraps within hours on a busy host). A record
 * without a start time, or a start time that cannot be read, is judged by the pid alone.
 */
export function ownerRuns(r: Pick<PendingRecord, 'pid' | 'start'>, f: OwnerFacts): boolean {
  return r.pid !== f.selfPid && recordedProcess(r, f) === 'runs';
}

function ownerFacts(pid: number): OwnerFacts {
  return { selfPid: process.pid, ...processFacts(pid) };
}

/** This process's identity for a record: pid and start time. */
function owner(): { pid: number; start?: string } {
  const start = procStart('self');
  return { pid: process.pid, ...(start ? { start } : {}) };
}

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
  /** The record on disk, if the change is durable. */
  file?: string;
}

export interface ArmOptions {
  scope?: LockScope;
  /** The pending file; written (with the deadline) and removed when settled. */
  file?: string;
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
  reserve(durable?: { file: string; namespace: string; changes: string[]; undo: string[]; witness?: Witness }): () => void {
    this.assertFree();
    if (durable) {
      // On disk before anything changes: a crash from here on leaves the undo for the next start.
      writeRecord(durable.file, {
        version: 1,
        ...owner(),
        boot_id: bootId(),
        namespace: durable.namespace,
        changes: durable.changes,
        undo: durable.undo,
        deadline_ms: 0,
        ...(durable.witness ? { witness: durable.witness } : {}),
      });
    }
    this.reserved = true;
    return () => {
      if (!this.pending && durable) removeRecord(durable.file);
      this.reserved = false;
    };
  }

  /** Start the rollback timer for a change just applied (after reserve(), or alone). */
  arm(host: NetHost, log: Logger, changes: string[], undo: string[], confirmWithinS: number, o: ArmOptions = {}): { id: number; deadline: Date } {
    if (this.pending) this.assertFree();
    this.reserved = true;
    const id = this.nextId++;
    const deadline = Date.now() + confirmWithinS * 1000;
    if (o.file) writeRecord(o.file, { version: 1, ...owner(), boot_id: bootId(), namespace: host.namespace, changes, undo, deadline_ms: deadline });
    const timer = setTimeout(() => void this.rollback(id), confirmWithinS * 1000);
    timer.unref?.();
    this.pending = { id, changes, undo, host, log, deadline, timer, ...(o.scope ? { scope: o.scope } : {}), ...(o.file ? { file: o.file } : {}) };
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
    removeRecord(p.file);
    this.pending = undefined;
    this.reserved = false;
    p.log.info({ changes: p.changes }, 'network change confirmed');
    return { kept: p.changes };
  }

  /** brick serve is stopping: roll back the pending change now (nobody is left to confirm it). */
  async rollbackNow(): Promise<void> {
    const p = this.pending;
    if (!p) return;
    clearTimeout(p.timer);
    p.log.warn({ changes: p.changes }, 'stopping with a network change unconfirmed: rolling it back');
    await this.rollback(p.id);
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
    // Removed even when the undo failed: the log says so, and a later start must not replay it.
    removeRecord(p.file);
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

  /**
   * At start: roll back a change a previous brick process left pending (it died or was killed in
   * the confirmation window). A record from another boot is dropped (the reboot undid the change);
   * one whose process still runs is left to it.
   */
  async recover(config: Config, run: Runner, log: Logger): Promise<'none' | 'rolled-back' | 'failed' | 'other-boot' | 'owner-alive' | 'namespace-gone'> {
    const file = pendingPath(config);
    // The temp file of a record write a killed brick left (shared/stale-temps.ts; its pid gone).
    const swept = sweepStaleTemps(join(file, '..'), (b) => b === PENDING_FILE);
    if (swept.removed.length) log.info({ removed: swept.removed }, 'removed the temp file(s) of a pending network change a brick process that is gone left');
    if (swept.errors.length) log.warn({ errors: swept.errors }, 'could not remove the temp files of a pending network change a brick process that is gone left');
    const r = readPending(file);
    if (!r) return 'none';
    // The boot first: a record of another boot has no live writer, whatever process has its pid now.
    if (r.boot_id !== bootId()) {
      log.warn({ file, changes: r.changes }, 'a pending network change from before the last boot was dropped (the reboot undid it)');
      removeRecord(file);
      return 'other-boot';
    }
    if (ownerRuns(r, ownerFacts(r.pid))) {
      log.warn({ file, pid: r.pid }, 'a pending network change belongs to a brick process that still runs; leaving it to that process');
      return 'owner-alive';
    }
    if (r.namespace && !existsSync(`/run/netns/${r.namespace}`)) {
      log.warn({ file, namespace: r.namespace, changes: r.changes }, 'a pending network change was dropped: its namespace is gone, and the change with it');
      removeRecord(file);
      return 'namespace-gone';
    }
    const host = netHost({ ...config, network: { ...config.network, namespace: r.namespace } }, run);
    let ok = true;
    let error: string | undefined;
    let partial = false;
    try {
      // Killed while applying: how far did the batch get? (see PendingRecord.witness)
      // A look that fails says nothing: then every undo line, as without a witness.
      const masterNow = r.deadline_ms === 0 && r.witness ? await masterOf(host, r.witness.dev).catch(() => r.witness!.master) : undefined;
      const replay = undoToReplay(r, masterNow);
      partial = replay.partial;
      const u = replay.undo.length ? await host.ipBatch(replay.undo, { force: true, allowFailure: true, undo: true }) : { code: 0, stderr: '' };
      // -force: lines whose change never happened (a crash before the batch) fail harmlessly.
      if (u.code !== 0) error = u.stderr.trim();
    } catch (e) {
      [ok, error] = [false, (e as Error).message];
    }
    removeRecord(file);
    this.lastRollback = { changes: r.changes, at: new Date(), ok, ...(error ? { error } : {}) };
    if (ok && partial)
      log.warn(
        { changes: r.changes, undo_errors: error, witness: r.witness },
        `a network change a previous brick process was killed applying was rolled back at start: it had not got to making ${r.witness!.dev} a port of ${r.witness!.master}, so only the steps before that were undone (the addresses and routes were never moved)`,
      );
    else if (ok) log.warn({ changes: r.changes, undo_errors: error }, 'a network change left unconfirmed by a previous brick process was rolled back at start');
    else log.error({ changes: r.changes, error }, 'a network change left unconfirmed by a previous brick process could NOT be rolled back: check the host');
    return ok ? 'rolled-back' : 'failed';
  }
}

/** The master of a link now; undefined when it has none or does not exist. */
async function masterOf(host: NetHost, dev: string): Promise<string | undefined> {
  const r = await host.ip(['-json', 'link', 'show', 'dev', dev], { allowFailure: true });
  if (r.code !== 0) return undefined;
  const links = JSON.parse(r.stdout || '[]') as Array<{ master?: string }>;
  return links[0]?.master;
}

/** The one pending-change slot of this brick process. */
export const safeApply = new SafeApply();
