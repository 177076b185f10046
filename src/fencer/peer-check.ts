// Is another host's heartbeat alive? For the orchestrator's investigator (heartbeat_check, and the
// Ovm3 check_dom0_storage_health calls). The file is read by a child process (`dd iflag=direct`,
// past the page cache) with a deadline, so a hung pool cannot hang the agent (rule 13); while a read
// of a file is still in the kernel past its SIGKILL, the next checks of it join it instead of
// leaving one more stuck child each:
//   unreadable, missing, unparsable, timed out, a symlink (nofollow: never a file of this host) → 'unknown' (never false: "cannot tell" is not "dead")
//   otherwise alive when the heartbeat's age is at most maxAgeS, dead when it is more (as CloudStack's
//   readers: kvmheartbeat.sh `$(date +%s) - hb > interval` → DEAD, storagehealth.py `delay > timeout`
//   → not ok; exactly maxAgeS is alive). A kvm epoch is a whole second: every write within that
//   second leaves the same content, so it stands for a write as late as its last millisecond (with
//   whole seconds on both sides, exactly as kvmheartbeat.sh judges it). The age is judged on OUR
//   monotonic clock wherever our reads bound it, so clock skew between the hosts, or a step of
//   either wall clock, moves no verdict they settle: the value was written after the last read of
//   ours that saw another value (`after`) and no later than the first read that saw this one
//   (`since`, plus that second for kvm). Within those bounds the written epoch, read by our wall
//   clock, places the write; outside them it is clamped to them. Hence:
//     value unchanged for more than maxAgeS (+1 s for kvm) of our monotonic clock → false, whatever the epoch says
//     value seen changing after a read of ours at most maxAgeS ago → true, whatever the epoch says
//     nothing seen before (a first read) → the epoch alone: skew shifts that verdict by its size
//   A dead peer is thus declared dead at most maxAgeS (+1 s for kvm) after we first read its last
//   heartbeat (earlier by its epoch when its clock is not ahead); a live one is never declared dead
//   by skew unless its last write falls between two of our reads and may be older than maxAgeS by
//   up to their gap. age_s is the written epoch's age by our wall clock, as reported.
import { run as realRun, type Runner } from '../shared/run.js';
import { heartbeatFile, heartbeatSpanMs, parseHeartbeat, type HeartbeatFormat } from './heartbeat-format.js';
import { monoMs } from './clock.js';
import { SingleFlight } from './single-flight.js';

export interface PeerCheckArgs {
  poolPath: string;
  hostId: string;
  format: HeartbeatFormat;
  maxAgeS: number;
  timeoutMs: number;
  run?: Runner;
  /** Injected clocks for tests. */
  wallMs?: () => number;
  monoMs?: () => number;
}

export interface PeerCheckResult {
  alive: true | false | 'unknown';
  age_s: number | null;
}

interface Seen {
  value: string;
  /** Monotonic ms of the first read that saw this value: it was written no later. */
  since: number;
  /** Monotonic ms at which the last read that saw another value began: this one was written after it (-Infinity: none seen). */
  after: number;
  /** Monotonic ms at which the last read that saw this value began. */
  lastRead: number;
}
const seen = new Map<string, Seen>();
/** One dd per file at a time: a read stuck on a hung pool is joined, never doubled (single-flight.ts). */
const reads = new SingleFlight<{ text: string | undefined; startedMs: number }>();
const SEEN_MAX = 1000;

export async function checkPeerHeartbeat(a: PeerCheckArgs): Promise<PeerCheckResult> {
  const run = a.run ?? realRun;
  const wall = a.wallMs ?? Date.now;
  const mono = a.monoMs ?? monoMs;
  const file = heartbeatFile(a.poolPath, a.hostId, a.format);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<undefined>((r) => {
    timer = setTimeout(() => r(undefined), a.timeoutMs);
  });
  const read = reads.join(run, file, () => {
    // When the read began: the value it returns was there at some point after this (a joined read began before our call).
    const startedMs = mono();
    return run('dd', [`if=${file}`, 'iflag=direct,nofollow', 'bs=4096', 'count=1', 'status=none'], { timeoutMs: a.timeoutMs, allowFailure: true })
      .then((r) => ({ text: r.code === 0 ? r.stdout : undefined, startedMs }))
      .catch(() => ({ text: undefined, startedMs }));
  });
  const got = await Promise.race([read, deadline]);
  clearTimeout(timer);
  const text = got?.text;
  if (got === undefined || text === undefined) return { alive: 'unknown', age_s: null };
  const ts = parseHeartbeat(a.format, text);
  if (ts === undefined) return { alive: 'unknown', age_s: null };
  const now = mono();
  const ageS = Math.round((wall() / 1000 - ts) * 1000) / 1000;
  const prev = seen.get(file);
  if (seen.size >= SEEN_MAX && !prev) seen.delete(seen.keys().next().value!);
  let cur: Seen;
  if (prev && prev.value === text) {
    cur = prev;
    cur.lastRead = Math.max(cur.lastRead, got.startedMs);
  } else seen.set(file, (cur = { value: text, since: now, after: prev ? prev.lastRead : -Infinity, lastRead: got.startedMs }));
  // The age of the latest write this content can stand for: by the epoch (the end of the span it
  // names: a kvm epoch is a whole second, rewritten unchanged by every write within it), clamped to
  // what our reads show: written after `after`, and no later than `span` after `since`.
  const span = heartbeatSpanMs(a.format);
  const ageMs = Math.min(Math.max(Math.round(ageS * 1000) - span, now - cur.since - span), now - cur.after);
  return { alive: ageMs <= a.maxAgeS * 1000, age_s: ageS };
}

/** Tests: forget what was seen. */
export function forgetPeerReads(): void {
  seen.clear();
  reads.clear();
}
