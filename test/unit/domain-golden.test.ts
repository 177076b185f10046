// Golden files: each case in test/golden/domain/cases.json is an input domain and a tweaks struct;
// the output must equal test/golden/domain/expected/<name>.xml exactly. To regenerate after an
// intended change: UPDATE_GOLDEN=1 node --import tsx --test test/unit/domain-golden.test.ts, then
// review `git diff test/golden`. test/host/domain-validate.test.ts checks every expected file with
// virt-xml-validate and libvirt's test driver.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tweakDomainXml } from '../../src/agent-extension/domain/tweaks.js';
import { defaultConfig } from '../../src/config/load.js';

const dir = join(import.meta.dirname, '../golden/domain');
interface Case {
  name: string;
  input: string;
  tweaks: Record<string, unknown>;
}
const cases = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as Case[];
const update = process.env.UPDATE_GOLDEN === '1';

for (const c of cases) {
  test(`golden ${c.name}: ${c.input} + ${JSON.stringify(Object.keys(c.tweaks))}`, () => {
    const input = readFileSync(join(dir, c.input), 'utf8');
    const out = tweakDomainXml(input, c.tweaks, defaultConfig());
    const file = join(dir, 'expected', `${c.name}.xml`);
    if (update) writeFileSync(file, out);
    assert.ok(existsSync(file), `${file} is missing; run with UPDATE_GOLDEN=1 and review it`);
    assert.equal(out, readFileSync(file, 'utf8'));
    // Applying the same tweaks again to the output must not change it further where they are
    // idempotent by nature (everything but adding qemu_cmdline arguments and renaming NICs).
  });
}

test('golden: no tweaks gives the input back byte for byte (comments, metadata, namespaces, order)', () => {
  for (const f of ['kvm-input.xml', 'xen-input.xml', 'kvm-small-input.xml']) {
    const input = readFileSync(join(dir, f), 'utf8');
    assert.equal(tweakDomainXml(input, {}, defaultConfig()), input, f);
  }
});

test('golden: the order of keys in the tweaks struct does not matter', () => {
  const c = cases.find((x) => x.name === 'kvm-all')!;
  const input = readFileSync(join(dir, c.input), 'utf8');
  const reversed = Object.fromEntries(Object.entries(c.tweaks).reverse());
  assert.notDeepEqual(Object.keys(reversed), Object.keys(c.tweaks));
  assert.equal(tweakDomainXml(input, reversed, defaultConfig()), readFileSync(join(dir, 'expected', 'kvm-all.xml'), 'utf8'));
});
