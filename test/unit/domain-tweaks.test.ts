// The tweaks' refusals and edge cases (the happy paths are golden files in domain-golden.test.ts).
// Every bad input is a fault with a stable code naming what was wrong, and nothing is returned half-done.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tweakDomainXml, parseTweaks, TWEAK_ORDER } from '../../src/agent-extension/domain/tweaks.js';
import { parseExtraconfig } from '../../src/agent-extension/domain/extraconfig.js';
import { parseDomainXml, serializeXml } from '../../src/agent-extension/domain/xml.js';
import { virshQuote, virshBatchArgs, defaultLibvirtUri, defineDomain } from '../../src/agent-extension/domain/define.js';
import { methods } from '../../src/agent-extension/domain/methods.js';
import { defaultConfig } from '../../src/config/load.js';
import { recordingRunner } from '../../src/shared/run.js';
import { BrickError } from '../../src/shared/errors.js';
import { throwsFault } from '../fixtures/faults.js';

const golden = join(import.meta.dirname, '../golden/domain');
const KVM = readFileSync(join(golden, 'kvm-input.xml'), 'utf8');
const XEN = readFileSync(join(golden, 'xen-input.xml'), 'utf8');
const SMALL = readFileSync(join(golden, 'kvm-small-input.xml'), 'utf8');
const cfg = defaultConfig();

const fault = throwsFault;

test('BAD_XML: not well-formed, DOCTYPE/entities, wrong root, empty', () => {
  fault(() => tweakDomainXml('<domain><name>x</domain>', {}, cfg), 'BAD_XML', /not well-formed/);
  fault(() => tweakDomainXml('<!DOCTYPE domain [<!ENTITY a "b">]><domain>&a;</domain>', {}, cfg), 'BAD_XML', /DOCTYPE/);
  fault(() => tweakDomainXml('<!DOCTYPE domain><domain/>', {}, cfg), 'BAD_XML', /DOCTYPE/);
  fault(() => tweakDomainXml('<domain>&undefined;</domain>', {}, cfg), 'BAD_XML', /entity/);
  fault(() => tweakDomainXml('<network><name>x</name></network>', {}, cfg), 'BAD_XML', /<network>/);
  fault(() => tweakDomainXml('<x:domain xmlns:x="urn:x"/>', {}, cfg), 'BAD_XML', /root element/);
  fault(() => tweakDomainXml('<domain/><domain/>', {}, cfg), 'BAD_XML', /not well-formed/);
  fault(() => tweakDomainXml('   ', {}, cfg), 'BAD_XML', /empty/);
});

test('BAD_XML: characters XML 1.0 has no place for, raw or as references, are refused, not passed on', () => {
  const doc = (inner: string, attrs = '') => `<domain type='kvm'${attrs}><name>x</name><memory>1024</memory>${inner}</domain>`;
  // Before: accepted and written back raw, a reply that is not XML (libvirt: "PCDATA invalid Char value 1").
  fault(() => tweakDomainXml(doc('<description>a&#0;b</description>'), {}, cfg), 'BAD_XML', /U\+0000 in the content of <description>/);
  fault(() => tweakDomainXml(doc('<description>a&#1;b</description>'), {}, cfg), 'BAD_XML', /U\+0001/);
  fault(() => tweakDomainXml(doc('<description>a\u0001b</description>'), {}, cfg), 'BAD_XML', /U\+0001/);
  fault(() => tweakDomainXml(doc('<description>a&#xFFFE;b</description>'), {}, cfg), 'BAD_XML', /U\+FFFE/);
  fault(() => tweakDomainXml(doc('<description>a&#xD800;b</description>'), {}, cfg), 'BAD_XML', /U\+D800/);
  fault(() => tweakDomainXml(doc('', " id='&#2;'"), {}, cfg), 'BAD_XML', /U\+0002 in attribute id of <domain>/);
  // What XML allows still passes: tab, non-BMP, and a CR reference stays a reference (raw, libvirt would read LF).
  const ok = doc("<description>a\tb \u{1F600} c&#13;d</description>");
  assert.equal(tweakDomainXml(ok, {}, cfg), ok + '\n');
});

