// Parse and serialize libvirt domain XML, and the small DOM edits every tweak shares. Parsing is
// strict: anything the parser would have to guess about (not well-formed, a DOCTYPE or entity, a
// root that is not <domain>) is a BAD_XML fault. Edits work on the parsed tree in place so that what
// a tweak does not touch — device order, comments, namespaces, <metadata> children — comes out as it
// went in (XMLSerializer writes attributes with double quotes; that is the only systematic change).
import type { Document, Element, Node } from '@xmldom/xmldom';
import { BrickError, type FaultName } from '../../shared/errors.js';

type Xmldom = typeof import('@xmldom/xmldom');
let xmldom: Xmldom | undefined;
/**
 * @xmldom/xmldom, loaded by the first domain call rather than at start: brick serve idles without it
 * (its module, with the HTML entity table, was about 2 MB of the agent's idle RSS and 7% of its
 * start-up CPU). In the bundle `require` is the bundler's; under tsx (ESM) one is made here.
 */
function lib(): Xmldom {
  return (xmldom ??= (typeof require === 'function' ? require('@xmldom/xmldom') : process.getBuiltinModule('node:module').createRequire(import.meta.url)('@xmldom/xmldom')) as Xmldom);
}

export type { Document, Element };

export const QEMU_NS = 'http://libvirt.org/schemas/domain/qemu/1.0';

/**
 * How much XML one call may hand the parser, checked on the text before it is parsed. Parsing is
 * synchronous and costs about 3-6 µs and 1-2 KB of heap per node (element, attribute, text,
 * comment) whatever the bytes, so the agent's event loop (every other call, metrics, health) waits
 * for it: a 4 MiB document of small elements took 6 s of CPU and over 1 GB. A realistic domain is far
 * smaller: CloudStack's KVM domain is 8 KB (146 elements, 172 attributes); with 256 disks and 64 NICs
 * it is 121 KB (about 1,700 elements and 3,600 attributes). libvirt's own ceiling is 4 MiB
 * (REMOTE_STRING_MAX, the longest string its RPC carries, so the most virDomainDefineXML takes).
 * Elements are counted as "<" not followed by "/" (start tags, comments, processing instructions),
 * attributes as "=" signs; text containing either only makes the count higher.
 */
export interface XmlLimits {
  bytes: number;
  elements: number;
  attributes: number;
}
export const DOMAIN_XML_LIMITS: Readonly<XmlLimits> = { bytes: 1024 * 1024, elements: 16_384, attributes: 32_768 };
/** What libvirt returns (virsh dumpxml) after adding its defaults: at most what its RPC carries. */
export const LIBVIRT_XML_LIMITS: Readonly<XmlLimits> = { bytes: 4 * 1024 * 1024, elements: 65_536, attributes: 131_072 };
/** libxml2's limit without XML_PARSE_HUGE, so libvirt's too: elements nested deeper are refused there. */
export const MAX_XML_DEPTH = 256;

const ELEMENT_NODE = 1;
const TEXT_NODE = 3;
const DOCUMENT_TYPE_NODE = 10;

/** Parse any XML text strictly; the fault names `what` (e.g. "the domain XML", "extraconfig section 2"). */
export function parseXmlStrict(text: string, what: string, fault: FaultName = 'BAD_XML', limits: Readonly<XmlLimits> = DOMAIN_XML_LIMITS): Document {
  if (typeof text !== 'string' || text.trim() === '') throw new BrickError(fault, `${what} is empty; pass a libvirt <domain> XML document`);
  checkLimits(text, what, limits);
  // A DOCTYPE may declare entities (billion laughs, external files); libvirt never needs one.
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw new BrickError(fault, `${what} contains a DOCTYPE or ENTITY declaration; remove it (libvirt XML never needs one)`);
  let doc: Document;
  try {
    doc = new (lib().DOMParser)({
      onError: (level: string, msg: string) => {
        throw new Error(`${level}: ${msg}`);
      },
    }).parseFromString(text, 'text/xml');
  } catch (e) {
    const msg = String((e as Error).message ?? e)
      .replace(/^Reporting \w+ "(.*)" caused [\s\S]*$/s, '$1')
      .split('\n')[0];
    throw new BrickError(fault, `${what} is not well-formed XML: ${msg}`);
  }
  for (const n of Array.from(doc.childNodes)) {
    if (n.nodeType === DOCUMENT_TYPE_NODE) throw new BrickError(fault, `${what} contains a DOCTYPE; remove it`);
  }
  if (!doc.documentElement) throw new BrickError(fault, `${what} has no root element`);
  checkTree(doc.documentElement, what, fault);
  return doc;
}

