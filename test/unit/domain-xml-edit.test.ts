// removeElements / replaceElements: the same result as removing or replacing one element at a time,
// with xmldom's childNodes lists kept true to the sibling links, in work linear in the children.
// Work is counted (writes to <devices>' childNodes list), never timed: xmldom re-indexes a parent's
// whole list on every removeChild/replaceChild, so one-by-one edits of m of K children cost m·K.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  childElements,
  devices,
  interfaces,
  parseDomainXml,
  parseXmlStrict,
  removeElement,
  removeElements,
  replaceElements,
  serializeXml,
  type Document,
  type Element,
} from '../../src/agent-extension/domain/xml.js';
import { applyPureTweaks, parseTweaks } from '../../src/agent-extension/domain/tweaks.js';
import { defaultConfig } from '../../src/config/load.js';

const cfg = defaultConfig();
type Kid = { nodeType: number; nextSibling: Kid | null; previousSibling: Kid | null; parentNode: unknown };

/** Every childNodes list in the tree matches its firstChild/nextSibling chain, with no stale index. */
function assertLists(doc: Document): void {
  const stack: unknown[] = [doc];
  while (stack.length) {
    const n = stack.pop() as { firstChild: Kid | null; lastChild: Kid | null; childNodes: { length: number; [i: number]: unknown } };
    const chain: Kid[] = [];
    let prev: Kid | null = null;
    for (let c = n.firstChild; c; c = c.nextSibling) {
      assert.equal(c.previousSibling, prev);
      assert.equal(c.parentNode, n);
      chain.push(c);
      prev = c;
    }
    assert.equal(n.lastChild, prev);
    assert.equal(n.childNodes.length, chain.length);
    chain.forEach((c, i) => assert.equal(n.childNodes[i], c));
    assert.equal(n.childNodes[chain.length], undefined);
    stack.push(...chain);
  }
}

/** Count the writes to `parent`'s childNodes list (xmldom's re-indexing) while `fn` runs. */
function listWrites(parent: Element, fn: () => void): number {
  const p = parent as unknown as { childNodes: object };
  const orig = p.childNodes;
  let n = 0;
  p.childNodes = new Proxy(orig, {
    set(t, k, v) {
      n++;
      return Reflect.set(t, k, v);
    },
  });
  try {
    fn();
  } finally {
    p.childNodes = orig;
  }
  return n;
}

const SAMPLE = `<domain type='kvm'>
  <name>x</name>
  <devices>
    <a/>
    <b/><c/>
    <d>
      <e/>
    </d>
    <f/>
    text<g/>
    <h/>
  </devices>
</domain>
`;

test('removeElements gives what removeElement one at a time gives (whitespace, adjacent, nested, already removed), and lists stay true', () => {
  const sets: string[][] = [['b', 'c'], ['a', 'f', 'h'], ['c', 'b'], ['e', 'd'], ['d', 'e'], ['g', 'h'], ['a', 'b', 'c', 'd', 'f', 'g', 'h'], []];
  for (const names of sets) {
    const one = parseDomainXml(SAMPLE);
    const all = parseDomainXml(SAMPLE);
    const pick = (doc: Document) => names.map((n) => doc.getElementsByTagName(n)[0] as Element);
    for (const el of pick(one)) removeElement(el);
    removeElements(pick(all));
    assert.equal(serializeXml(all), serializeXml(one), names.join(','));
    assertLists(all);
    // The tree goes on working: append, insert in the middle, remove again.
    const devs = devices(all)!;
    devs.appendChild(all.createElement('z'));
    devs.insertBefore(all.createElement('y'), devs.firstChild);
    devs.removeChild(devs.lastChild!);
    assertLists(all);
    assert.equal(devs.getElementsByTagName('y').length, 1);
  }
});

