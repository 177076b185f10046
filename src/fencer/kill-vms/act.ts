// The edge of kill-vms that acts: SIGKILL through process.kill (never a shell), `virsh destroy` /
// `xl destroy` through the one runner with a deadline, one marker per killed VM on local disk.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Runner } from '../../shared/run.js';
import { parseStat } from './proc-parse.js';
import type { Holder, KilledProc } from './decide.js';

export type KillFn = (pid: number, signal: NodeJS.Signals) => void;

/**
 * SIGKILL each holder, after checking the pid still names the same process (its start time).
 * A process already gone is not an error; anything else (EPERM) is, and makes the plan reset.
 */
export function killHolders(hs: Holder[], kill: KillFn = process.kill, procRoot = '/proc'): Array<{ pid: number; comm: string; error: string }> {
  const errors: Array<{ pid: number; comm: string; error: string }> = [];
  for (const h of hs) {
    let st;
    try {
      st = parseStat(readFileSync(join(procRoot, String(h.pid), 'stat'), 'utf8'));
    } catch {
      continue; // gone
    }
    if (!st || st.start !== h.start) continue; // gone, and the pid reused
    try {
      kill(h.pid, 'SIGKILL');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ESRCH') continue;
      errors.push({ pid: h.pid, comm: h.comm, error: code ?? (e as Error).message });
    }
  }
  return errors;
}

export interface KillMarker {
  at: string;
  pool: string;
  vm: { name: string | null; uuid: string | null; domid: number | null };
  pid: number;
  comm: string;
  how: string[];
  /** Seconds from the SIGKILL to the process being seen gone. */
  gone_after_s: number | null;
}

const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);

/**
 * One durable marker per killed VM (processes that are not VMs are logged and kept in the state, not
 * marked): the file and its text. The fencer writes it through its marker writer's children, never
 * from its own thread (marker_dir may hang like any directory; the loop must not).
 */
/** Whether a file name in marker_dir is a kill marker's (killMarkerFile). */
export function isKillMarkerName(name: string): boolean {
  return /^killed-vm-.*\.json$/.test(name);
}

export function killMarkerFile(markerDir: string, m: KillMarker): { file: string; text: string } {
  const id = m.vm.uuid ?? m.vm.name ?? `pid-${m.pid}`;
  return { file: join(markerDir, `killed-vm-${safe(id)}-${Date.parse(m.at)}.json`), text: JSON.stringify(m) + '\n' };
}

export function markerOf(pool: string, k: KilledProc, atIso: string): KillMarker {
  return {
    at: atIso,
    pool,
    vm: { name: k.vm?.name ?? null, uuid: k.vm?.uuid ?? null, domid: k.vm?.domid ?? null },
    pid: k.pid,
    comm: k.comm,
    how: k.how,
    gone_after_s: k.goneAtMs === undefined ? null : Math.round(k.goneAtMs - k.killedAtMs) / 1000,
  };
}

/** The hypervisor call that makes the orchestrator see a killed VM stopped. */
export function destroyArgv(how: { kind: 'libvirt' | 'xl' | 'none'; bin?: string; uri?: string }, k: KilledProc): [string, string[]] | undefined {
  if (!how.bin || !k.vm) return undefined;
  if (how.kind === 'libvirt' && (k.vm.uuid || k.vm.name)) return [how.bin, [...(how.uri ? ['-c', how.uri] : []), 'destroy', '--', k.vm.uuid ?? k.vm.name!]];
  if (how.kind === 'xl' && (k.vm.domid !== undefined || k.vm.name)) return [how.bin, ['destroy', String(k.vm.domid ?? k.vm.name)]];
  return undefined;
}

/**
 * Destroy the killed VMs' domains, all at once, the whole phase within one deadline: N destroys
 * against a hung libvirtd or xl take one `timeoutMs`, not N of them (each child is killed at the
 * deadline; our own timer answers for one the kernel holds past its SIGKILL). Resolves to one line
 * per VM, in order. Runs only once the pool is spared (the QEMUs are gone): it tells the
 * orchestrator the domains stopped, and never holds the fence or the reset.
 */
export async function destroyDomains(
  how: { kind: 'libvirt' | 'xl' | 'none'; bin?: string; uri?: string },
  killed: KilledProc[],
  run: Runner,
  timeoutMs: number,
): Promise<Array<{ vm: string; ok: boolean; message: string }>> {
  const jobs = killed.flatMap((k) => {
    const argv = destroyArgv(how, k);
    return argv ? [{ vm: k.vm?.name ?? k.vm?.uuid ?? String(k.pid), argv }] : [];
  });
  if (!jobs.length) return [];
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs + 100)));
  try {
    return await Promise.all(
      jobs.map(({ vm, argv }) =>
        Promise.race([
          run(argv[0], argv[1], { timeoutMs, allowFailure: true }).then(
            (r) => {
              // The QEMU is already dead: libvirt may have noticed first ("domain is not running"); that is the result we want.
              const ok = r.code === 0 || /not running|not found|no domain/i.test(r.stderr);
              return { vm, ok, message: r.code === 0 ? 'destroyed' : r.stderr.trim().split('\n')[0] };
            },
            (e: unknown) => ({ vm, ok: false, message: (e as Error).message }),
          ),
          late.then(() => ({ vm, ok: false, message: `no answer within ${timeoutMs} ms` })),
        ]),
      ),
    );
  } finally {
    clearTimeout(timer);
  }
}
