// Domain XML tweaks per second on CloudStack's realistic ~8 KB KVM domain (each tweak alone and all
// combined), and domain_define per second on libvirt's test driver (one virsh process per define).
// Figures are printed, never asserted.
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { tweakDomainXml } from '../src/agent-extension/domain/tweaks.js';
import { parseDomainXml, serializeXml } from '../src/agent-extension/domain/xml.js';
import { defineDomain } from '../src/agent-extension/domain/define.js';
import { defaultConfig } from '../src/config/load.js';
import { run } from '../src/shared/run.js';
import { writeFigures, stats, type Figure } from './lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const golden = join(here, '../test/golden/domain');
const cases = JSON.parse(readFileSync(join(golden, 'cases.json'), 'utf8')) as Array<{ name: string; tweaks: Record<string, unknown> }>;
const KVM = readFileSync(join(golden, 'kvm-input.xml'), 'utf8');
const KVM_RAW = KVM.replace(/type='qcow2'/g, "type='raw'"); // xen_pv refuses qcow2
const config = defaultConfig();
const tw = (name: string) => cases.find((c) => c.name === name)!.tweaks;

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 5);
const SAMPLE_MS = Number(process.env.BENCH_SAMPLE_MS ?? 400);

function perSecond(fn: () => void): number[] {
  for (let i = 0; i < 200; i++) fn(); // warm up
  const out: number[] = [];
  for (let s = 0; s < SAMPLES; s++) {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < SAMPLE_MS) {
      fn();
      n++;
      t = performance.now();
    }
    out.push((n * 1000) / (t - t0));
  }
  return out;
}

const variants: Array<[string, string, Record<string, unknown>]> = [
  ['parse_serialize', KVM, {}],
  ['xen_pv', KVM_RAW, { xen_pv: true }],
  ['extnet', KVM, tw('extnet-one')],
  ['macspoof', KVM, { macspoof: true }],
  ['extraconfig', KVM, tw('extraconfig-add')],
  ['dpdk', KVM, tw('dpdk-one')],
  ['qemu_cmdline', KVM, tw('qemu-cmdline-append')],
  ['all_kvm', KVM, tw('kvm-all')],
  ['all_xen', KVM_RAW, { xen_pv: true, extnet: { '*': 'xen-guest' }, macspoof: true, extraconfig: (tw('xen-all') as { extraconfig: string }).extraconfig }],
];

const figures: Figure[] = [];
for (const [name, xml, tweaks] of variants) {
  const samples =
    name === 'parse_serialize' ? perSecond(() => serializeXml(parseDomainXml(xml))) : perSecond(() => tweakDomainXml(xml, tweaks, config));
  figures.push({
    id: `domain.tweak.${name}.per_s`,
    title: name === 'parse_serialize' ? `domain XML parse+serialize only (${KVM.length} B)` : `domain_tweak ${name} on the ${KVM.length} B CloudStack KVM domain`,
    unit: 'tweaks/s',
    better: 'higher',
    brick: { name: 'brick', samples },
  });
}

async function defines(): Promise<number[] | undefined> {
  try {
    await run('virsh', ['--version'], { timeoutMs: 5000 });
  } catch {
    process.stdout.write('virsh not installed: domain_define figure skipped\n');
    return undefined;
  }
  const xml = tweakDomainXml(KVM, tw('kvm-all'), config);
  const out: number[] = [];
  for (let s = 0; s < 3; s++) {
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 1500) {
      await defineDomain(xml, { uri: 'test:///default', run, timeoutMs: 30_000 });
      n++;
    }
    out.push((n * 1000) / (performance.now() - t0));
  }
  return out;
}

const d = await defines();
if (d) {
  figures.push({
    id: 'domain.define.test_driver.per_s',
    title: 'domain_define (virsh define --validate + dumpxml) on test:///default, 8 KB domain after kvm-all tweaks',
    unit: 'defines/s',
    better: 'higher',
    brick: { name: 'brick', samples: d },
    note: 'dominated by starting one virsh process per define',
  });
}

writeFigures('domain', figures, { input_bytes: KVM.length });
process.stdout.write(
  JSON.stringify(Object.fromEntries(figures.map((f) => [f.id, Math.round(stats(f.brick.samples).median)]))) + '\n',
);