test('replaceElements gives what replacing one at a time gives; a fresh element already in the tree goes through xmldom', () => {
  const one = parseDomainXml(SAMPLE);
  const all = parseDomainXml(SAMPLE);
  const fresh = (doc: Document, n: string) => doc.importNode(parseXmlStrict(`<n${n} k='1'>\n  <i/>\n</n${n}>`, 'x').documentElement!, true) as Element;
  for (const n of ['a', 'c', 'h']) one.getElementsByTagName(n)[0].parentNode!.replaceChild(fresh(one, n), one.getElementsByTagName(n)[0]);
  replaceElements(['a', 'c', 'h'].map((n) => [all.getElementsByTagName(n)[0] as Element, fresh(all, n)] as const));
  assert.equal(serializeXml(all), serializeXml(one));
  assertLists(all);
  // An element of the tree as the replacement: moved, as replaceChild does.
  const moved = parseDomainXml(SAMPLE);
  const ref = parseDomainXml(SAMPLE);
  const g = (d: Document, n: string) => d.getElementsByTagName(n)[0] as Element;
  ref.getElementsByTagName('b')[0].parentNode!.replaceChild(g(ref, 'f'), g(ref, 'b'));
  replaceElements([[g(moved, 'b'), g(moved, 'f')]]);
  assert.equal(serializeXml(moved), serializeXml(ref));
  assertLists(moved);
});

function manyInputs(n: number): string {
  return `<domain type='xen'>\n  <name>x</name>\n  <memory>1024</memory>\n  <os>\n    <type>hvm</type>\n  </os>\n  <devices>\n${"    <input type='tablet' bus='usb'/>\n".repeat(n)}  </devices>\n</domain>\n`;
}

test('xen_pv dropping 2000 duplicate inputs re-indexes <devices> once, not once per input (before: 8 million list writes; 8000 inputs took 26 s)', () => {
  const doc = parseDomainXml(manyInputs(2000));
  const devs = devices(doc)!;
  const children = devs.childNodes.length;
  const writes = listWrites(devs, () => applyPureTweaks(doc, parseTweaks({ xen_pv: true }, cfg)));
  assert.ok(writes <= 2 * children, `${writes} writes to a list of ${children}`);
  // The work was done: one PV mouse is left, on the Xen bus, and the lists are true.
  assert.deepEqual(childElements(devs, 'input').map((i) => `${i.getAttribute('type')}/${i.getAttribute('bus')}`), ['mouse/xen']);
  assertLists(doc);
  // HVM: every USB tablet is kept; a non-PS/2, non-USB input is dropped, all in one pass too.
  const hvm = parseDomainXml(manyInputs(2000).replace(/bus='usb'/g, "bus='virtio'"));
  const hvmDevs = devices(hvm)!;
  const w2 = listWrites(hvmDevs, () => applyPureTweaks(hvm, parseTweaks({ xen_pv: { hvm: true } }, cfg)));
  assert.ok(w2 <= 2 * 4001, `${w2} writes`);
  assert.equal(childElements(hvmDevs, 'input').length, 0);
  assertLists(hvm);
});

test('xen_pv dropping 2000 virtio-serial controllers and 2000 extra videos: one re-index each', () => {
  const d = "    <controller type='virtio-serial' index='0'/>\n".repeat(2000) + "    <video><model type='vga'/></video>\n".repeat(2000);
  const doc = parseDomainXml(manyInputs(0).replace('  </devices>', d + '  </devices>'));
  const devs = devices(doc)!;
  const writes = listWrites(devs, () => applyPureTweaks(doc, parseTweaks({ xen_pv: true }, cfg)));
  assert.ok(writes <= 3 * 8001, `${writes} writes`);
  assert.equal(childElements(devs, 'controller').length, 0);
  assert.equal(childElements(devs, 'video').length, 1);
  assertLists(doc);
});

test('replacing every one of 2000 NICs (the device hooks\' results) re-indexes <devices> once', () => {
  const nicXml = (i: number) => `    <interface type='bridge'><mac address='02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}'/></interface>\n`;
  const doc = parseDomainXml(`<domain type='kvm'>\n  <name>x</name>\n  <devices>\n${Array.from({ length: 2000 }, (_, i) => nicXml(i)).join('')}  </devices>\n</domain>\n`);
  const devs = devices(doc)!;
  const nics = interfaces(doc);
  const fresh = nics.map((n) => doc.importNode(parseXmlStrict(`<interface type='network'><mac address='${n.mac}'/></interface>`, 'x').documentElement!, true) as Element);
  const writes = listWrites(devs, () => replaceElements(nics.map((n, i) => [n.el, fresh[i]] as const)));
  assert.ok(writes <= 2 * 4001, `${writes} writes`);
  assert.deepEqual(interfaces(doc).map((n) => n.mac), nics.map((n) => n.mac));
  assert.ok(interfaces(doc).every((n) => n.el.getAttribute('type') === 'network'));
  assertLists(doc);
});
