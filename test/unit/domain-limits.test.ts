// How much domain XML brick parses: the limits are checked on the text before the parser sees it
// (parsing is synchronous: a 4 MiB document of small elements held the agent's event loop for
// seconds), each at −1, = and +1; a large realistic domain passes and is fully worked on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { DOMAIN_XML_LIMITS, LIBVIRT_XML_LIMITS, parseDomainXml, serializeXml, interfaces } from '../../src/agent-extension/domain/xml.js';
import { tweakDomainXml } from '../../src/agent-extension/domain/tweaks.js';
import { defineDomain } from '../../src/agent-extension/domain/define.js';
import { defaultConfig } from '../../src/config/load.js';
import { recordingRunner } from '../../src/shared/run.js';
import { methods } from '../../src/agent-extension/domain/methods.js';
import { callContext, invoke } from '../fixtures/call-context.js';
import { throwsFault } from '../fixtures/faults.js';

const golden = join(import.meta.dirname, '../golden/domain');
const KVM = readFileSync(join(golden, 'kvm-input.xml'), 'utf8');
const cfg = defaultConfig();
const { bytes: MAX_BYTES, elements: MAX_ELEMENTS, attributes: MAX_ATTRS } = DOMAIN_XML_LIMITS;

/** The parser xml.ts loads (the same module instance: CommonJS caches it), to count its calls. */
const xmldom = createRequire(import.meta.url)('@xmldom/xmldom') as typeof import('@xmldom/xmldom');
function parses(fn: () => unknown): number {
  const proto = xmldom.DOMParser.prototype;
  const orig = proto.parseFromString;
  let n = 0;
  proto.parseFromString = function (this: unknown, ...a: Parameters<typeof orig>) {
    n++;
    return orig.apply(this, a);
  } as typeof orig;
  try {
    fn();
  } catch {
    // the caller asserts the fault separately
  } finally {
    proto.parseFromString = orig;
  }
  return n;
}

/** The documents parsed while `fn` runs. */
async function parsedWhile(fn: () => Promise<unknown>): Promise<string[]> {
  const proto = xmldom.DOMParser.prototype;
  const orig = proto.parseFromString;
  const seen: string[] = [];
  proto.parseFromString = function (this: unknown, ...a: Parameters<typeof orig>) {
    seen.push(String(a[0]));
    return orig.apply(this, a);
  } as typeof orig;
  try {
    await fn();
  } finally {
    proto.parseFromString = orig;
  }
  return seen;
}

const HEAD = "<domain type='kvm'><name>x</name><memory>1024</memory>";
const TAIL = '</domain>';
const startTags = (s: string) => s.split('<').length - 1 - (s.split('</').length - 1);
const eqSigns = (s: string) => s.split('=').length - 1;

/** A well-formed domain of exactly `n` bytes: padding in <description>, which adds no "<" or "=". */
function ofBytes(n: number): string {
  const shell = `${HEAD}<description></description>${TAIL}`;
  return `${HEAD}<description>${'x'.repeat(n - shell.length)}</description>${TAIL}`;
}
/** A well-formed domain with exactly `n` start tags. */
function ofElements(n: number): string {
  const shell = `${HEAD}<metadata><m:a xmlns:m='urn:x'></m:a></metadata>${TAIL}`;
  return `${HEAD}<metadata><m:a xmlns:m='urn:x'>${'<m:b/>'.repeat(n - startTags(shell))}</m:a></metadata>${TAIL}`;
}
/** A well-formed domain with exactly `n` attributes. */
function ofAttributes(n: number): string {
  const shell = `${HEAD}<metadata><m:a xmlns:m='urn:x'/></metadata>${TAIL}`;
  const k = n - eqSigns(shell);
  const attrs = Array.from({ length: k }, (_, i) => ` a${i}='1'`).join('');
  return `${HEAD}<metadata><m:a xmlns:m='urn:x'${attrs}/></metadata>${TAIL}`;
}