/** Occurrences of `ch` in `text`, or `max + 1` as soon as there are more than `max`. */
function countUpTo(text: string, ch: string, max: number, skip?: (at: number) => boolean): number {
  let n = 0;
  for (let at = text.indexOf(ch); at >= 0 && n <= max; at = text.indexOf(ch, at + 1)) if (!skip?.(at)) n++;
  return n;
}

/** TOO_LARGE, before any parsing, for text over `limits` (see DOMAIN_XML_LIMITS). */
export function checkLimits(text: string, what: string, limits: Readonly<XmlLimits>): void {
  const bytes = Buffer.byteLength(text);
  if (bytes > limits.bytes)
    throw new BrickError('TOO_LARGE', `${what} is ${bytes} bytes; brick takes at most ${limits.bytes} (a domain with hundreds of disks and NICs is about 120 KB)`);
  if (countUpTo(text, '<', limits.elements, (at) => text.charCodeAt(at + 1) === 0x2f /* / */) > limits.elements)
    throw new BrickError('TOO_LARGE', `${what} has more than ${limits.elements} elements, comments and processing instructions; brick takes at most ${limits.elements}`);
  if (countUpTo(text, '=', limits.attributes) > limits.attributes)
    throw new BrickError('TOO_LARGE', `${what} has more than ${limits.attributes} attributes ("=" signs); brick takes at most ${limits.attributes}`);
}

/** What XML 1.0 cannot carry, even as a character reference (&#0;, &#1;, &#xFFFE;, a lone surrogate). */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/**
 * What the parser lets through but libvirt refuses, checked without recursion: elements nested
 * deeper than libxml2 allows (the serializer recurses, so depth also bounds its stack), and
 * characters XML 1.0 has no place for (written back out, they would make the reply not XML).
 */
function checkTree(top: Element, what: string, fault: FaultName): void {
  const stack: Array<[Node, number]> = [[top, 0]];
  const badChar = (s: string | null | undefined, where: string) => {
    const m = s ? NOT_XML_CHAR.exec(s) : null;
    if (m) {
      const cp = m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
      throw new BrickError(fault, `${what} contains the character U+${cp} in ${where}, which XML 1.0 does not allow (libvirt refuses it); remove it`);
    }
  };
  while (stack.length) {
    const [n, depth] = stack.pop()!;
    if (n.nodeType === ELEMENT_NODE) {
      const el = n as Element;
      if (depth > MAX_XML_DEPTH)
        throw new BrickError(fault, `${what} nests elements more than ${MAX_XML_DEPTH} levels deep (at <${el.tagName}>); libvirt refuses such a document`);
      for (const a of Array.from(el.attributes)) badChar(a.value, `attribute ${a.name} of <${el.tagName}>`);
      for (let c = el.firstChild; c; c = c.nextSibling) stack.push([c, depth + 1]);
    } else badChar(n.nodeValue, `the content of <${(n.parentNode as Element | null)?.tagName ?? '?'}>`);
  }
}

/** Parse a libvirt domain: strict XML whose root is <domain> with no namespace. */
export function parseDomainXml(text: string, what = 'the domain XML', fault: FaultName = 'BAD_XML', limits: Readonly<XmlLimits> = DOMAIN_XML_LIMITS): Document {
  const doc = parseXmlStrict(text, what, fault, limits);
  const root = doc.documentElement!;
  if (root.localName !== 'domain' || root.namespaceURI) {
    throw new BrickError(fault, `${what} has root element <${root.tagName}>; a libvirt domain starts with <domain type='...'>`);
  }
  return doc;
}

function escText(s: string): string {
  // A CR can only be in the tree from &#13; (the parser turns a raw one into LF): keep it a reference.
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
}

function escAttr(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/'/g, '&apos;')
    .replace(/\n/g, '&#10;')
    .replace(/\r/g, '&#13;')
    .replace(/\t/g, '&#9;');
}

