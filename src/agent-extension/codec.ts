// brick's XML-RPC codec on fast-xml-parser: strict in what it reads, exact in what it writes.
// Reading refuses anything a well-behaved client would not send (DOCTYPE, entities other than XML's
// five and character references, mismatched tags, trailing text, `12abc`, nesting beyond a limit,
// invalid UTF-8, unknown types) with a CodecError that the server turns into a PARSE_ERROR fault.
// Writing emits <i8> for every integer outside int32 (Apache XML-RPC reads <int> as 32-bit) and
// <nil/> for null, which CloudStack's Ovm3 client understands.
import { randomBytes } from 'node:crypto';
import { isAscii, isUtf8 } from 'node:buffer';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { TEXT_VIEW, XmlRpcDouble, XmlRpcI8, isTextView, type XmlRpcValue, type XmlRpcStruct } from '../rpc/values.js';

/** A request or response body that is not acceptable XML-RPC. */
export class CodecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CodecError';
  }
}

/** A fault read from a methodResponse (client side). */
export class XmlRpcFault extends Error {
  constructor(
    readonly faultCode: number,
    readonly faultString: string,
  ) {
    super(`fault ${faultCode}: ${faultString}`);
    this.name = 'XmlRpcFault';
  }
}

/** Deepest array/struct nesting accepted or produced. */
export const MAX_VALUE_DEPTH = 64;
// Each value level is three tags (value/array/data or value/struct/member) plus the envelope.
export const MAX_TAG_DEPTH = MAX_VALUE_DEPTH * 3 + 8;
const MAX_METHOD_NAME = 256;
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

type Node = Record<string, unknown>;

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: false, // we decode XML's own entities ourselves and refuse the rest
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  removeNSPrefix: true, // Apache's <ex:nil/> and <ex:i8>
  cdataPropName: '#cdata',
  maxNestedTags: MAX_TAG_DEPTH,
});

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

const bad = (msg: string): never => {
  throw new CodecError(msg);
};

/** Decode a request body: UTF-8 only, invalid sequences refused. */
export function decodeBody(body: Buffer | Uint8Array | string): string {
  if (typeof body === 'string') return body;
  try {
    return fatalUtf8.decode(body);
  } catch {
    return bad('the body is not valid UTF-8');
  }
}

const tagOf = (n: Node): string => {
  for (const k of Object.keys(n)) if (k !== ':@') return k;
  return bad('empty node');
};
const kids = (n: Node): Node[] => (n[tagOf(n)] as Node[]) ?? [];
const isText = (n: Node) => {
  const t = tagOf(n);
  return t === '#text' || t === '#cdata';
};

const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function validChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&([^;&\s]{0,12});?/g, (whole, name: string) => {
    if (!whole.endsWith(';')) return bad(`a bare "&" in text (write &amp;)`);
    if (name in PREDEFINED) return PREDEFINED[name];
    const m = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(name);
    if (!m) return bad(`entity &${name}; is not allowed (only &amp; &lt; &gt; &quot; &apos; and character references)`);
    const cp = m[1] !== undefined ? parseInt(m[1], 16) : parseInt(m[2], 10);
    if (!validChar(cp)) return bad(`character reference &${name}; is not a valid XML character`);
    return String.fromCodePoint(cp);
  });
}

// fast-xml-parser takes ~1 s and ~400 MiB for one 10 MB text node (an ovs_upload_file), so long
// text runs are set aside before parsing and put back when their text node is read: each is replaced
// by a key with a per-document random nonce, which no sender can guess. Only done when the document
// has no CDATA section or comment, the only places a `>` … `<` run could be something other than a
// text node's content (a well-formed attribute value cannot hold `<`; PIs are ignored).
const LARGE_TEXT = 16 * 1024;
// The texts set aside for the document being read; set and cleared by readDocument only.
let setAside: Map<string, string> | undefined;
// Long texts of a file-carrying call kept as views of the request body (InPlaceBody textViews).
let setAsideViews: Map<string, Buffer> | undefined;

// A text view's mark and test are defined with the value types (rpc/values.ts), which handlers and
// parameter formats share.
export { isTextView };

/** The view standing for an element's whole text, if that text is one long run kept as a view. */
function viewOf(n: Node): Buffer | undefined {
  if (!setAsideViews) return undefined;
  const k = kids(n);
  return k.length === 1 && tagOf(k[0]) === '#text' ? setAsideViews.get(String(k[0]['#text'])) : undefined;
}

