// Is another host's heartbeat alive? For the orchestrator's investigator (heartbeat_check, and the
// Ovm3 check_dom0_storage_health calls). The file is read by a child process (`dd iflag=direct`,
// past the page cache) with a deadline, so a hung pool cannot hang the agent (rule 13); while a read
// of a file is still in the kernel past its SIGKILL, the next checks of it join it instead of
// leaving one more stuck child each:
//   unreadable, missing, unparsable, timed out, a symlink (nofollow: never a file of this host) → 'unknown' (never false: "cannot tell" is not "dead")
//   value unchanged for maxAgeS of OUR monotonic clock → false (immune to clock skew)
//   value changed since our last read, and that read was within maxAgeS → true
//   otherwise compare the written epoch with our wall clock: age > maxAgeS → false
import { run as realRun, type Runner } from '../shared/run.js';
import { heartbeatFile, parseHeartbeat, type HeartbeatFormat } from './heartbeat-format.js';
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
  /** Monotonic ms when this value was first read. */
  since: number;
  lastRead: number;
}
const seen = new Map<string, Seen>();
/** One dd per file at a time: a read stuck on a hung pool is joined, never doubled (single-flight.ts). */
const reads = new SingleFlight<string | undefined>();
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
  const read = reads.join(run, file, () =>
    run('dd', [`if=${file}`, 'iflag=direct,nofollow', 'bs=4096', 'count=1', 'status=none'], { timeoutMs: a.timeoutMs, allowFailure: true })
      .then((r) => (r.code === 0 ? r.stdout : undefined))
      .catch(() => undefined),
  );
  const text = await Promise.race([read, deadline]);
  clearTimeout(timer);
  if (text === undefined) return { alive: 'unknown', age_s: null };
  const ts = parseHeartbeat(a.format, text);
  if (ts === undefined) return { alive: 'unknown', age_s: null };
  const now = mono();
  const ageS = Math.round((wall() / 1000 - ts) * 1000) / 1000;
  const maxMs = a.maxAgeS * 1000;
  const prev = seen.get(file);
  if (seen.size >= SEEN_MAX && !prev) seen.delete(seen.keys().next().value!);
  if (!prev || prev.value !== text) seen.set(file, { value: text, since: now, lastRead: now });
  else prev.lastRead = now;
  if (prev && prev.value === text && now - prev.since >= maxMs) return { alive: false, age_s: ageS };
  if (prev && prev.value !== text && now - prev.lastRead <= maxMs) return { alive: true, age_s: ageS };
  return { alive: ageS <= a.maxAgeS, age_s: ageS };
}

/** Tests: forget what was seen. */
export function forgetPeerReads(): void {
  seen.clear();
  reads.clear();
}