test('BAD_XML: elements nested deeper than libvirt (libxml2) accepts; before, 5000 levels overflowed the stack (INTERNAL)', () => {
  // virsh define takes 256 levels below <domain> and refuses 257 ("Excessive depth in document: 256").
  const nest = (n: number) => `<domain type='kvm'><name>x</name><memory>1024</memory><metadata><m:a xmlns:m='urn:x'>${'<m:a>'.repeat(n)}${'</m:a>'.repeat(n)}</m:a></metadata></domain>`;
  assert.equal(tweakDomainXml(nest(254), {}, cfg), nest(254).replace(/<m:a><\/m:a>/, '<m:a/>') + '\n');
  fault(() => tweakDomainXml(nest(255), {}, cfg), 'BAD_XML', /more than 256 levels deep/);
  fault(() => tweakDomainXml(nest(5000), {}, cfg), 'BAD_XML', /more than 256 levels deep/);
});

test('INVALID_PARAMS names the unknown tweak key or the bad value', () => {
  fault(() => parseTweaks({ xen_pv: true, xenpv: true }, cfg), 'INVALID_PARAMS', /unknown tweak "xenpv"/);
  fault(() => parseTweaks('xen_pv', cfg), 'INVALID_PARAMS', /tweaks: must be a struct/);
  fault(() => parseTweaks({ xen_pv: 'yes' }, cfg), 'INVALID_PARAMS', /tweaks\.xen_pv/);
  fault(() => parseTweaks({ xen_pv: { hvm: true, pv: 1 } }, cfg), 'INVALID_PARAMS', /unknown option "pv"/);
  fault(() => parseTweaks({ extnet: { 'zz:00:00:00:00:00': 'n' } }, cfg), 'INVALID_PARAMS', /not a MAC/);
  fault(() => parseTweaks({ extnet: { '02:00:00:00:00:01': 'bad/name' } }, cfg), 'INVALID_PARAMS', /network for 02:00:00:00:00:01/);
  fault(() => parseTweaks({ extnet: { '02:00:00:00:00:0A': 'a', '02:00:00:00:00:0a': 'b' } }, cfg), 'INVALID_PARAMS', /given twice/);
  fault(() => parseTweaks({ macspoof: [] }, cfg), 'INVALID_PARAMS', /tweaks\.macspoof/);
  fault(() => parseTweaks({ dpdk: { '02:00:00:00:00:01': { socket: 'relative', mode: 'client' } } }, cfg), 'INVALID_PARAMS', /socket must be an absolute path/);
  fault(() => parseTweaks({ dpdk: { '02:00:00:00:00:01': { socket: '/run/../etc/x', mode: 'client' } } }, cfg), 'INVALID_PARAMS', /without \.\./);
  fault(() => parseTweaks({ dpdk: { '02:00:00:00:00:01': { socket: '/run/x', mode: 'dpdkvhostuser' } } }, cfg), 'INVALID_PARAMS', /mode must be "server" or "client"/);
  fault(() => parseTweaks({ qemu_cmdline: ['-a', 'b\nc'] }, cfg), 'INVALID_PARAMS', /qemu_cmdline: \[1\] contains a control character/);
  fault(() => parseTweaks({ qemu_cmdline: '-a' }, cfg), 'INVALID_PARAMS', /array of strings/);
  fault(() => parseTweaks({ custom: { a: 'b' } }, cfg), 'INVALID_PARAMS', /add hooks: true/);
  fault(() => parseTweaks({ hooks: true, custom: { LD_PRELOAD: '/tmp/x.so' } }, cfg), 'INVALID_PARAMS', /LD_PRELOAD" is reserved/);
  fault(() => parseTweaks({ hooks: true, custom: { PATH: '/tmp' } }, cfg), 'INVALID_PARAMS', /reserved/);
  fault(() => parseTweaks({ hooks: true, custom: { 'a-b': 'x' } }, cfg), 'INVALID_PARAMS', /property name "a-b"/);
  fault(() => parseTweaks({ hooks: true, custom: { a: 1 } }, cfg), 'INVALID_PARAMS', /"a" must be a string/);
  assert.deepEqual(parseTweaks(null, cfg), { custom: {} });
  assert.deepEqual(parseTweaks({ xen_pv: false, macspoof: false, extraconfig: '' }, cfg), { custom: {} });
});

test('a MAC that names no NIC is NOT_FOUND and lists the NICs there are', () => {
  fault(() => tweakDomainXml(KVM, { macspoof: ['02:00:00:00:99:99'] }, cfg), 'NOT_FOUND', /no <interface> with MAC 02:00:00:00:99:99 .*02:00:4c:5e:00:01/);
  fault(() => tweakDomainXml(KVM, { extnet: { '02:00:00:00:99:99': 'n' } }, cfg), 'NOT_FOUND', /extnet/);
  fault(() => tweakDomainXml(KVM, { dpdk: { '02:00:00:00:99:99': { socket: '/run/s', mode: 'client' } } }, cfg), 'NOT_FOUND', /dpdk/);
});

test('xen_pv refuses qcow2 (libxl cannot open it) naming the disk; dpdk and qemu_cmdline refuse Xen domains', () => {
  fault(() => tweakDomainXml(KVM, { xen_pv: true }, cfg), 'UNSUPPORTED', /6a5c3b1e-2d4f-4e8a-9b7c-1d2e3f4a5b6c.*qcow2.*raw/);
  fault(() => tweakDomainXml(XEN, { qemu_cmdline: ['-s'] }, cfg), 'UNSUPPORTED', /Xen domain.*KVM only/);
  fault(() => tweakDomainXml(SMALL, { xen_pv: true, qemu_cmdline: ['-s'] }, cfg), 'UNSUPPORTED', /qemu_cmdline/);
  fault(() => tweakDomainXml(XEN, { dpdk: { '*': { socket: '/run/s', mode: 'client' } } }, cfg), 'UNSUPPORTED', /vhost-user/);
});

test('xen_pv: renamed disks never collide; a second run changes nothing', () => {
  const xml = SMALL.replace(
    '</devices>',
    "  <disk type='file' device='disk'><source file='/x'/><target dev='xvda' bus='xen'/></disk>\n  </devices>",
  );
  const out = tweakDomainXml(xml, { xen_pv: true }, cfg);
  const targets = [...out.matchAll(/<target dev='([^']+)' bus='xen'\/>/g)].map((m) => m[1]);
  assert.deepEqual(targets.sort(), ['xvda', 'xvdb']);
  const once = tweakDomainXml(XEN, { xen_pv: true }, cfg);
  assert.equal(tweakDomainXml(once, { xen_pv: true }, cfg), once);
});

test('extnet refuses a NIC that is not a bridge or network NIC', () => {
  const once = tweakDomainXml(SMALL, { dpdk: { '0e:00:a9:fe:01:07': { socket: '/run/s', mode: 'client' } } }, cfg);
  fault(() => tweakDomainXml(once, { extnet: { '0e:00:a9:fe:01:07': 'n' } }, cfg), 'CONFLICT', /type='vhostuser'/);
});

test('extraconfig: titled and numbered sections, allow-list on every top-level element, never free text', () => {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  const s = parseExtraconfig(enc('dpdk-hugepages:\n<memoryBacking><hugepages/></memoryBacking>\n\n<cpu/>\n\n\n<numatune/>'), cfg.domain.extraconfig_allow);
  assert.deepEqual(s.map((x) => x.key), ['dpdk-hugepages', '2', '3']);
  // CloudStack skips its allow-list whenever the text has a colon; brick does not.
  fault(() => parseExtraconfig(enc("<devices><disk type='file'><source file='/etc/shadow'/></disk></devices>"), ['cpu']), 'INVALID_PARAMS', /<devices> is not in domain\.extraconfig_allow/);
  fault(() => parseExtraconfig(enc('t:\n<cpu/>\n<on_crash>x</on_crash>'), ['cpu']), 'INVALID_PARAMS', /section "t": <on_crash>/);
  fault(() => parseExtraconfig(enc('<cpu/> and some text'), ['cpu']), 'INVALID_PARAMS', /text outside an element/);
  fault(() => parseExtraconfig(enc('<cpu>'), ['cpu']), 'INVALID_PARAMS', /section "1" is not well-formed/);
  fault(() => parseExtraconfig(enc('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><cpu>&e;</cpu>'), ['cpu']), 'INVALID_PARAMS', /DOCTYPE/);
  fault(() => parseExtraconfig('%zz', ['cpu']), 'INVALID_PARAMS', /URL encoding/);
  // dpdk-interface-TAG sections are for vhost-user NICs, with their own allow-list (tweaks in domain-dpdk-interface.test.ts).
  fault(() => parseExtraconfig(enc('dpdk-interface-1:\n<memoryBacking/>'), ['memoryBacking']), 'INVALID_PARAMS', /section "dpdk-interface-1": <memoryBacking> is not in domain\.dpdk_interface_allow/);
  fault(() => parseExtraconfig(enc('title:\n'), ['cpu']), 'INVALID_PARAMS', /empty/);
  // A bad extraconfig fails the whole call: the other tweaks are not returned half-applied.
  fault(() => tweakDomainXml(KVM, { macspoof: true, extraconfig: enc('<devices/>') }, cfg), 'INVALID_PARAMS', /devices/);
});

test('extraconfig: an allowed name in a namespace is not that element (libvirt ignores it, or refuses it under --validate)', () => {
  // <cpu xmlns="urn:x"> is no <cpu> to libvirt: without --validate libvirt drops it, so the merge
  // removed the domain's own <cpu> and the VM lost its CPU mode silently.
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  fault(() => parseExtraconfig(enc("<cpu xmlns='urn:x'><model>a</model></cpu>"), ['cpu']), 'INVALID_PARAMS', /section "1": <cpu> is in namespace urn:x/);
  fault(() => tweakDomainXml(KVM, { extraconfig: enc("<cpu xmlns='http://libvirt.org/schemas/domain/qemu/1.0'/>") }, cfg), 'INVALID_PARAMS', /<cpu> is in namespace/);
  fault(() => parseExtraconfig(enc("dpdk-interface-a:\n<mtu xmlns='urn:x' size='9000'/>"), ['cpu'], ['mtu']), 'INVALID_PARAMS', /section "dpdk-interface-a": <mtu> is in namespace urn:x/);
  // No namespace (xmlns="" says so explicitly) is the element itself.
  assert.equal(parseExtraconfig(enc("<cpu xmlns=''/>"), ['cpu'])[0].elements[0].tagName, 'cpu');
});

test('qemu_cmdline: arguments are attribute values, escaped, never parsed', () => {
  const out = tweakDomainXml(SMALL, { qemu_cmdline: ["-fw_cfg", "name=opt/x,string=<a b='c'>&amp;"] }, cfg);
  assert.match(out, /<qemu:arg value='name=opt\/x,string=&lt;a b=&apos;c&apos;>&amp;amp;'\/>/);
  const back = parseDomainXml(out);
  const args = Array.from(back.getElementsByTagNameNS('http://libvirt.org/schemas/domain/qemu/1.0', 'arg')).map((a) => a.getAttribute('value'));
  assert.deepEqual(args, ['-fw_cfg', "name=opt/x,string=<a b='c'>&amp;"]);
  // A document binding "qemu" to something else is a conflict, not a silent rebind.
  fault(() => tweakDomainXml("<domain type='kvm' xmlns:qemu='urn:other'><name>x</name></domain>", { qemu_cmdline: ['-s'] }, cfg), 'CONFLICT', /urn:other/);
});

test('serializer: libvirt quoting, escapes, namespaces, comments and the declaration survive a round trip', () => {
  const src = `<?xml version="1.0"?>\n<!-- a -->\n<domain type='kvm'>\n  <name>a &amp; b &lt; c</name>\n  <description>it&apos;s "x"</description>\n  <metadata><m:x xmlns:m='urn:m' m:a='1'>t</m:x></metadata>\n  <![CDATA[<raw>]]>\n</domain>\n`;
  const out = serializeXml(parseDomainXml(src));
  assert.equal(out, src.replace("it&apos;s", "it's").replace(`"x"`, `"x"`).replace('a &amp; b &lt; c', 'a &amp; b &lt; c'));
});

test('virsh command string: the domain name cannot break out of its argument', () => {
  assert.equal(virshQuote("a'b; c"), `'a'\\''b; c'`);
  const args = virshBatchArgs('test:///default', '/tmp/d/domain.xml', "x'; destroy y ; '");
  assert.equal(args.length, 4);
  assert.equal(args[3], `define --validate --file '/tmp/d/domain.xml' ; dumpxml --domain 'x'\\''; destroy y ; '\\'''`);
  assert.equal(defaultLibvirtUri('/nonexistent/proc/xen'), 'qemu:///system');
  assert.equal(defaultLibvirtUri('/'), 'xen:///system');
});

test('domain_define on a real libvirt URI runs define then dumpxml as argv arrays, never a command string', async () => {
  const xmlOut = "<domain type='kvm'>\n  <name>i-2-10-VM</name>\n  <uuid>4b1c7a2e-9d3f-4c55-8a61-2f0e7d9b3c10</uuid>\n</domain>\n";
  const run = recordingRunner((c) => (c.args.includes('dumpxml') ? { stdout: xmlOut } : {}));
  const d = await defineDomain(KVM, { uri: 'qemu:///system', run, timeoutMs: 5000 });
  assert.deepEqual(d, { name: 'i-2-10-VM', uuid: '4b1c7a2e-9d3f-4c55-8a61-2f0e7d9b3c10', xml: xmlOut });
  assert.equal(run.calls.length, 2);
  assert.deepEqual(run.calls[0].args.slice(0, 6), ['-q', '-c', 'qemu:///system', 'define', '--validate', '--file']);
  assert.deepEqual(run.calls[1].args, ['-q', '-c', 'qemu:///system', 'dumpxml', '--domain', 'i-2-10-VM']);
  const refused = recordingRunner(() => ({ code: 1, stderr: 'error: unsupported configuration: bad' }));
  await assert.rejects(defineDomain(KVM, { uri: 'qemu:///system', run: refused, timeoutMs: 5000 }), (e: BrickError) => {
    assert.equal(e.fault, 'COMMAND_FAILED');
    assert.match(e.message, /did not define domain "i-2-10-VM"/);
    return true;
  });
});

test('domain_define: a define that worked and a dumpxml that failed is not reported as "did not define"', async () => {
  // The definition is in place (libvirt took it); only reading it back failed or timed out. The
  // fault must say so: "did not define" would send the caller looking for a refusal that never was.
  for (const dump of [
    { code: 1, stderr: 'error: failed to connect to the hypervisor' },
    new BrickError('TIMEOUT', 'virsh -q -c qemu:///system dumpxml --domain i-2-10-VM: no answer within 5000 ms; killed'),
  ]) {
    const run = recordingRunner((c) => {
      if (!c.args.includes('dumpxml')) return {};
      if (dump instanceof BrickError) throw dump;
      return dump;
    });
    await assert.rejects(defineDomain(KVM, { uri: 'qemu:///system', run, timeoutMs: 5000 }), (e: BrickError) => {
      assert.equal(e.fault, dump instanceof BrickError ? 'TIMEOUT' : 'COMMAND_FAILED');
      assert.doesNotMatch(e.message, /did not define/);
      assert.match(e.message, /defined domain "i-2-10-VM".*virsh dumpxml/);
      return true;
    });
    assert.equal(run.calls.length, 2);
  }
});

test("domain_define: the read-back (dumpxml) gets what the define left of the call's budget, not the whole budget again", async () => {
  // Before: dumpxml was given timeoutMs afresh, so a slow define followed by a slow read-back ran up
  // to twice the call's deadline. The clock is the test's: the define "takes" tookMs.
  const xmlOut = "<domain type='kvm'>\n  <name>i-2-10-VM</name>\n  <uuid>4b1c7a2e-9d3f-4c55-8a61-2f0e7d9b3c10</uuid>\n</domain>\n";
  for (const [tookMs, dumpGets] of [[0, 5000], [3000, 2000], [4999, 1], [5000, 1], [5001, 1]] as const) {
    let t = 1_000;
    const run = recordingRunner((c) => {
      if (c.args.includes('dumpxml')) return { stdout: xmlOut };
      t += tookMs;
      return {};
    });
    const d = await defineDomain(KVM, { uri: 'qemu:///system', run, timeoutMs: 5000, now: () => t });
    assert.equal(d.uuid, '4b1c7a2e-9d3f-4c55-8a61-2f0e7d9b3c10');
    assert.deepEqual(run.calls.map((c) => [c.args[3], c.opts.timeoutMs]), [['define', 5000], ['dumpxml', dumpGets]], `define took ${tookMs} ms`);
  }
  // Nothing left, and the read-back times out: still "defined, but reading it back failed".
  let t = 0;
  const late = recordingRunner((c) => {
    if (!c.args.includes('dumpxml')) {
      t += 5000;
      return {};
    }
    throw new BrickError('TIMEOUT', `virsh -q -c qemu:///system dumpxml --domain i-2-10-VM: no answer within ${c.opts.timeoutMs} ms; killed`);
  });
  await assert.rejects(defineDomain(KVM, { uri: 'qemu:///system', run: late, timeoutMs: 5000, now: () => t }), (e: BrickError) => {
    assert.equal(e.fault, 'TIMEOUT');
    assert.match(e.message, /defined domain "i-2-10-VM" \(the new definition is in place\), but reading it back with virsh dumpxml failed: .*no answer within 1 ms/);
    return true;
  });
});

test('domain_define on test:///default: a define libvirt refused is refused, even when the dumpxml after it finds a domain of that name', async () => {
  // virsh runs every command of a command string and exits with the last one's status: a refused
  // define followed by a dumpxml of the driver's own domain "test" exits 0 with that domain's XML.
  const stock = "<domain type='test' id='1'>\n  <name>test</name>\n  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\n</domain>\n";
  const run = recordingRunner(() => ({
    code: 0,
    stdout: stock,
    stderr: 'error: Failed to define domain from /tmp/d/domain.xml\nerror: XML document failed to validate against schema\n',
  }));
  const xml = "<domain type='test'><name>test</name><memory>x</memory><os><type>hvm</type></os></domain>";
  await assert.rejects(defineDomain(xml, { uri: 'test:///default', run, timeoutMs: 5000 }), (e: BrickError) => {
    assert.equal(e.fault, 'COMMAND_FAILED');
    assert.match(e.message, /did not define domain "test": Failed to define domain/);
    return true;
  });
});

test('methods: domain_tweak and domain_define with help that documents the fixed order', () => {
  assert.deepEqual(methods.map((m) => m.name), ['domain_tweak', 'domain_define']);
  for (const m of methods) {
    let last = -1;
    for (const k of TWEAK_ORDER) {
      const at = m.help.indexOf(`${TWEAK_ORDER.indexOf(k) + 1} ${k}`);
      assert.ok(at > last, `${m.name} help lists ${k} in order`);
      last = at;
    }
  }
});
