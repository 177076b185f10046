// Bench (figures printed, nothing asserted): creating many bridges through brick's planner in ONE
// `ip -batch` vs one `ip` process per command, in fresh namespaces in the same run; and OVS fake
// VLAN bridges in ONE ovs-vsctl transaction vs one ovs-vsctl per bridge.
//   node --import tsx bench/network.ts [count] [linux samples]   (env OVS_SAMPLES=3, OVS_PEER_SAMPLES=3)
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { run } from '../src/shared/run.js';
import { defaultConfig } from '../src/config/load.js';
import { netHost } from '../src/network/host/netns.js';
import { parseLinks, type LinuxState } from '../src/network/host/link-state.js';
import { planLinuxBridge } from '../src/network/bridge/bridge.js';
import { applyOvs, applySteps, type OvsCommand, type Step } from '../src/network/host/plan.js';
import { readOvs } from '../src/network/host/ovs.js';
import { planOvsVlanBridge } from '../src/network/bridge/vlan-bridge.js';
import { startOvs } from '../test/fixtures/ovs.js';
import { writeFigures, type Figure } from './lib.js';

const N = Number(process.argv[2] ?? 500);
const LINUX_SAMPLES = Number(process.argv[3] ?? 3);
const OVS_SAMPLES = Number(process.env.OVS_SAMPLES ?? 3);
const OVS_PEER_SAMPLES = Number(process.env.OVS_PEER_SAMPLES ?? 3);
const ns = () => `brick-bench-${randomBytes(3).toString('hex')}`;

function hostFor(namespace: string, ovsRundir = '', backend: 'linuxbridge' | 'openvswitch' = 'linuxbridge') {
  const c = defaultConfig();
  Object.assign(c.network, { namespace, ovs_rundir: ovsRundir, backend, command_timeout_s: 600 });
  return netHost(c, run);
}

/** The steps for N veth pairs and N bridges, each with its veth as uplink, from brick's planner. */
function bridgeSteps(n: number): Step[] {
  const veths: Step[] = [];
  const links: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    veths.push({ do: `link add bv${i} type veth peer name bvp${i}`, undo: `link del bv${i}`, what: `veth bv${i}` });
    links.push({ ifindex: 1000 + i, ifname: `bv${i}`, flags: ['BROADCAST'], mtu: 1500, address: '02:00:00:00:00:01' });
  }
  const state: LinuxState = { links: parseLinks(JSON.stringify(links)), addrs: [], routes: [] };
  return [...veths, ...Array.from({ length: n }, (_, i) => planLinuxBridge(state, { name: `bb${i}`, uplink: `bv${i}` }).steps).flat()];
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await fn();
  return [performance.now() - t0, v];
}

async function countBridges(namespace: string): Promise<number> {
  const r = await run('ip', ['-n', namespace, '-json', 'link', 'show', 'type', 'bridge'], { timeoutMs: 60_000 });
  return (JSON.parse(r.stdout || '[]') as unknown[]).length;
}

async function main(): Promise<void> {
  const figures: Figure[] = [];
  const extra: Record<string, number> = { count: N };
  const namespaces: string[] = [];

  // OVS first: creating a namespace waits while the kernel frees the big ones made below.
  // Each sample gets a fresh userspace OVS (same database size for brick and the peer: each
  // ovs-vsctl reads the whole database, so the peer took ~116 s when it ran beside brick's 500
  // bridges and ~22 s on a fresh one). OVS_PEER_SAMPLES (3) can be lowered if the budget is tight.
  const txMs: number[] = [];
  const perMs: number[] = [];
  const ovsSample = async (peer: boolean) => {
    const ovs = await startOvs();
    try {
      await ovs.vsctl(['add-br', 'pa', '--', 'set', 'Bridge', 'pa', 'datapath_type=netdev']);
      const host = hostFor(ovs.netns, ovs.rundir, 'openvswitch');
      if (peer) {
        const [ms] = await timed(async () => {
          for (let v = 1; v <= N; v++) await ovs.vsctl(['add-br', `pa.${v}`, 'pa', String(v), '--', 'set', 'Port', `pa.${v}`, 'external_ids:brick-owner=vlan-bridge'], 60_000);
        });
        perMs.push(ms);
      } else {
        const state = await readOvs(host);
        const cmds: OvsCommand[] = [];
        for (let v = 1; v <= N; v++) cmds.push(...planOvsVlanBridge(state, { parent: 'pa', vlan: v, pattern: '{bridge}.{vlan}' }).cmds);
        txMs.push((await timed(() => applyOvs(host, cmds)))[0]);
      }
      const after = await readOvs(host);
      extra[peer ? 'ovs_fake_bridges_made_per_command' : 'ovs_fake_bridges_made_transaction'] = [...after.ports.values()].filter((p) => p.fakeBridge).length;
    } finally {
      await ovs.stop();
    }
  };
  for (let i = 0; i < Math.max(OVS_SAMPLES, OVS_PEER_SAMPLES); i++) {
    if (i < OVS_SAMPLES) await ovsSample(false);
    if (i < OVS_PEER_SAMPLES) await ovsSample(true);
  }
  figures.push({
    id: `network.ovs.fake_vlan_bridges_${N}.ms`,
    title: `${N} OVS fake VLAN bridges (userspace OVS, netdev)`,
    unit: 'ms',
    better: 'lower',
    brick: { name: 'brick: one ovs-vsctl transaction', samples: txMs },
    peer: { name: 'one ovs-vsctl per bridge', samples: perMs },
    note:
      OVS_PEER_SAMPLES < 3
        ? `the peer ran ${OVS_PEER_SAMPLES} time(s) only (OVS_PEER_SAMPLES), to keep npm run bench within 15 minutes`
        : 'a fresh userspace OVS (empty database) for every sample of either side',
  });

  const batch: number[] = [];
  const perCmd: number[] = [];
  const steps = bridgeSteps(N);
  extra.linux_ip_commands = steps.length;
  try {
    for (let i = 0; i < LINUX_SAMPLES; i++) {
      const nsA = ns();
      const nsB = ns();
      namespaces.push(nsA, nsB);
      await run('ip', ['netns', 'add', nsA], { timeoutMs: 120_000 });
      await run('ip', ['netns', 'add', nsB], { timeoutMs: 120_000 });
      batch.push((await timed(() => applySteps(hostFor(nsA), steps)))[0]);
      perCmd.push(
        (
          await timed(async () => {
            for (const s of steps) await run('ip', ['-n', nsB, ...s.do.split(' ')], { timeoutMs: 10_000 });
          })
        )[0],
      );
      extra.linux_bridges_made_batch = await countBridges(nsA);
      extra.linux_bridges_made_per_command = await countBridges(nsB);
    }
    figures.unshift({
      id: `network.linux.bridges_with_veth_${N}.ms`,
      title: `${N} Linux bridges each with a veth port (${steps.length} ip commands, fresh namespace)`,
      unit: 'ms',
      better: 'lower',
      brick: { name: 'brick: one ip -batch', samples: batch },
      peer: { name: 'one ip process per command', samples: perCmd },
    });
  } finally {
    for (const n of namespaces) await run('ip', ['netns', 'del', n], { timeoutMs: 120_000, allowFailure: true });
  }
  console.log(JSON.stringify({ bench: 'network', ...extra, figures: figures.map((f) => ({ id: f.id, brick_ms: f.brick.samples, peer_ms: f.peer?.samples })) }));
  writeFigures('network', figures, extra);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