function writeNode(n: Node, out: string[]): void {
  switch (n.nodeType) {
    case ELEMENT_NODE: {
      const el = n as Element;
      out.push('<', el.tagName);
      for (const a of Array.from(el.attributes)) out.push(' ', a.name, "='", escAttr(a.value), "'");
      if (!el.firstChild) {
        out.push('/>');
        return;
      }
      out.push('>');
      for (let c: Node | null = el.firstChild; c; c = c.nextSibling) writeNode(c, out);
      out.push('</', el.tagName, '>');
      return;
    }
    case TEXT_NODE:
      out.push(escText(n.nodeValue ?? ''));
      return;
    case 4: // CDATA
      out.push('<![CDATA[', n.nodeValue ?? '', ']]>');
      return;
    case 7: // processing instruction, including the <?xml ...?> declaration
      out.push('<?', (n as unknown as { target: string }).target, n.nodeValue ? ' ' + n.nodeValue : '', '?>');
      return;
    case 8:
      out.push('<!--', n.nodeValue ?? '', '-->');
      return;
    case 9:
      for (let c: Node | null = n.firstChild; c; c = c.nextSibling) writeNode(c, out);
      return;
    default:
      // DOCTYPE and entity nodes cannot occur: parseXmlStrict refuses them.
      out.push(new (lib().XMLSerializer)().serializeToString(n));
  }
}

/**
 * Serialize the way libvirt and CloudStack write domain XML (attributes in single quotes), so what a
 * tweak did not touch comes out byte for byte as it went in. Namespace declarations are attributes in
 * the tree and are written where they were.
 */
export function serializeXml(doc: Document): string {
  const out: string[] = [];
  writeNode(doc, out);
  const s = out.join('');
  return s.endsWith('\n') ? s : s + '\n';
}

/** One element on its own, written as serializeXml writes it (for a device hook's file). */
export function serializeElement(el: Element): string {
  const out: string[] = [];
  writeNode(el, out);
  return out.join('') + '\n';
}

export function root(doc: Document): Element {
  return doc.documentElement!;
}

/** Element children (no namespace) named `name`, or all element children. */
export function childElements(parent: Element | Node, name?: string): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) {
    if (n.nodeType !== ELEMENT_NODE) continue;
    const el = n as Element;
    if (name === undefined || (el.localName === name && !el.namespaceURI)) out.push(el);
  }
  return out;
}

export function firstChild(parent: Element, name: string): Element | undefined {
  return childElements(parent, name)[0];
}

export function domainType(doc: Document): string {
  return root(doc).getAttribute('type') ?? '';
}

export function domainName(doc: Document): string {
  const n = firstChild(root(doc), 'name');
  return n?.textContent?.trim() ?? '';
}

export function devices(doc: Document): Element | undefined {
  return firstChild(root(doc), 'devices');
}

/** The whitespace before `el`'s start tag, when it stands on its own line. */
function leadingIndent(el: Node): string | undefined {
  const prev = el.previousSibling;
  if (prev && prev.nodeType === TEXT_NODE) {
    const m = /\n([ \t]*)$/.exec(prev.nodeValue ?? '');
    if (m) return m[1];
  }
  return undefined;
}

/** Indentation used by `parent`'s children, guessed from its existing children or its own depth. */
export function childIndent(parent: Element): string | undefined {
  for (const c of childElements(parent)) {
    const i = leadingIndent(c);
    if (i !== undefined) return i;
  }
  const own = leadingIndent(parent);
  if (own !== undefined) return own + '  ';
  // The root on its own: look at whether the document is indented at all.
  if (parent.parentNode && parent.parentNode.nodeType === 9) return '  ';
  return undefined;
}

/**
 * Insert `el` into `parent` before `ref` (or at the end), matching the surrounding indentation so
 * the result reads like the input. With no indentation in the input, nothing is added.
 */
