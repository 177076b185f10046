// The heartbeat files CloudStack peers read (reference/cloudstack.md §2, §4):
//   ovm: <pool>/.hb-<host_id>        float epoch seconds, no newline (storagehealth.py)
//   kvm: <pool>/KVMHA/hb-<host_id>   integer epoch seconds and a newline (kvmheartbeat.sh)
// Both are written to a temporary name and renamed into place, so a reader never sees a half file.
// A kvm epoch is a whole second: with a probe interval under 1 s, successive writes within one second
// leave the same content, so a reader cannot see them apart. Readers therefore take the content to
// stand for any write within the span it names (heartbeatSpanMs), never for the first one: a "value
// unchanged" check counts from the end of that span, as CloudStack's kvmheartbeat.sh (`date +%s`
// minus the file, both whole seconds) does. The format stays what CloudStack reads.
import { posix } from 'node:path';

export type HeartbeatFormat = 'ovm' | 'kvm';

export const HOST_ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

export function heartbeatDir(poolPath: string, format: HeartbeatFormat): string {
  const pool = posix.normalize(poolPath).replace(/\/+$/, '') || '/';
  return format === 'kvm' ? posix.join(pool, 'KVMHA') : pool;
}

export function heartbeatFile(poolPath: string, hostId: string, format: HeartbeatFormat): string {
  return posix.join(heartbeatDir(poolPath, format), format === 'kvm' ? `hb-${hostId}` : `.hb-${hostId}`);
}

/** The temporary name the probe writes before renaming; unique per writer so two hosts never share it. */
export function heartbeatTempFile(poolPath: string, hostId: string, format: HeartbeatFormat): string {
  return heartbeatFile(poolPath, hostId, format) + '.new';
}

/** What a probe writes for the wall time `wallMs`. */
export function heartbeatContent(format: HeartbeatFormat, wallMs: number): string {
  return format === 'kvm' ? `${Math.floor(wallMs / 1000)}\n` : (wallMs / 1000).toFixed(3);
}

/**
 * How long after its epoch the content may still be (re)written unchanged, in ms: 999 for kvm (whole
 * seconds), 0 for ovm (this writer's milliseconds; CloudStack's storagehealth.py writes hundredths or finer, once a
 * second at most: no two of its writes share a content).
 */
export function heartbeatSpanMs(format: HeartbeatFormat): number {
  return format === 'kvm' ? 999 : 0;
}

/** The epoch seconds in a heartbeat file, or undefined when it is empty or not a number. */
export function parseHeartbeat(format: HeartbeatFormat, text: string): number | undefined {
  const first = text.split('\n')[0].trim();
  const re = format === 'kvm' ? /^\d{1,12}$/ : /^\d{1,12}(?:\.\d+)?$/;
  if (!re.test(first)) return undefined;
  const v = Number(first);
  return Number.isFinite(v) ? v : undefined;
}
