// The fence marker: `<marker_dir>/fence-marker.json` on local persistent disk, written durably just
// before the fence action so it survives the reset. After boot the fencer reports it (state
// `last_fence`), and so do `brick status` and heartbeat_status, until an administrator who has looked
// at why the host fenced removes the file (`rm /var/lib/brick/fence-marker.json`). brick never clears
// it by itself: a host that fenced must stay visibly "fenced before" until a person acknowledges it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../shared/atomic-write.js';

export const MARKER_FILE = 'fence-marker.json';

export interface FenceMarker {
  /** Wall clock, ISO 8601. */
  at: string;
  pool: string;
  reason: string;
  action: 'reboot' | 'crash' | 'kill-vms' | 'log-only' | 'command';
  host_id: string;
  /** Seconds since the pool's last verified heartbeat when the fencer fenced. */
  last_ok_age_s: number | null;
}

export function markerPath(markerDir: string): string {
  return join(markerDir, MARKER_FILE);
}

export function writeFenceMarker(markerDir: string, m: FenceMarker): void {
  // Durable (file and directory fsynced) before the fence action runs: it must survive the reset.
  writeFileAtomic(markerPath(markerDir), JSON.stringify(m) + '\n');
}

export function readFenceMarker(markerDir: string): FenceMarker | undefined {
  try {
    const m = JSON.parse(readFileSync(markerPath(markerDir), 'utf8')) as FenceMarker;
    return m && typeof m.at === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}