function setAsideLargeText(xml: string): { xml: string; texts?: Map<string, string> } {
  if (xml.length < LARGE_TEXT || xml.includes('<![CDATA[') || xml.includes('<!--')) return { xml };
  const texts = new Map<string, string>();
  const nonce = randomBytes(12).toString('hex');
  const parts: string[] = [];
  let copied = 0;
  // Walk tag to tag with indexOf (a regex with a 16 K repeat overflows V8's stack).
  for (let at = xml.indexOf('>'); at >= 0; ) {
    const lt = xml.indexOf('<', at + 1);
    if (lt < 0) break;
    if (lt - (at + 1) >= LARGE_TEXT) {
      const key = `brick-large-text-${nonce}-${texts.size}`;
      texts.set(key, xml.slice(at + 1, lt));
      parts.push(xml.slice(copied, at + 1), key);
      copied = lt;
    }
    at = xml.indexOf('>', lt);
  }
  if (!texts.size) return { xml };
  parts.push(xml.slice(copied));
  return { xml: parts.join(''), texts };
}

const rawText = (c: Node): string => {
  const t = String(c['#text']);
  return setAside?.get(t) ?? setAsideViews?.get(t)?.toString('utf8') ?? t;
};

/** Text content of an element; child elements are an error here. */
function textOf(n: Node, what: string): string {
  let s = '';
  for (const c of kids(n)) {
    const t = tagOf(c);
    if (t === '#text') s += decodeEntities(rawText(c));
    else if (t === '#cdata') s += (c['#cdata'] as Node[]).map((x) => String(x['#text'] ?? '')).join('');
    else bad(`<${what}> must hold text, not <${t}>`);
  }
  return s;
}

/** Child elements of a structural element; non-blank text there is an error. */
function elems(n: Node, what: string): Node[] {
  const out: Node[] = [];
  for (const c of kids(n)) {
    if (isText(c)) {
      const t = tagOf(c) === '#text' ? rawText(c) : 'x';
      if (t.trim() !== '') bad(`unexpected text inside <${what}>`);
    } else out.push(c);
  }
  return out;
}

function one(n: Node, what: string, tag: string): Node {
  const e = elems(n, what);
  if (e.length !== 1 || tagOf(e[0]) !== tag) bad(`<${what}> must hold exactly one <${tag}>`);
  return e[0];
}

const INT_RE = /^[+-]?\d{1,25}$/;
const DOUBLE_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d{1,4})?$/;
const B64_RE = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;
const DATE_RE = /^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):?(\d{2}):?(\d{2})(?:\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?$/;

function decodeDate(s: string): Date {
  const m = DATE_RE.exec(s.trim()) ?? bad(`bad dateTime.iso8601 "${s.slice(0, 40)}" (expected YYYYMMDDTHH:MM:SS)`);
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number);
  let ms = Date.UTC(y, mo - 1, d, h, mi, se);
  const dt = new Date(ms);
  if (dt.getUTCMonth() !== mo - 1 || dt.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) bad(`bad dateTime.iso8601 "${s.slice(0, 40)}": no such date`);
  const tz = m[7];
  if (tz && tz !== 'Z') {
    const sign = tz[0] === '-' ? -1 : 1;
    const hh = Number(tz.slice(1, 3));
    const mm = Number(tz.slice(-2));
    ms -= sign * (hh * 60 + mm) * 60_000;
  }
  return new Date(ms);
}

const SCALAR_TYPES = new Set(['i4', 'int', 'i8', 'boolean', 'double', 'string', 'base64', 'dateTime.iso8601']);

