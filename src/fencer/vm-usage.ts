// Which pools running VMs use (reference/fencing.md rule 12): a pool nobody uses reports DEAD when
// its heartbeat expires but does not reset the host. Asked of libvirt (`virsh list` + `domblklist`)
// or Xen's `xl list -l`, always with a deadline. No answer (timeout, error, no tool) is 'unknown',
// and the daemon counts unknown as used: when in doubt, fence.
import { toolPath } from '../shared/host-tools.js';
import type { Runner } from '../shared/run.js';
import { monoMs } from './clock.js';

export type VmQuery = 'auto' | 'libvirt' | 'xl' | 'none';

/** Disk sources in `virsh domblklist --details` output. */
export function parseDomblklist(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[0] === 'Type' || /^-+$/.test(f[0])) continue;
    const src = f.slice(3).join(' ');
    if (src && src !== '-') out.push(src);
  }
  return out;
}

/** Disk paths of running guests in `xl list -l` JSON (dom0 skipped); `file:`/`tap:aio:` prefixes dropped. */
export function parseXlList(text: string): string[] {
  const doms = JSON.parse(text) as Array<{ domid?: number; config?: { disks?: Array<{ pdev_path?: string; target?: string }> } }>;
  const out: string[] = [];
  for (const d of Array.isArray(doms) ? doms : []) {
    if (d.domid === 0) continue;
    for (const disk of d.config?.disks ?? []) {
      const p = disk.pdev_path ?? disk.target ?? '';
      const i = p.indexOf('/');
      if (i >= 0) out.push(p.slice(i));
    }
  }
  return out;
}

export function poolOfDisk(disk: string, pool: string): boolean {
  const p = pool.replace(/\/+$/, '');
  return disk === p || disk.startsWith(p + '/');
}

/** For each pool path, whether some disk is on it. */
export function usageOf(pools: string[], disks: string[]): Map<string, boolean> {
  return new Map(pools.map((p) => [p, disks.some((d) => poolOfDisk(d, p))]));
}

/**
 * A pool is used when a disk is under its configured path or under the path it resolves to (a pool
 * configured as a symlink to its mount: VMs name either). Keyed by the configured path.
 */
export function usageByPool(pools: Array<{ path: string; resolved: string }>, byPath: ReadonlyMap<string, boolean>): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const p of pools) {
    const a = byPath.get(p.path);
    const b = byPath.get(p.resolved);
    const v = a === true || b === true ? true : (a ?? b);
    if (v !== undefined) out.set(p.path, v);
  }
  return out;
}

/** The registry's absolute path of a tool, or undefined when the host has none. */
async function registryFind(name: string): Promise<string | undefined> {
  const r = await toolPath(name);
  return 'missing' in r ? undefined : r.path;
}

export async function resolveVmQuery(
  q: VmQuery,
  find: (name: string) => Promise<string | undefined> = registryFind,
): Promise<{ kind: 'libvirt' | 'xl' | 'none'; bin?: string }> {
  if (q === 'none') return { kind: 'none' };
  if (q === 'libvirt' || q === 'auto') {
    const bin = await find('virsh');
    if (bin) return { kind: 'libvirt', bin };
    if (q === 'libvirt') return { kind: 'libvirt' };
  }
  const bin = await find('xl');
  if (bin) return { kind: 'xl', bin };
  return q === 'xl' ? { kind: 'xl' } : { kind: 'none' };
}

/**
 * Ask which pools are in use. Resolves to a map, or 'unknown' when the hypervisor did not answer
 * within `timeoutMs` (the whole query, not each command) or no tool is configured.
 */
export async function queryPoolUsage(
  pools: string[],
  how: { kind: 'libvirt' | 'xl' | 'none'; bin?: string; uri?: string },
  run: Runner,
  timeoutMs: number,
): Promise<Map<string, boolean> | 'unknown'> {
  if (how.kind === 'none' || !how.bin) return 'unknown';
  const bin = how.bin;
  const start = monoMs();
  const left = () => Math.max(1, Math.ceil(timeoutMs - (monoMs() - start)));
  const work = (async () => {
    if (how.kind === 'xl') {
      const r = await run(bin, ['list', '-l'], { timeoutMs: left() });
      return usageOf(pools, parseXlList(r.stdout || '[]'));
    }
    const c = how.uri ? ['-c', how.uri] : [];
    const names = (await run(bin, [...c, 'list', '--name'], { timeoutMs: left() })).stdout.split('\n').map((s) => s.trim()).filter(Boolean);
    const disks: string[] = [];
    for (const n of names) {
      const r = await run(bin, [...c, 'domblklist', '--details', '--', n], { timeoutMs: left(), allowFailure: true });
      if (r.code !== 0) {
        // A domain that stopped between the two calls no longer uses anything; any other failure is "no answer".
        if (/failed to get domain|Domain not found/i.test(r.stderr)) continue;
        throw new Error(`virsh domblklist ${n}: ${r.stderr.trim()}`);
      }
      disks.push(...parseDomblklist(r.stdout));
    }
    return usageOf(pools, disks);
  })();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'unknown'>((resolve) => {
    timer = setTimeout(() => resolve('unknown'), timeoutMs);
  });
  try {
    return await Promise.race([work.catch(() => 'unknown' as const), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
