// Every xen_pv output must start under libxl: the corpus (test/golden/domain/corpus: CloudStack KVM
// dumps and libvirt test-data shapes), converted PV and {hvm: true}, and every golden output of a Xen
// domain, go through libvirt 9.0.0's own libxl driver code (test/fixtures/libxl.ts). What brick
// refuses must be an UNSUPPORTED fault naming the element; which documents are refused is fixed here,
// so a conversion that starts refusing more (or accepting what it should refuse) fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tweakDomainXml } from '../../src/agent-extension/domain/tweaks.js';
import { defaultConfig } from '../../src/config/load.js';
import { isBrickError } from '../../src/shared/errors.js';
import { libxlCheckAll } from '../fixtures/libxl.js';

const golden = join(import.meta.dirname, '../golden/domain');
const corpusDir = join(golden, 'corpus');
const corpus = readdirSync(corpusDir).filter((f) => f.endsWith('.xml')).sort();

/** Documents brick must refuse, with the element the fault must name (both modes). */
const REFUSED: Record<string, RegExp> = {
  'cs-luks.xml': /<encryption format='luks'>/,
  'cs-luks-old.xml': /<encryption format='luks'>/,
  'cs-qemu-cmdline.xml': /<qemu:commandline>/,
  'cs-vhostuser.xml': /<interface type='vhostuser'>/,
  'cs-direct-nic.xml': /<interface type='direct'>/,
  'cs-guestfwd.xml': /<channel> with <target type='guestfwd'>/,
};

const MODES = [
  { label: 'pv', tweaks: { xen_pv: true } },
  { label: 'hvm', tweaks: { xen_pv: { hvm: true } } },
] as const;

test('corpus: at least 20 domains; every xen_pv and {hvm: true} output is accepted by libxl, or refused by brick with UNSUPPORTED naming the element', async () => {
  assert.ok(corpus.length >= 20, `corpus has ${corpus.length} domains`);
  const outputs = new Map<string, string>();
  const problems: string[] = [];
  for (const f of corpus) {
    const xml = readFileSync(join(corpusDir, f), 'utf8');
    for (const m of MODES) {
      const key = `${f} ${m.label}`;
      try {
        const out = tweakDomainXml(xml, m.tweaks, defaultConfig());
        if (REFUSED[f]) problems.push(`${key}: brick should refuse it (${REFUSED[f]}) but returned XML`);
        outputs.set(key, out);
      } catch (e) {
        if (!isBrickError(e)) throw e;
        if (!REFUSED[f]) problems.push(`${key}: refused unexpectedly: ${e.fault} ${e.message}`);
        else if (e.fault !== 'UNSUPPORTED' || !REFUSED[f].test(e.message)) problems.push(`${key}: wrong fault: ${e.fault} ${e.message}`);
      }
    }
  }
  const verdicts = await libxlCheckAll(outputs);
  for (const [key, v] of verdicts) if (!v.ok) problems.push(`${key}: libxl refuses brick's output: ${v.why}`);
  assert.deepEqual(problems, []);
  assert.ok(outputs.size >= 2 * (corpus.length - Object.keys(REFUSED).length));
});

test('golden: every expected output of a Xen domain is accepted by libxl (kvm-raw-xen-pv included)', async () => {
  const files = readdirSync(join(golden, 'expected')).filter((f) => f.endsWith('.xml')).sort();
  const docs = new Map<string, string>();
  for (const f of files) {
    const xml = readFileSync(join(golden, 'expected', f), 'utf8');
    if (/<domain[^>]*\btype='xen'/.test(xml)) docs.set(f, xml);
  }
  assert.ok(docs.has('kvm-raw-xen-pv.xml') && docs.has('xen-pv.xml') && docs.has('xen-hvm.xml') && docs.has('xen-all.xml'), [...docs.keys()].join(' '));
  const verdicts = await libxlCheckAll(docs);
  const refused = [...verdicts].filter(([, v]) => !v.ok).map(([k, v]) => `${k}: ${v.why}`);
  assert.deepEqual(refused, []);
});

test('libxl oracle: it does refuse what a Xen host refuses (an e1000 NIC in a PV domain, a disabled balloon)', async () => {
  const base = readFileSync(join(golden, 'expected', 'xen-pv.xml'), 'utf8');
  const docs = new Map([
    ['e1000', base.replace("<model type='netfront'/>", "<model type='e1000'/>")],
    ['balloon-none', base.replace("<memballoon model='xen'/>", "<memballoon model='none'/>")],
    ['as-is', base],
  ]);
  assert.notEqual(docs.get('e1000'), base);
  assert.notEqual(docs.get('balloon-none'), base);
  const v = await libxlCheckAll(docs);
  assert.equal(v.get('as-is')!.ok, true, v.get('as-is')!.why);
  assert.match(v.get('e1000')!.why, /only model 'netfront' is supported/);
  assert.match(v.get('balloon-none')!.why, /balloon/i);
});

test("extnet on a Xen domain: a NIC with Xen's vif-bridge script moved to a network is accepted by libxl (the script goes)", async () => {
  const docs = new Map<string, string>();
  for (const f of ['cs-ovm3-migrated.xml', 'cs-ssvm.xml', 'cs-vrouter.xml']) {
    for (const m of MODES) {
      docs.set(`${f} ${m.label}`, tweakDomainXml(readFileSync(join(corpusDir, f), 'utf8'), { ...m.tweaks, extnet: { '*': 'xen-guest-200' } }, defaultConfig()));
    }
  }
  const v = await libxlCheckAll(docs);
  assert.deepEqual([...v].filter(([, x]) => !x.ok).map(([k, x]) => `${k}: ${x.why}`), []);
});
