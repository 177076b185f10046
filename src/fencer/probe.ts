// One heartbeat probe of one pool: a short chain of coreutils children, each with the probe's
// remaining deadline. The fencer process itself never touches a pool path (a hung NFS call would
// pin a libuv thread, reference/fencing.md §6): every stat, write, rename and read is a child.
//   1. stat -L -c %d -- POOL /   the pool's device, and the root's (a vanished mount leaves the
//                                 bare directory on the root filesystem); -L: a pool path that is a
//                                 symlink is judged by the filesystem it points into
// POOL is the path resolved once at start (resolvePoolPath: `realpath -e`, with a deadline).
//   2. mkdir -p -- POOL/KVMHA    kvm only, until it exists
//   3. dd of=TMP oflag=dsync conv=fsync   the heartbeat, stable on the server before dd exits
//   4. mv -f -T -- TMP FILE      rename-atomic, so peers never read half a file
//   5. dd if=FILE iflag=direct   read back past the page cache; must equal what was written
// Both dd open with nofollow: a symlink any host with access to the shared pool put at TMP or FILE
// fails the probe (ELOOP) instead of sending the write, and the read-back, to a file on this host.
// Success only when every step exits 0, the device is the one seen when the pool was armed and not
// the root's, and the read-back matches. Any error (EIO, ESTALE, EROFS, ENOTCONN, ENOENT) is a
// failed probe, exactly like a hang: nothing but a verified heartbeat refreshes the pool.
import type { Runner } from '../shared/run.js';
import { BrickError } from '../shared/errors.js';
import { requireTools } from '../shared/host-tools.js';
import { SingleFlight } from './single-flight.js';
import { heartbeatContent, heartbeatDir, heartbeatFile, heartbeatTempFile, type HeartbeatFormat } from './heartbeat-format.js';

export interface ProbeTools {
  dd: string;
  mv: string;
  stat: string;
  mkdir: string;
  realpath: string;
}

/**
 * Absolute paths of the coreutils the probe runs, from the host-tool registry, resolved once at
 * start (never a PATH lookup at probe time): the host's when new enough, else brick's own copy.
 */
export async function resolveTools(): Promise<ProbeTools> {
  return requireTools(['dd', 'mv', 'stat', 'mkdir', 'realpath'], "the fencer's probes need");
}

export interface ProbeStep {
  what: string;
  cmd: string;
  args: string[];
  input?: string;
  /** 'devices': stdout is the pool's and the root's device; 'content': stdout must equal `expected`. */
  check?: 'devices' | 'content';
  expected?: string;
}

export interface ProbeTarget {
  poolPath: string;
  hostId: string;
  format: HeartbeatFormat;
}

export function probeSteps(
  target: ProbeTarget,
  tools: ProbeTools,
  content: string,
  opts: { mkdir: boolean; delay?: { s: number; sleep: string } },
): ProbeStep[] {
  const file = heartbeatFile(target.poolPath, target.hostId, target.format);
  const tmp = heartbeatTempFile(target.poolPath, target.hostId, target.format);
  const steps: ProbeStep[] = [];
  // Test-only injection (BRICK_TEST_PROBE_DELAY_S, never in the shipped binary): makes each probe slower by this much, inside its deadline.
  if (opts.delay && opts.delay.s > 0) steps.push({ what: 'injected delay', cmd: opts.delay.sleep, args: [String(opts.delay.s)] });
  steps.push({ what: 'stat', cmd: tools.stat, args: ['-L', '-c', '%d', '--', target.poolPath, '/'], check: 'devices' });
  if (opts.mkdir) steps.push({ what: 'mkdir', cmd: tools.mkdir, args: ['-p', '--', heartbeatDir(target.poolPath, target.format)] });
  steps.push({ what: 'write', cmd: tools.dd, args: [`of=${tmp}`, 'bs=4096', 'oflag=dsync,nofollow', 'conv=fsync', 'status=none'], input: content });
  steps.push({ what: 'rename', cmd: tools.mv, args: ['-f', '-T', '--', tmp, file] });
  steps.push({ what: 'read-back', cmd: tools.dd, args: [`if=${file}`, 'iflag=direct,nofollow', 'bs=4096', 'count=1', 'status=none'], check: 'content', expected: content });
  return steps;
}

const resolving = new SingleFlight<Awaited<ReturnType<Runner>>>();