/** A scalar of type `tag` from its element's text (entities already decoded). */
function decodeScalar(tag: string, text: string): XmlRpcValue {
  switch (tag) {
    case 'i4':
    case 'int': {
      const s = text.trim();
      if (!INT_RE.test(s)) bad(`bad <${tag}> "${s.slice(0, 40)}": not an integer`);
      const n = Number(s);
      if (n > INT32_MAX || n < INT32_MIN) bad(`<${tag}> ${s} is outside 32 bits (send it as <i8>)`);
      return n;
    }
    case 'i8': {
      const s = text.trim();
      if (!INT_RE.test(s)) bad(`bad <i8> "${s.slice(0, 40)}": not an integer`);
      const b = BigInt(s);
      if (b > 9223372036854775807n || b < -9223372036854775808n) bad(`<i8> ${s} is outside 64 bits`);
      return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
    }
    case 'boolean': {
      const s = text.trim();
      if (s !== '0' && s !== '1') bad(`bad <boolean> "${s.slice(0, 40)}": must be 0 or 1`);
      return s === '1';
    }
    case 'double': {
      const s = text.trim();
      if (!DOUBLE_RE.test(s)) bad(`bad <double> "${s.slice(0, 40)}"`);
      const n = Number(s);
      if (!Number.isFinite(n)) bad(`<double> ${s.slice(0, 40)} is out of range`);
      return n;
    }
    case 'string':
      return text;
    case 'base64': {
      const s = text;
      if (!B64_RE.test(s)) bad('bad <base64>: characters outside the base64 alphabet');
      const b64 = s.replace(/\s+/g, '');
      // Node drops a last group of one character (six bits, no whole byte) without a word: a
      // truncated upload would be written short. Padding makes whole groups of four.
      const pads = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
      if ((b64.length - pads) % 4 === 1 || (pads > 0 && b64.length % 4 !== 0)) bad(`bad <base64>: ${b64.length} characters${pads ? ' with padding' : ''} is not a whole number of bytes (a character missing or extra)`);
      return Buffer.from(b64, 'base64');
    }
    case 'dateTime.iso8601':
      return decodeDate(text);
    default:
      return bad(`unknown XML-RPC type <${tag.slice(0, 40)}>`);
  }
}

function decodeValue(v: Node, depth: number): XmlRpcValue {
  if (depth > MAX_VALUE_DEPTH) bad(`values nested deeper than ${MAX_VALUE_DEPTH} levels`);
  const untypedView = viewOf(v);
  if (untypedView) return untypedView;
  if (kids(v).every(isText)) return textOf(v, 'value'); // untyped <value>text</value> is a string
  const e = elems(v, 'value');
  if (e.length !== 1) bad('<value> must hold exactly one type element');
  const t = e[0];
  const tag = tagOf(t);
  switch (tag) {
    case 'nil':
      if (kids(t).length) bad('<nil/> must be empty');
      return null;
    case 'array': {
      const data = one(t, 'array', 'data');
      return elems(data, 'data').map((c) => (tagOf(c) === 'value' ? decodeValue(c, depth + 1) : bad(`<data> must hold <value>s, not <${tagOf(c)}>`)));
    }
    case 'struct': {
      const out: XmlRpcStruct = Object.create(null);
      for (const m of elems(t, 'struct')) {
        if (tagOf(m) !== 'member') bad(`<struct> must hold <member>s, not <${tagOf(m)}>`);
        const parts = elems(m, 'member');
        const name = parts.find((c) => tagOf(c) === 'name');
        const val = parts.find((c) => tagOf(c) === 'value');
        if (parts.length !== 2 || !name || !val) bad('<member> must hold one <name> and one <value>');
        const key = textOf(name!, 'name');
        if (Object.hasOwn(out, key)) bad(`struct member "${key.slice(0, 60)}" appears twice`);
        out[key] = decodeValue(val!, depth + 1);
      }
      return out;
    }
    default:
      if (tag === 'string') {
        const view = viewOf(t);
        if (view) return view;
      }
      return SCALAR_TYPES.has(tag) ? decodeScalar(tag, textOf(t, tag)) : bad(`unknown XML-RPC type <${tag.slice(0, 40)}>`);
  }
}

// A character XML 1.0 does not allow anywhere in a document.
const FORBIDDEN_CHAR = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/;

/**
 * Whether the document has a processing instruction without a target (`<?>`, `<? x?>`, `<??>`),
 * outside comments and CDATA. XML does not allow one, and fast-xml-parser reads `<?>` two ways:
 * its validator as the start of a PI that runs to the next `?>` (so it checks nothing up to there),
 * its parser as a whole PI (so it reads everything after it): elements the validator never checked
 * and the server's read limits (body-scan.ts, which skips PIs as XML does) never counted. The walk
 * skips comments, CDATA and PIs no further than the parser does, so it sees every `<?` the parser sees.
 */