export function insertElement(parent: Element, el: Element, ref?: Node | null): Element {
  const doc = parent.ownerDocument!;
  const indent = childIndent(parent);
  if (ref) {
    parent.insertBefore(el, ref);
    if (indent !== undefined && leadingIndent(el) !== undefined) {
      // ref stood on its own line: put el on its own line too, ref keeps its indentation.
      parent.insertBefore(doc.createTextNode('\n' + indent), ref);
    }
    return el;
  }
  const last = parent.lastChild;
  if (indent === undefined) {
    parent.appendChild(el);
    return el;
  }
  if (last && last.nodeType === TEXT_NODE && /\n[ \t]*$/.test(last.nodeValue ?? '')) {
    // "…<last/>\n</parent>": put el before the closing whitespace, on its own line.
    parent.insertBefore(doc.createTextNode('\n' + indent), last);
    parent.insertBefore(el, last);
    return el;
  }
  if (childElements(parent).length === 0 && !parent.firstChild) {
    // Empty element written as <parent/>: open it up on its own lines.
    const outer = leadingIndent(parent) ?? '';
    parent.appendChild(doc.createTextNode('\n' + indent));
    parent.appendChild(el);
    parent.appendChild(doc.createTextNode('\n' + outer));
    return el;
  }
  parent.appendChild(el);
  return el;
}

/**
 * Shift an element brought in from elsewhere (an extraconfig fragment written from column 0) to
 * `indent`: every line break inside its whitespace-only text gets `indent` after it.
 */
export function reindent(el: Element, indent: string): void {
  if (!indent) return;
  const walk = (n: Node) => {
    for (let c = n.firstChild; c; c = c.nextSibling) {
      if (c.nodeType === TEXT_NODE && /^\s*$/.test(c.nodeValue ?? '') && (c.nodeValue ?? '').includes('\n')) {
        c.nodeValue = (c.nodeValue ?? '').replace(/\n/g, '\n' + indent);
      } else if (c.nodeType === ELEMENT_NODE) walk(c);
    }
  };
  walk(el);
}

/** Remove `el` and the whitespace that put it on its own line. */
export function removeElement(el: Element): void {
  removeElements([el]);
}

/** A node's links as xmldom keeps them: plain properties (the DOM types call them read-only). */
interface Linked {
  parentNode: Linked | null;
  firstChild: Linked | null;
  lastChild: Linked | null;
  previousSibling: Linked | null;
  nextSibling: Linked | null;
  nodeType: number;
  nodeValue: string | null;
  childNodes: { length: number; [i: number]: Linked | undefined };
  ownerDocument: { _inc?: number } | null;
}

function unlink(n: Linked): void {
  const p = n.parentNode!;
  const prev = n.previousSibling;
  const next = n.nextSibling;
  if (prev) prev.nextSibling = next;
  else p.firstChild = next;
  if (next) next.previousSibling = prev;
  else p.lastChild = prev;
  n.parentNode = n.previousSibling = n.nextSibling = null;
}

/**
 * removeElement for each of `els` in turn (same result), in time linear in the parents' children.
 * xmldom's removeChild re-indexes the parent's whole childNodes list on every call, so taking m of
 * a parent's K children out one by one is O(m·K): xen_pv dropping 8000 <input>s from <devices>
 * (a 260 KB domain) took 26 s of CPU. Here each node is unlinked from its siblings exactly as
 * xmldom's removeChild does, and each parent's list is re-indexed once at the end, as xmldom's own
 * normalize() does for a run of text nodes (xmldom is pinned; domain-xml-edit.test.ts checks the
 * lists against the sibling links).
 */
export function removeElements(els: Iterable<Element>): void {
  const parents = new Set<Linked>();
  for (const el of els as Iterable<unknown> as Iterable<Linked>) {
    const parent = el.parentNode;
    if (!parent) continue;
    const prev = el.previousSibling;
    if (prev && prev.nodeType === TEXT_NODE && /^\s*$/.test(prev.nodeValue ?? '') && /\n/.test(prev.nodeValue ?? '')) unlink(prev);
    unlink(el);
    parents.add(parent);
  }
  reindex(parents);
}

/** Rebuild each parent's childNodes from its sibling links, once (what xmldom does after every edit). */
function reindex(parents: Iterable<Linked>): void {
  for (const p of parents) {
    const list = p.childNodes;
    const old = list.length;
    let i = 0;
    for (let c = p.firstChild; c; c = c.nextSibling) list[i++] = c;
    for (let j = i; j < old; j++) delete list[j];
    list.length = i;
    // What xmldom's own update does: live lists (getElementsByTagName) see the change.
    const doc = p.ownerDocument;
    if (doc && doc._inc) doc._inc++;
  }
}