/**
 * A pool path with every symlink resolved (`realpath -e`, a child with a deadline: never a blocking
 * fs call in the fencer on a pool path). The configured path when it cannot be resolved in time or
 * at all (a hung or missing mount at start): the probes then fail or verify on it as they would.
 */
export async function resolvePoolPath(path: string, tools: Pick<ProbeTools, 'realpath'>, run: Runner, timeoutMs: number): Promise<{ path: string; error?: string }> {
  try {
    // Our own timer too: a child stuck in the kernel past its SIGKILL would hold run() (as with probes).
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs + 100)));
    // One realpath per path at a time: one stuck on a hung pool is joined, never doubled by the next call.
    const child = resolving.join(run, `${tools.realpath}\0${path}`, () => run(tools.realpath, ['-e', '--', path], { timeoutMs, allowFailure: true }));
    const r = await Promise.race([child, late]).finally(() => clearTimeout(timer));
    const out = r.stdout.replace(/\n$/, '');
    if (r.code === 0 && out.startsWith('/') && !out.includes('\n')) return { path: out };
    return { path, error: `realpath exited ${r.code}: ${r.stderr.trim().split('\n')[0] || 'no message'}` };
  } catch (e) {
    return { path, error: (e as Error).message };
  }
}

export type ProbeResult =
  | { ok: true; latencyMs: number; device: string }
  | { ok: false; latencyMs: number; timedOut: boolean; error: string; device?: string };

export interface StartedProbe {
  /** Settles at the deadline at the latest. */
  result: Promise<ProbeResult>;
  /** Settles when the last child has exited; a probe stuck in the kernel (D state) never settles. */
  finished: Promise<void>;
}

/**
 * Run the steps with one deadline for the whole chain. Each child is SIGKILLed when the deadline
 * passes; the result does not wait for it to exit (it may not, in D state): `finished` tells when it did.
 * `expectDevice`: the pool's device when it was armed; a different one fails the probe.
 * `requireMount`: a pool on the root filesystem fails (its mount vanished); off only for a pool
 * that is a local directory on purpose (pool.require_mount = false: the sandbox).
 */
export function startProbe(
  steps: ProbeStep[],
  run: Runner,
  timeoutMs: number,
  now: () => number,
  expectDevice?: string,
  requireMount = true,
  signal?: AbortSignal,
): StartedProbe {
  const start = now();
  let device: string | undefined;
  const chain = (async () => {
    for (const s of steps) {
      const left = Math.ceil(timeoutMs - (now() - start));
      if (signal?.aborted) throw new Error('probe aborted (kill-vms is checking the pool)');
      if (left <= 0) throw new BrickError('TIMEOUT', `no answer within ${timeoutMs} ms (before ${s.what})`);
      const r = await run(s.cmd, s.args, { timeoutMs: left, input: s.input, allowFailure: true, signal });
      if (r.code !== 0) throw new Error(`${s.what} failed (exit ${r.code}): ${r.stderr.trim().split('\n')[0] || 'no message'}`);
      if (s.check === 'devices') {
        const [pool, root] = r.stdout.trim().split('\n');
        device = pool;
        if (!pool || (requireMount && pool === root)) throw new Error('the pool directory is on the root filesystem: the storage is not mounted');
        if (expectDevice !== undefined && pool !== expectDevice)
          throw new Error(`the pool's filesystem changed (device ${expectDevice} → ${pool}): the mount vanished or was replaced`);
      }
      if (s.check === 'content' && r.stdout !== s.expected)
        throw new Error(`read-back mismatch: wrote ${JSON.stringify(s.expected)}, read ${JSON.stringify(r.stdout.slice(0, 64))}`);
    }
  })();
  const finished = chain.then(
    () => undefined,
    () => undefined,
  );
  const result = new Promise<ProbeResult>((resolve) => {
    const timer = setTimeout(
      () => resolve({ ok: false, latencyMs: now() - start, timedOut: true, error: `no answer within ${timeoutMs} ms`, device }),
      timeoutMs,
    );
    chain.then(
      () => {
        clearTimeout(timer);
        resolve({ ok: true, latencyMs: now() - start, device: device ?? '' });
      },
      (e: unknown) => {
        clearTimeout(timer);
        const timedOut = e instanceof BrickError && e.fault === 'TIMEOUT';
        resolve({ ok: false, latencyMs: now() - start, timedOut, error: timedOut ? `no answer within ${timeoutMs} ms` : (e as Error).message, device });
      },
    );
  });
  return { result, finished };
}

export { heartbeatContent };
