// Against the real libvirt tools: every golden output passes virt-xml-validate and `virsh define
// --validate` on the test driver, and domain_define defines through test:///default end to end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { run } from '../../src/shared/run.js';
import { defaultConfig } from '../../src/config/load.js';
import { methods } from '../../src/agent-extension/domain/methods.js';
import { defineDomain, virshBatchArgs } from '../../src/agent-extension/domain/define.js';
import type { CallContext } from '../../src/rpc/catalogue.js';
import { BrickError } from '../../src/shared/errors.js';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { callContext } from '../fixtures/call-context.js';

const CI = process.env.CI === 'true';
function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const missing = ['virsh', 'virt-xml-validate'].filter((c) => !have(c));
if (missing.length && CI) throw new Error(`${missing.join(', ')} missing (scripts/install-test-deps.sh installs libvirt-clients)`);
const skip = missing.length ? `${missing.join(', ')} not installed` : false;

const golden = join(import.meta.dirname, '../golden/domain');
const expected = readdirSync(join(golden, 'expected')).filter((f) => f.endsWith('.xml')).sort();

function ctx(): CallContext {
  const config = defaultConfig();
  config.domain.libvirt_uri = 'test:///default';
  return callContext(config);
}
const handler = (name: string) => methods.find((m) => m.name === name)!.handler;

test('every golden output passes virt-xml-validate and virsh define --validate on the test driver', { skip }, async () => {
  assert.ok(expected.length >= 15, `golden outputs found: ${expected.length}`);
  for (const f of expected) {
    const file = join(golden, 'expected', f);
    const v = await run('virt-xml-validate', [file, 'domain'], { timeoutMs: 30_000, allowFailure: true });
    assert.equal(v.code, 0, `${f}: virt-xml-validate: ${v.stderr}${v.stdout}`);
    const d = await defineDomain(readFileSync(file, 'utf8'), { uri: 'test:///default', run, timeoutMs: 30_000 });
    assert.ok(d.uuid, `${f}: defined with a uuid`);
  }
});

test('domain_define: tweaks applied, defined through test:///default, libvirt\'s XML returned', { skip }, async () => {
  const xml = readFileSync(join(golden, 'kvm-input.xml'), 'utf8');
  const r = (await handler('domain_define')(
    [xml, { macspoof: true, dpdk: { '02:00:4c:5e:00:01': { socket: '/var/run/openvswitch/csdpdk-3', mode: 'client' } } }],
    ctx(),
  )) as { name: string; uuid: string; xml: string };
  assert.equal(r.name, 'i-2-10-VM');
  assert.equal(r.uuid, '4b1c7a2e-9d3f-4c55-8a61-2f0e7d9b3c10');
  assert.match(r.xml, /<interface type='vhostuser'>/);
  assert.match(r.xml, /<source type='unix' path='\/var\/run\/openvswitch\/csdpdk-3' mode='client'\/>/);
  assert.match(r.xml, /memAccess='shared'/);
  assert.doesNotMatch(r.xml, /no-mac-spoofing/);
  // the metadata made it through libvirt (the test driver, unlike qemu:///system, drops <qemu:commandline>)
  assert.match(r.xml, /<cloudstack:display_name>web-frontend-01<\/cloudstack:display_name>/);
});

test('domain_define: a Xen domain after xen_pv is accepted by libvirt', { skip }, async () => {
  const xml = readFileSync(join(golden, 'xen-input.xml'), 'utf8');
  const r = (await handler('domain_define')([xml, { xen_pv: true }], ctx())) as { name: string; uuid: string; xml: string };
  assert.equal(r.name, 'i-3-42-VM');
  assert.match(r.xml, /<domain type='xen'>/);
  assert.match(r.xml, /bus='xen'/);
  assert.doesNotMatch(r.xml, /virtio/);
});

test('domain_define: a name full of virsh parser characters stays one argument', { skip }, async () => {
  const name = `x'y; destroy z "q" \\ w`;
  const esc = name.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&apos;');
  const xml = `<domain type='test'><name>${esc}</name><memory>65536</memory><os><type>hvm</type></os></domain>`;
  const r = (await handler('domain_define')([xml, {}], ctx())) as { name: string; uuid: string };
  assert.equal(r.name, name);
  assert.match(r.uuid, /^[0-9a-f-]{36}$/);
});

test('domain_define: libvirt refusing the XML is COMMAND_FAILED with libvirt\'s reason; bad XML never reaches virsh', { skip }, async () => {
  const bad = "<domain type='kvm'><name>v</name><memory>abc</memory><os><type>hvm</type></os></domain>";
  await assert.rejects(handler('domain_define')([bad, {}], ctx()), (e: BrickError) => {
    assert.equal(e.fault, 'COMMAND_FAILED');
    assert.match(e.message, /libvirt \(test:\/\/\/default\) did not define domain "v"/);
    return true;
  });
  await assert.rejects(handler('domain_define')(['<domain', {}], ctx()), (e: BrickError) => e.fault === 'BAD_XML');
});

test('domain_define: libvirt refusing a domain named "test" (the test driver\'s own) is COMMAND_FAILED, not the stock domain\'s XML', { skip }, async () => {
  // virsh exits with the status of the last command of its string: the dumpxml after the refused
  // define found the driver's own "test" domain and virsh exited 0.
  const bad = "<domain type='test'><name>test</name><memory>abc</memory><os><type>hvm</type></os></domain>";
  await assert.rejects(handler('domain_define')([bad, {}], ctx()), (e: BrickError) => {
    assert.equal(e.fault, 'COMMAND_FAILED');
    assert.match(e.message, /did not define domain "test"/);
    return true;
  });
});

test('virsh batch mode really keeps a quoted ";" inside the argument (the test driver is per process)', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'brick-virsh-'));
  try {
    const file = join(dir, 'd.xml');
    writeFileSync(file, "<domain type='test'><name>a;b</name><memory>65536</memory><os><type>hvm</type></os></domain>");
    const r = await run('virsh', virshBatchArgs('test:///default', file, 'a;b'), { timeoutMs: 30_000 });
    assert.match(r.stdout, /<name>a;b<\/name>/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