test('the limits: 1 MiB, 16384 elements, 32768 attributes for what a caller sends; libvirt\'s own 4 MiB RPC string limit for what it returns', () => {
  assert.deepEqual(DOMAIN_XML_LIMITS, { bytes: 1024 * 1024, elements: 16_384, attributes: 32_768 });
  assert.equal(LIBVIRT_XML_LIMITS.bytes, 4 * 1024 * 1024);
  // CloudStack's own domain is far below every limit.
  assert.ok(Buffer.byteLength(KVM) * 100 < MAX_BYTES && startTags(KVM) * 100 < MAX_ELEMENTS && eqSigns(KVM) * 100 < MAX_ATTRS);
});

test('TOO_LARGE: bytes at limit −1, =, +1 (counted in UTF-8 bytes, not characters)', () => {
  for (const n of [MAX_BYTES - 1, MAX_BYTES]) {
    const xml = ofBytes(n);
    assert.equal(Buffer.byteLength(xml), n);
    assert.equal(serializeXml(parseDomainXml(xml)), xml + '\n');
  }
  const over = ofBytes(MAX_BYTES + 1);
  throwsFault(() => parseDomainXml(over), 'TOO_LARGE', new RegExp(`is ${MAX_BYTES + 1} bytes; brick takes at most ${MAX_BYTES}`));
  // One "é" is two bytes: the limit is on bytes.
  const twoByte = ofBytes(MAX_BYTES - 1).replace('<description>xx', '<description>éé');
  assert.equal(twoByte.length, MAX_BYTES - 1);
  assert.equal(Buffer.byteLength(twoByte), MAX_BYTES + 1);
  throwsFault(() => parseDomainXml(twoByte), 'TOO_LARGE', /bytes/);
});

test('TOO_LARGE: elements at limit −1, =, +1; end tags do not count, comments and processing instructions do', () => {
  for (const n of [MAX_ELEMENTS - 1, MAX_ELEMENTS]) {
    const xml = ofElements(n);
    assert.equal(startTags(xml), n);
    assert.equal(serializeXml(parseDomainXml(xml)), xml + '\n');
  }
  throwsFault(() => parseDomainXml(ofElements(MAX_ELEMENTS + 1)), 'TOO_LARGE', new RegExp(`more than ${MAX_ELEMENTS} elements`));
  // The same count written with end tags is still the same number of elements.
  const open = ofElements(MAX_ELEMENTS).replace(/<m:b\/>/g, '<m:b></m:b>');
  assert.equal(serializeXml(parseDomainXml(open)), ofElements(MAX_ELEMENTS) + '\n');
  throwsFault(() => parseDomainXml(ofElements(MAX_ELEMENTS).replace('<m:b/>', '<!--c--><m:b/>')), 'TOO_LARGE', /elements, comments/);
  throwsFault(() => parseDomainXml(ofElements(MAX_ELEMENTS).replace('<m:b/>', '<?pi x?><m:b/>')), 'TOO_LARGE', /elements, comments/);
});

test('TOO_LARGE: attributes at limit −1, =, +1', () => {
  for (const n of [MAX_ATTRS - 1, MAX_ATTRS]) {
    const xml = ofAttributes(n);
    assert.equal(eqSigns(xml), n);
    assert.ok(Buffer.byteLength(xml) <= MAX_BYTES);
    assert.equal(serializeXml(parseDomainXml(xml)), xml + '\n');
  }
  throwsFault(() => parseDomainXml(ofAttributes(MAX_ATTRS + 1)), 'TOO_LARGE', new RegExp(`more than ${MAX_ATTRS} attributes`));
});

test('the limits are checked before parsing: over a limit, the parser never runs (and broken XML over it is TOO_LARGE, not BAD_XML)', () => {
  const broken = ofElements(MAX_ELEMENTS + 1).replace(TAIL, '');
  throwsFault(() => parseDomainXml(broken), 'TOO_LARGE', /elements/);
  assert.equal(parses(() => parseDomainXml(broken)), 0);
  assert.equal(parses(() => parseDomainXml(ofAttributes(MAX_ATTRS + 1))), 0);
  assert.equal(parses(() => parseDomainXml(ofBytes(MAX_BYTES + 1))), 0);
  // Before: 4 MiB was accepted and parsed (seconds of CPU with small elements).
  assert.equal(parses(() => parseDomainXml(ofBytes(4 * 1024 * 1024))), 0);
  assert.equal(parses(() => parseDomainXml(ofElements(MAX_ELEMENTS))), 1);
  // domain_tweak refuses as parseDomainXml does.
  throwsFault(() => tweakDomainXml(ofElements(MAX_ELEMENTS + 1), { macspoof: true }, cfg), 'TOO_LARGE', /elements/);
});

