// Bench (figures printed, nothing asserted): what the orchestrator pays per network call. Its unit
// of work is one call per bridge (one per guest network as VMs start), so each sample is ONE call of
// network_ensure_bridge through the dispatcher (argument checks, deadline, locks, the real `ip`), in
// a namespace that already holds N bridges, for N = 10, 100, 1,000 and 4,094:
//   - a new bridge;
//   - an ensure that changes nothing (the bridge is there, brick's, up);
// beside the same new bridge made by two plain `ip` commands (`ip -n NS link add NAME type bridge`,
// `ip -n NS link set NAME up`), the floor any agent that forks `ip` pays. Interleaved, same namespace.
// (A Linux VLAN bridge needs the 8021q module, which this machine's kernel lacks; the VLAN path reads
// the same way: the parent, its ports and the two names it makes.)
//   node --import tsx bench/network.ts [calls per size] [sizes comma-separated]
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { run } from '../src/shared/run.js';
import { defaultConfig } from '../src/config/load.js';
import { Dispatcher } from '../src/agent-extension/dispatch.js';
import { methods } from '../src/network/methods.js';
import { createLogger } from '../src/shared/log.js';
import { writeFigures, type Figure } from './lib.js';

const CALLS = Number(process.argv[2] ?? 30);
const SIZES = (process.argv[3] ?? '10,100,1000,4094').split(',').map(Number);
const GOALS: Record<string, (n: number) => number> = {
  new: (n) => (n <= 10 ? 25 : 50),
  same: () => 10,
};

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const figures: Figure[] = [];
  const extra: Record<string, unknown> = { calls_per_size: CALLS, sizes: SIZES };
  for (const n of SIZES) {
    const ns = `brick-bench-${randomBytes(3).toString('hex')}`;
    await run('ip', ['netns', 'add', ns], { timeoutMs: 60_000 });
    try {
      // N bridges already there (a person's: no alias), made in one batch.
      const lines = Array.from({ length: n }, (_, i) => `link add name hb${i} type bridge`);
      await run('ip', ['-n', ns, '-batch', '-'], { timeoutMs: 600_000, input: lines.join('\n') + '\n' });
      const config = defaultConfig();
      Object.assign(config.network, { namespace: ns, backend: 'linuxbridge' });
      const d = new Dispatcher({ config, log: createLogger({ svc: 'bench', level: 'silent' }), methods, run });
      await d.call('network_ensure_bridge', ['warm', {}]); // first call: tool resolution, namespace check
      const brickNew: number[] = [];
      const brickSame: number[] = [];
      const peer: number[] = [];
      for (let i = 0; i < CALLS; i++) {
        brickNew.push(await timed(() => d.call('network_ensure_bridge', [`bn${i}`, {}])));
        brickSame.push(await timed(() => d.call('network_ensure_bridge', [`bn${i}`, {}])));
        peer.push(
          await timed(async () => {
            await run('ip', ['-n', ns, 'link', 'add', `pn${i}`, 'type', 'bridge'], { timeoutMs: 10_000 });
            await run('ip', ['-n', ns, 'link', 'set', `pn${i}`, 'up'], { timeoutMs: 10_000 });
          }),
        );
      }
      figures.push(
        {
          id: `network.linux.ensure_bridge_new.${n}_bridges.ms`,
          title: `network_ensure_bridge, a new bridge, ${n} bridges present`,
          unit: 'ms',
          better: 'lower',
          brick: { name: 'brick: one call', samples: brickNew },
          peer: { name: 'two ip commands', samples: peer },
          bound: GOALS.new(n),
          note: 'bound: the issue-19 goal (25 ms with 10 bridges, 50 ms with 1,000)',
        },
        {
          id: `network.linux.ensure_bridge_same.${n}_bridges.ms`,
          title: `network_ensure_bridge that changes nothing, ${n} bridges present`,
          unit: 'ms',
          better: 'lower',
          brick: { name: 'brick: one call', samples: brickSame },
          bound: GOALS.same(n),
          note: 'bound: the issue-19 goal (10 ms)',
        },
      );
    } finally {
      await run('ip', ['netns', 'del', ns], { timeoutMs: 120_000, allowFailure: true });
    }
  }
  writeFigures('network', figures, extra);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