function piWithoutTarget(xml: string): boolean {
  if (!xml.includes('<?>') && !/<\?[\s?]/.test(xml)) return false;
  for (let i = xml.indexOf('<'); i >= 0; ) {
    let end: number;
    if (xml.startsWith('<!--', i)) end = xml.indexOf('-->', i + 4) + 3;
    else if (xml.startsWith('<![CDATA[', i)) end = xml.indexOf(']]>', i + 9) + 3;
    else if (xml.startsWith('<?', i)) {
      if (/[\s?>]/.test(xml.charAt(i + 2))) return true;
      end = xml.indexOf('?>', i + 2) + 2;
    } else end = i + 1;
    if (end < i + 1) return false; // unclosed: not well-formed, refused by the validator
    i = xml.indexOf('<', end);
  }
  return false;
}

function parseDocument(xml: string, root: string, preset?: Map<string, string>, wholeXml?: () => string | undefined): { node: Node; texts?: Map<string, string> } {
  if (/<!DOCTYPE/i.test(xml)) bad('DOCTYPE is not allowed');
  if (/<!ENTITY/i.test(xml)) bad('entity declarations are not allowed');
  if (FORBIDDEN_CHAR.test(xml)) bad('the body holds a control character XML does not allow');
  if (piWithoutTarget(xml)) bad('a processing instruction without a target ("<?" must be followed by a name)');
  let ok: ReturnType<typeof XMLValidator.validate>;
  try {
    ok = XMLValidator.validate(xml);
  } catch (e) {
    return bad(`not well-formed XML: ${(e as Error).message}`);
  }
  if (ok !== true && preset) {
    // The position is in the document with its long texts left out: for a body of ordinary size,
    // find it again in the whole document, so the message is the same as without the set-aside.
    const whole = wholeXml?.();
    const again = whole === undefined ? ok : XMLValidator.validate(whole);
    if (again !== true) ok = again;
    else if (whole === undefined) ok.err.msg += ' (position in the body with its long texts left out)';
  }
  if (ok !== true) bad(`not well-formed XML: ${ok.err.msg}${ok.err.line ? ` (line ${ok.err.line}${ok.err.col ? `, column ${ok.err.col}` : ''})` : ''}`);
  let doc: Node[];
  let texts: Map<string, string> | undefined;
  try {
    // The set-aside document is small, so checking it again costs nothing. It is well-formed unless
    // a '>' inside an attribute value misled the walk (the run then swallows a quote and the
    // attribute would hold a '<'): then parse the document as it is, slowly but correctly.
    const aside = setAsideLargeText(xml);
    if (aside.texts && XMLValidator.validate(aside.xml) === true) {
      doc = parser.parse(aside.xml) as Node[];
      texts = aside.texts;
    } else {
      doc = parser.parse(xml) as Node[];
    }
    if (preset) texts = texts ? new Map([...preset, ...texts]) : preset;
  } catch (e) {
    const msg = (e as Error).message;
    return bad(/nested/i.test(msg) ? `elements nested deeper than ${MAX_TAG_DEPTH} levels` : `not well-formed XML: ${msg}`);
  }
  const text = (n: Node) => String(n['#text'] ?? 'x');
  const roots = doc.filter((n) => !isText(n) || (texts?.get(text(n)) ?? text(n)).trim() !== '');
  if (roots.length !== 1) bad(`the document must hold exactly one <${root}> element`);
  if (tagOf(roots[0]) !== root) bad(`expected <${root}>, got <${tagOf(roots[0]).slice(0, 40)}>`);
  return { node: roots[0], texts };
}