test('a large realistic domain (256 disks, 64 more NICs) is within the limits and every NIC is tweaked', () => {
  const disk = /( {4}<!-- DATA volume -->\n {4}<disk[\s\S]*?<\/disk>\n)/.exec(KVM)![1];
  const nic = (i: number) =>
    `    <interface type='bridge'>\n      <mac address='02:00:00:00:01:${i.toString(16).padStart(2, '0')}'/>\n      <source bridge='cloudbr0'/>\n` +
    `      <model type='virtio'/>\n      <filterref filter='no-mac-spoofing'/>\n      <link state='up'/>\n    </interface>\n`;
  const big = KVM.replace('  </devices>', disk.repeat(256) + Array.from({ length: 64 }, (_, i) => nic(i)).join('') + '  </devices>');
  assert.ok(Buffer.byteLength(big) < MAX_BYTES / 4 && startTags(big) < MAX_ELEMENTS / 4 && eqSigns(big) < MAX_ATTRS / 4);
  assert.equal(serializeXml(parseDomainXml(big)), big);
  const out = tweakDomainXml(big, { macspoof: true, extnet: { '*': 'guest-net' } }, cfg);
  const nics = interfaces(parseDomainXml(out));
  assert.equal(nics.length, 67);
  assert.equal((out.match(/no-mac-spoofing/g) ?? []).length, 0);
  assert.equal((out.match(/<source network='guest-net'\/>/g) ?? []).length, 67);
  assert.equal((out.match(/<disk /g) ?? []).length, 256 + 5);
});

test('what libvirt returns is held to libvirt\'s own limit, not the caller\'s: a domain it expanded past 1 MiB is still read back', async () => {
  const small = "<domain type='kvm'><name>big</name><memory>1024</memory></domain>\n";
  const expanded = ofBytes(MAX_BYTES + 4096).replace('<name>x</name>', '<name>big</name><uuid>u-1</uuid>') + '\n';
  const run = recordingRunner((c) => (c.args.includes('dumpxml') ? { stdout: expanded } : {}));
  const d = await defineDomain(small, { uri: 'qemu:///system', run, timeoutMs: 5000 });
  assert.equal(d.name, 'big');
  assert.equal(d.uuid, 'u-1');
  const tooBig = recordingRunner((c) => (c.args.includes('dumpxml') ? { stdout: ofBytes(LIBVIRT_XML_LIMITS.bytes + 1) } : {}));
  await assert.rejects(defineDomain(small, { uri: 'qemu:///system', run: tooBig, timeoutMs: 5000 }), /TOO_LARGE|bytes/);
});

test('domain_define parses the caller\'s XML once (the lock\'s name and the tweaks share the tree); before, twice', async () => {
  const dumped = KVM.replace('<domain type=', '<domain id="7" type=');
  const run = recordingRunner((c) => (c.args.includes('dumpxml') ? { stdout: dumped } : {}));
  const define = methods.find((m) => m.name === 'domain_define')!;
  let reply: unknown;
  const seen = await parsedWhile(async () => {
    reply = await invoke(define, [KVM, { macspoof: true }], callContext(cfg, { runner: run }));
  });
  assert.equal((reply as { name: string }).name, 'i-2-10-VM');
  // The input once; the tweaked XML once (defineDomain checks what it hands virsh); libvirt's reply once.
  const what = (s: string) => (s === KVM ? 'input' : s.startsWith('<domain id="7"') ? 'libvirt' : s.includes('no-mac-spoofing') ? 'other' : 'tweaked');
  assert.deepEqual(seen.map(what), ['input', 'tweaked', 'libvirt']);
});