/**
 * replaceElement for each [old, fresh] pair (fresh: a new element of the same document, not yet
 * in the tree, e.g. from importNode), with each parent's list re-indexed once: replacing every NIC
 * of <devices> one by one was O(NICs · children) (4000 NICs: 1.7 s of CPU). Any other pair goes
 * through xmldom's replaceChild.
 */
export function replaceElements(pairs: ReadonlyArray<readonly [Element, Element]>): void {
  const parents = new Set<Linked>();
  for (const [oldEl, fresh] of pairs) {
    const o = oldEl as unknown as Linked;
    const n = fresh as unknown as Linked;
    const p = o.parentNode;
    if (!p) continue;
    if (n.parentNode || n.nodeType !== ELEMENT_NODE || n.ownerDocument !== o.ownerDocument || n === o) {
      reindex(parents);
      parents.clear();
      oldEl.parentNode!.replaceChild(fresh, oldEl);
      continue;
    }
    n.parentNode = p;
    n.previousSibling = o.previousSibling;
    n.nextSibling = o.nextSibling;
    if (o.previousSibling) o.previousSibling.nextSibling = n;
    else p.firstChild = n;
    if (o.nextSibling) o.nextSibling.previousSibling = n;
    else p.lastChild = n;
    o.parentNode = o.previousSibling = o.nextSibling = null;
    parents.add(p);
  }
  reindex(parents);
}

/** Replace `old` with `el` in place. */
export function replaceElement(old: Element, el: Element): void {
  old.parentNode!.replaceChild(el, old);
}

/** Create `<name attr=...>` (no namespace) with attributes in the given order. */
export function createElement(doc: Document, name: string, attrs: Record<string, string> = {}): Element {
  const el = doc.createElement(name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

/** The first child named `name`, created (appended) when missing. */
export function ensureChild(parent: Element, name: string, attrs: Record<string, string> = {}, ref?: Node | null): Element {
  const found = firstChild(parent, name);
  if (found) return found;
  return insertElement(parent, createElement(parent.ownerDocument!, name, attrs), ref);
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export function normalizeMac(mac: string, param: string): string {
  const m = mac.trim().toLowerCase();
  if (m === '*') return m;
  if (!MAC_RE.test(m)) throw new BrickError('INVALID_PARAMS', `${param}: "${mac}" is not a MAC address like 02:00:0a:0b:0c:0d (or "*" for every NIC)`);
  return m;
}

/** The domain's <interface> elements with their MAC (lower case; "" when the NIC has none). */
export function interfaces(doc: Document): Array<{ el: Element; mac: string }> {
  const devs = devices(doc);
  if (!devs) return [];
  return childElements(devs, 'interface').map((el) => ({
    el,
    mac: (firstChild(el, 'mac')?.getAttribute('address') ?? '').toLowerCase(),
  }));
}

/**
 * Resolve a tweak's MAC keys to NICs. "*" is every NIC; a MAC that names no NIC is NOT_FOUND, so a
 * typo cannot silently leave a NIC unchanged.
 */
export function nicsFor(doc: Document, macs: readonly string[], tweak: string): Array<{ el: Element; mac: string; key: string }> {
  const nics = interfaces(doc);
  const out: Array<{ el: Element; mac: string; key: string }> = [];
  const seen = new Set<Element>();
  // A named MAC wins over "*": it is handled first and "*" then skips that NIC.
  const ordered = [...macs.filter((m) => m !== '*'), ...macs.filter((m) => m === '*')];
  for (const key of ordered) {
    const hits = key === '*' ? nics : nics.filter((n) => n.mac === key);
    if (hits.length === 0 && key !== '*') {
      const have = nics.map((n) => n.mac || '(no mac)').join(', ') || 'none';
      throw new BrickError('NOT_FOUND', `${tweak}: no <interface> with MAC ${key} in domain "${domainName(doc)}" (its NICs: ${have})`);
    }
    for (const h of hits) {
      if (seen.has(h.el)) continue;
      seen.add(h.el);
      out.push({ ...h, key });
    }
  }
  return out;
}