const DECLARED_ENCODING = /^\s*<\?xml\s[^>]*?\bencoding\s*=\s*(["'])([^"']*)\1/;

/**
 * The body is read as UTF-8 whatever its XML declaration says: a body that declares another
 * encoding (Python's ServerProxy(encoding='iso-8859-1') sends its text in that encoding) is read
 * the same only while it is all ASCII; otherwise it is refused, not misread (Latin-1 "Ã©" is the
 * bytes of UTF-8 "é").
 */
function checkEncoding(xml: string, body: InPlaceBody | undefined): void {
  const m = DECLARED_ENCODING.exec(xml.slice(0, 256));
  if (!m || /^utf-?8$/i.test(m[2])) return;
  if (body ? body.hasNonAscii() : /[^\x00-\x7f]/.test(xml))
    bad(`the body declares encoding "${m[2].slice(0, 40)}" and holds characters outside ASCII; brick reads UTF-8 only (send the body as UTF-8)`);
}

/** Parse the body and read its root; the texts set aside for it are visible only meanwhile. */
function readDocument<T>(body: Buffer | Uint8Array | string | InPlaceBody, root: string, read: (node: Node) => T): T {
  const xml = body instanceof InPlaceBody ? body.xml : decodeBody(body);
  checkEncoding(xml, body instanceof InPlaceBody ? body : undefined);
  const { node, texts } = body instanceof InPlaceBody ? parseDocument(xml, root, body.texts, () => body.wholeXml()) : parseDocument(xml, root);
  setAside = texts;
  setAsideViews = body instanceof InPlaceBody ? body.views : undefined;
  try {
    return read(node);
  } finally {
    setAside = undefined;
    setAsideViews = undefined;
  }
}

const NONCHAR_FFFE = Buffer.from([0xef, 0xbf, 0xbe]);
const NONCHAR_FFFF = Buffer.from([0xef, 0xbf, 0xbf]);

/**
 * A request body whose long character-data runs (file contents; found while the body was read, see
 * body-scan.ts) are checked where they lie instead of going through the XML parser: UTF-8 and the
 * two non-characters here, control bytes during the scan, '&' excluded by the scan. The rest of the
 * document, with a per-body random key in place of each run, is read exactly as any other body.
 * With `textViews` (a call that carries file contents) a run that is a <string>'s or an untyped
 * <value>'s whole text is handed over as a view of the body (isTextView), not copied into a string.
 */
export class InPlaceBody {
  readonly xml: string;
  readonly texts = new Map<string, string>();
  readonly views: Map<string, Buffer> | undefined;
  constructor(
    private readonly body: Buffer,
    runs: readonly number[],
    textViews = false,
  ) {
    if (textViews) this.views = new Map();
    const nonce = randomBytes(12).toString('hex');
    const parts: string[] = [];
    let at = 0;
    for (let k = 0; k < runs.length; k += 2) {
      const view = body.subarray(runs[k], runs[k + 1]);
      parts.push(decodeBody(body.subarray(at, runs[k])));
      if (!isUtf8(view)) bad('the body is not valid UTF-8');
      if (view.includes(NONCHAR_FFFE) || view.includes(NONCHAR_FFFF)) bad('the body holds a control character XML does not allow');
      const key = `brick-large-text-${nonce}-${k / 2}`;
      if (this.views) this.views.set(key, Object.defineProperty(view, TEXT_VIEW, { value: true }));
      else this.texts.set(key, view.toString('utf8'));
      parts.push(key);
      at = runs[k + 1];
    }
    parts.push(decodeBody(body.subarray(at)));
    this.xml = parts.join('');
  }

  /** Whether any byte of the body is outside ASCII. */
  hasNonAscii(): boolean {
    return !isAscii(this.body);
  }

  /** The whole document, for an error message's position; not for bodies over 1 MiB. */
  wholeXml(): string | undefined {
    return this.body.length <= 1024 * 1024 ? decodeBody(this.body) : undefined;
  }
}

export interface MethodCall {
  method: string;
  params: XmlRpcValue[];
}

function decodeParams(params: Node | undefined): XmlRpcValue[] {
  if (!params) return [];
  return elems(params, 'params').map((p) => (tagOf(p) === 'param' ? decodeValue(one(p, 'param', 'value'), 1) : bad(`<params> must hold <param>s, not <${tagOf(p)}>`)));
}


// ---- the fast path for plainly written calls ----
//
// Most calls are written plainly: a declaration, then elements with no attributes, namespaces,
// comments, CDATA, entities or carriage returns, and whitespace only between elements. For those,
// a direct scan builds the same values without fast-xml-parser's two passes (validate, then parse:
// about 15 of the 25 µs of a trivial call). The scan never refuses anything: on anything it does not
// recognise it gives up (returns undefined) and the body goes the full way, which refuses or reads
// it exactly as before. So it only ever answers for documents the full path reads to the same value
// (test/unit/xmlrpc-codec-fast.test.ts compares the two on every body of a large generated corpus).
const DECLS = ['<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-8"?>', "<?xml version='1.0'?>", '<?xml version="1.0" encoding="utf-8"?>'];
// What plain text may hold: no markup, no entity, no '>' (']]>' is not allowed in text), no CR (the
// parser's newline handling), no character XML forbids (checked for the whole document first).
const PLAIN_TEXT = /^[^<>&\r]*$/;
const GIVE_UP = Symbol('give up');
type Fast<T> = T | typeof GIVE_UP;

class FastScan {
  at = 0;
  constructor(readonly xml: string) {}
  ws(): void {
    const x = this.xml;
    let i = this.at;
    for (let c = x.charCodeAt(i); c === 0x20 || c === 0x0a || c === 0x09; c = x.charCodeAt(++i));
    this.at = i;
  }
  /** Consume `tag` (e.g. "<value>") if it is next. */
  take(tag: string): boolean {
    if (!this.xml.startsWith(tag, this.at)) return false;
    this.at += tag.length;
    return true;
  }
  /** Plain text up to the next '<', or GIVE_UP. */
  text(): Fast<string> {
    const end = this.xml.indexOf('<', this.at);
    if (end < 0) return GIVE_UP;
    const t = this.xml.slice(this.at, end);
    if (!PLAIN_TEXT.test(t)) return GIVE_UP;
    this.at = end;
    return t;
  }
  /** The element name at `<name>` (no attributes), without consuming it; '' when none. */
  peekTag(): string {
    const x = this.xml;
    if (x.charCodeAt(this.at) !== 0x3c) return '';
    const gt = x.indexOf('>', this.at + 1);
    if (gt < 0 || gt - this.at > 20) return '';
    const name = x.slice(this.at + 1, gt);
    return /^[a-zA-Z][a-zA-Z0-9.]*\/?$/.test(name) ? name : '';
  }
}

function fastValue(r: FastScan, depth: number): Fast<XmlRpcValue> {
  // At "<value>" already consumed. Depths near the limit go the full way (which counts them).
  if (depth > MAX_VALUE_DEPTH - 4) return GIVE_UP;
  const lead = r.text();
  if (lead === GIVE_UP) return GIVE_UP;
  if (r.take('</value>')) return lead; // untyped <value>text</value> (or empty) is a string
  if (lead.trim() !== '' || /[^ \n\t]/.test(lead)) return GIVE_UP; // text beside a type element
  const tag = r.peekTag();
  if (!tag) return GIVE_UP;
  let v: Fast<XmlRpcValue>;
  if (tag === 'nil/') {
    r.at += 6;
    v = null;
  } else if (tag === 'array') {
    r.at += 7;
    r.ws();
    if (!r.take('<data>')) return GIVE_UP;
    const out: XmlRpcValue[] = [];
    for (;;) {
      r.ws();
      if (r.take('</data>')) break;
      if (!r.take('<value>')) return GIVE_UP;
      const x = fastValue(r, depth + 1);
      if (x === GIVE_UP) return GIVE_UP;
      out.push(x);
    }
    r.ws();
    if (!r.take('</array>')) return GIVE_UP;
    v = out;
  } else if (tag === 'struct') {
    r.at += 8;
    const out: XmlRpcStruct = Object.create(null);
    for (;;) {
      r.ws();
      if (r.take('</struct>')) break;
      if (!r.take('<member>')) return GIVE_UP;
      r.ws();
      if (!r.take('<name>')) return GIVE_UP;
      const key = r.text();
      if (key === GIVE_UP || !r.take('</name>') || Object.hasOwn(out, key)) return GIVE_UP;
      r.ws();
      if (!r.take('<value>')) return GIVE_UP;
      const x = fastValue(r, depth + 1);
      if (x === GIVE_UP) return GIVE_UP;
      r.ws();
      if (!r.take('</member>')) return GIVE_UP;
      out[key] = x;
    }
    v = out;
  } else if (SCALAR_TYPES.has(tag)) {
    r.at += tag.length + 2;
    const t = r.text();
    if (t === GIVE_UP || !r.take(`</${tag}>`)) return GIVE_UP;
    try {
      v = decodeScalar(tag, t);
    } catch {
      return GIVE_UP; // the full path gives the fault
    }
  } else return GIVE_UP;
  r.ws();
  return r.take('</value>') ? v : GIVE_UP;
}

/** A plainly written methodCall read directly; undefined when the full path must read it. */
export function parseMethodCallFast(xml: string): MethodCall | undefined {
  if (FORBIDDEN_CHAR.test(xml)) return undefined;
  const r = new FastScan(xml);
  for (const d of DECLS)
    if (r.take(d)) {
      r.ws();
      break;
    }
  if (!r.take('<methodCall>')) return undefined;
  r.ws();
  if (!r.take('<methodName>')) return undefined;
  const name = r.text();
  if (name === GIVE_UP || !r.take('</methodName>')) return undefined;
  const method = name.trim();
  if (!method || method.length > MAX_METHOD_NAME || !/^[A-Za-z0-9_.:/-]+$/.test(method)) return undefined;
  r.ws();
  const params: XmlRpcValue[] = [];
  if (r.take('<params>')) {
    for (;;) {
      r.ws();
      if (r.take('</params>')) break;
      if (!r.take('<param>')) return undefined;
      r.ws();
      if (!r.take('<value>')) return undefined;
      const v = fastValue(r, 1);
      if (v === GIVE_UP) return undefined;
      r.ws();
      if (!r.take('</param>')) return undefined;
      params.push(v);
    }
    r.ws();
  }
  if (!r.take('</methodCall>')) return undefined;
  r.ws();
  return r.at === xml.length ? { method, params } : undefined;
}

/** Parse a methodCall body. Throws CodecError when it is not acceptable. */
export function parseMethodCall(body: Buffer | Uint8Array | string | InPlaceBody): MethodCall {
  if (!(body instanceof InPlaceBody)) {
    const xml = decodeBody(body);
    return parseMethodCallFast(xml) ?? readDocument(xml, 'methodCall', readMethodCall);
  }
  return readDocument(body, 'methodCall', readMethodCall);
}

/** The full path only (tests compare it with the fast path). */
export function parseMethodCallFull(body: Buffer | Uint8Array | string): MethodCall {
  return readDocument(body, 'methodCall', readMethodCall);
}

function readMethodCall(call: Node): MethodCall {
  const parts = elems(call, 'methodCall');
  const name = parts.find((n) => tagOf(n) === 'methodName') ?? bad('<methodCall> has no <methodName>');
  const params = parts.find((n) => tagOf(n) === 'params');
  if (parts.length !== (params ? 2 : 1)) bad('<methodCall> must hold one <methodName> and at most one <params>');
  const method = textOf(name, 'methodName').trim();
  if (!method || method.length > MAX_METHOD_NAME || !/^[A-Za-z0-9_.:/-]+$/.test(method))
    bad(`bad method name "${method.slice(0, 60)}": letters, digits and _ . : / - only, at most ${MAX_METHOD_NAME}`);
  return { method, params: decodeParams(params) };
}

/** Parse a methodResponse body: the value, or an XmlRpcFault thrown. Throws CodecError if malformed. */
export function parseMethodResponse(body: Buffer | Uint8Array | string): XmlRpcValue {
  return readDocument(body, 'methodResponse', readMethodResponse);
}

function readMethodResponse(resp: Node): XmlRpcValue {
  const e = elems(resp, 'methodResponse');
  if (e.length !== 1) bad('<methodResponse> must hold one <params> or one <fault>');
  if (tagOf(e[0]) === 'fault') {
    const f = decodeValue(one(e[0], 'fault', 'value'), 1) as XmlRpcStruct;
    const code = f && typeof f === 'object' ? f.faultCode : undefined;
    const msg = f && typeof f === 'object' ? f.faultString : undefined;
    if (typeof code !== 'number' || typeof msg !== 'string') bad('<fault> must be a struct with faultCode (int) and faultString (string)');
    throw new XmlRpcFault(code as number, msg as string);
  }
  if (tagOf(e[0]) !== 'params') bad(`<methodResponse> must hold <params> or <fault>, not <${tagOf(e[0])}>`);
  const params = decodeParams(e[0]);
  if (params.length !== 1) bad('<methodResponse> must hold exactly one <param>');
  return params[0];
}

// ---- writing ----

// Control characters XML 1.0 forbids, and lone UTF-16 surrogates.
const NOT_XML = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const esc = (s: string): string => {
  // XML 1.0 cannot carry these characters at all: replace them rather than emit a broken document.
  // \r is written as a reference so the reader's newline normalisation keeps it.
  const clean = s.replace(NOT_XML, '\uFFFD');
  return clean.replace(/[&<>\r]/g, (c: string) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&#13;'));
};
const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Thrown for a value that cannot be written (NaN, a function, nesting too deep): a bug in brick. */
export class EncodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EncodeError';
  }
}

function encodeValue(v: unknown, depth: number, out: string[]): void {
  if (depth > MAX_VALUE_DEPTH) throw new EncodeError(`reply nested deeper than ${MAX_VALUE_DEPTH} levels`);
  if (v === null || v === undefined) return void out.push('<value><nil/></value>');
  switch (typeof v) {
    case 'boolean':
      return void out.push(`<value><boolean>${v ? 1 : 0}</boolean></value>`);
    case 'string':
      return void out.push(`<value><string>${esc(v)}</string></value>`);
    case 'bigint':
      if (v > 9223372036854775807n || v < -9223372036854775808n) throw new EncodeError(`integer ${v} does not fit in <i8>`);
      return void out.push(v >= INT32_MIN && v <= INT32_MAX ? `<value><int>${v}</int></value>` : `<value><i8>${v}</i8></value>`);
    case 'number':
      if (!Number.isFinite(v)) throw new EncodeError(`cannot write ${v} in XML-RPC`);
      if (Number.isInteger(v)) {
        if (v >= INT32_MIN && v <= INT32_MAX) return void out.push(`<value><int>${v}</int></value>`);
        if (Number.isSafeInteger(v)) return void out.push(`<value><i8>${v}</i8></value>`);
        return void out.push(`<value><double>${v}</double></value>`); // beyond 2^53 it is not an exact integer
      }
      return void out.push(`<value><double>${v}</double></value>`);
    case 'object':
      break;
    default:
      throw new EncodeError(`cannot write a ${typeof v} in XML-RPC`);
  }
  if (v instanceof XmlRpcI8) return void out.push(`<value><i8>${v.value}</i8></value>`);
  if (v instanceof XmlRpcDouble) {
    if (!Number.isFinite(v.value)) throw new EncodeError(`cannot write ${v.value} in XML-RPC`);
    const s = String(v.value);
    return void out.push(`<value><double>${/[.eE]/.test(s) ? s : s + '.0'}</double></value>`);
  }
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new EncodeError('cannot write an invalid Date');
    return void out.push(
      `<value><dateTime.iso8601>${pad(v.getUTCFullYear(), 4)}${pad(v.getUTCMonth() + 1)}${pad(v.getUTCDate())}T${pad(v.getUTCHours())}:${pad(v.getUTCMinutes())}:${pad(v.getUTCSeconds())}</dateTime.iso8601></value>`,
    );
  }
  if (isTextView(v)) return void out.push(`<value><string>${esc(v.toString('utf8'))}</string></value>`);
  if (v instanceof Uint8Array) return void out.push(`<value><base64>${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')}</base64></value>`);
  if (Array.isArray(v)) {
    out.push('<value><array><data>');
    for (const x of v) encodeValue(x, depth + 1, out);
    return void out.push('</data></array></value>');
  }
  out.push('<value><struct>');
  for (const k of Object.keys(v)) {
    out.push(`<member><name>${esc(k)}</name>`);
    encodeValue((v as Record<string, unknown>)[k], depth + 1, out);
    out.push('</member>');
  }
  out.push('</struct></value>');
}

/** One value as XML (`<value>…</value>`). Throws EncodeError. */
export function encodeValueXml(v: unknown): string {
  const out: string[] = [];
  encodeValue(v, 1, out);
  return out.join('');
}

const DECL = '<?xml version="1.0" encoding="UTF-8"?>\n';

export function serializeResponse(v: unknown): string {
  return `${DECL}<methodResponse><params><param>${encodeValueXml(v)}</param></params></methodResponse>\n`;
}

export function serializeFault(code: number, message: string): string {
  return `${DECL}<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>${code | 0}</int></value></member><member><name>faultString</name><value><string>${esc(message)}</string></value></member></struct></value></fault></methodResponse>\n`;
}

export function serializeMethodCall(method: string, params: readonly unknown[]): string {
  const out: string[] = [`${DECL}<methodCall><methodName>${esc(method)}</methodName><params>`];
  for (const p of params) {
    out.push('<param>');
    encodeValue(p, 1, out);
    out.push('</param>');
  }
  out.push('</params></methodCall>\n');
  return out.join('');
}

/** The XML-RPC type name of a decoded value (one definition, in rpc/values.ts). */
export { typeOfValue } from '../rpc/values.js';
