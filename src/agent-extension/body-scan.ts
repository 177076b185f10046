// A byte-level scan of an XML-RPC request while it arrives, so the limits that matter are enforced
// before any tree is built: element and value counts, the number of params, multicall entries and
// value nesting. It also learns the method name early (the body limit depends on it: only calls
// that carry file contents may be large) and notes the long runs of character data (file contents),
// which the codec then reads in place instead of handing them to the XML parser.
//
// The scan is not the parser: it only refuses what the limits forbid and control characters XML
// does not allow anywhere. Everything else (well-formedness, types, DOCTYPE, entities) is still the
// codec's, which sees the same document; for a well-formed document the scan's element stack is
// exact (comments, CDATA, processing instructions and quoted attribute values are skipped as XML
// defines them), so its counts are exact too. A malformed document is refused by the codec anyway.
import { CodecError, MAX_VALUE_DEPTH, MAX_TAG_DEPTH } from './codec.js';

export interface ScanLimits {
  /** Most <param>s in <params>. */
  maxParams: number;
  /** Most <value> elements in the whole body. */
  maxValues: number;
  /** Most elements of any kind in the whole body. */
  maxElements: number;
  /** Most calls in one system.multicall. */
  maxMulticallCalls: number;
}

/** Character data runs at least this long (bytes) are read in place by the codec. */
export const LARGE_TEXT_BYTES = 16 * 1024;
const MAX_NAME = 64;
const MAX_METHOD_BYTES = 300;

const enum S {
  Text,
  Lt, // after '<'
  Name, // an open tag's name
  CloseName, // a close tag's name
  Attrs, // inside an open tag after its name
  Quote, // inside an attribute value
  Bang, // after '<!'
  Comment,
  Cdata,
  Pi,
  Decl, // <!DOCTYPE ...> and the like (the codec refuses them)
}

const CDATA_OPEN = '[CDATA[';

/**
 * The element names XML-RPC uses, as constant strings: a tag's name is looked up here from its
 * bytes, so the usual names cost no new string per tag (building them a character at a time was the
 * largest allocation of an ordinary call). Any other name is decoded from its bytes.
 */
const KNOWN_TAGS = ['methodCall', 'methodName', 'params', 'param', 'value', 'string', 'int', 'i4', 'i8', 'boolean', 'double', 'base64', 'dateTime.iso8601', 'nil', 'struct', 'member', 'name', 'array', 'data'];
const KNOWN_BY_LENGTH: string[][] = [];
for (const t of KNOWN_TAGS) (KNOWN_BY_LENGTH[t.length] ??= []).push(t);

/** The name in bytes[start, end) as a string (latin1: one character per byte). */
function tagName(bytes: Uint8Array, start: number, end: number): string {
  const len = end - start;
  for (const t of KNOWN_BY_LENGTH[len] ?? []) {
    let k = 0;
    while (k < len && t.charCodeAt(k) === bytes[start + k]) k++;
    if (k === len) return t;
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, len).toString('latin1');
}

export class BodyScan {
  /** Bytes seen so far. */
  bytes = 0;
  /** The methodName once its element closed (undefined while unknown or when not plain text). */
  method: string | undefined;
  /** True once <methodName> has closed (method may still be undefined: written with entities or CDATA). */
  methodKnown = false;
  /** [start, end) byte offsets of long character-data runs inside elements, without '&'. */
  readonly runs: number[] = [];
  params = 0;
  values = 0;
  elements = 0;
  calls = 0;

  private state = S.Text;
  private readonly stack: string[] = [];
  private valueDepth = 0;
  /** The tag name being read (its first MAX_NAME bytes). */
  private readonly nameBytes = new Uint8Array(MAX_NAME);
  private nameLen = 0;
  private bang = '';
  private quote = 0;
  private prev = 0; // the byte before, in tags, comments, CDATA and PIs
  private prev2 = 0;
  private runStart = 0;
  private runAmp = false;
  /** The methodName's text while it is read (its first MAX_METHOD_BYTES bytes). */
  private methodBytes: Buffer | undefined;
  private methodLen = 0;
  private methodPlain = true;

  constructor(private readonly limits: ScanLimits) {}

  /** Scan the next chunk; throws CodecError when a limit is passed. */
  push(chunk: Uint8Array): void {
    const base = this.bytes;
    const n = chunk.length;
    for (let i = 0; i < n; i++) {
      const c = chunk[i];
      if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) throw new CodecError('the body holds a control character XML does not allow');
      switch (this.state) {
        case S.Text: {
          // The hot loop of a large upload: stay here until the next '<'.
          let j = i;
          for (; j < n; j++) {
            const d = chunk[j];
            if (d === 0x3c) break;
            if (d < 0x20 && d !== 0x09 && d !== 0x0a && d !== 0x0d) throw new CodecError('the body holds a control character XML does not allow');
            if (d === 0x26) this.runAmp = true;
          }
          if (this.methodBytes) {
            for (let k = i; k < j && this.methodLen < MAX_METHOD_BYTES; k++) this.methodBytes[this.methodLen++] = chunk[k];
            if (this.runAmp) this.methodPlain = false;
          }
          i = j;
          if (j < n) this.textEnds(base + j);
          else i = n - 1;
          break;
        }
        case S.Lt:
          if (c === 0x2f) {
            this.state = S.CloseName;
            this.nameLen = 0;
          } else if (c === 0x21) {
            this.state = S.Bang;
            this.bang = '';
          } else if (c === 0x3f) {
            this.state = S.Pi;
            this.prev = 0;
          } else {
            this.state = S.Name;
            this.nameLen = 0;
            i--; // read it as the name's first byte
          }
          break;
        case S.Name:
          if (c === 0x3e) this.openTag(this.prev === 0x2f, base + i + 1);
          else if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.state = S.Attrs;
          else if (c !== 0x2f && this.nameLen < MAX_NAME) this.nameBytes[this.nameLen++] = c;
          this.prev = c;
          break;
        case S.Attrs:
          if (c === 0x3e) this.openTag(this.prev === 0x2f, base + i + 1);
          else if (c === 0x22 || c === 0x27) {
            this.state = S.Quote;
            this.quote = c;
          }
          this.prev = c;
          break;
        case S.Quote:
          if (c === this.quote) this.state = S.Attrs;
          this.prev = 0;
          break;
        case S.CloseName:
          if (c === 0x3e) this.closeTag(base + i + 1); // its name is not needed: it closes the element on top of the stack
          break;
        case S.Bang:
          this.bang += String.fromCharCode(c);
          if (this.bang === '--') {
            this.state = S.Comment;
            this.prev = this.prev2 = 0;
          } else if (this.bang === CDATA_OPEN) {
            this.state = S.Cdata;
            this.prev = this.prev2 = 0;
            if (this.methodBytes) this.methodPlain = false;
          } else if (!'--'.startsWith(this.bang) && !CDATA_OPEN.startsWith(this.bang)) {
            this.state = S.Decl;
            if (c === 0x3e) this.afterMarkup(base + i + 1);
          }
          break;
        case S.Comment:
          if (c === 0x3e && this.prev === 0x2d && this.prev2 === 0x2d) this.afterMarkup(base + i + 1);
          this.prev2 = this.prev;
          this.prev = c;
          break;
        case S.Cdata:
          if (c === 0x3e && this.prev === 0x5d && this.prev2 === 0x5d) this.afterMarkup(base + i + 1);
          this.prev2 = this.prev;
          this.prev = c;
          break;
        case S.Pi:
          if (c === 0x3e && this.prev === 0x3f) this.afterMarkup(base + i + 1);
          this.prev = c;
          break;
        case S.Decl:
          if (c === 0x3e) this.afterMarkup(base + i + 1);
          break;
      }
    }
    this.bytes = base + n; // a run still open at the end of the chunk keeps its start (body offsets)
  }

  /** A '<' at body offset `at` ends a text run. */
  private textEnds(at: number): void {
    if (at - this.runStart >= LARGE_TEXT_BYTES && !this.runAmp && this.stack.length > 0) this.runs.push(this.runStart, at);
    this.state = S.Lt;
    this.prev = 0;
  }

  private afterMarkup(next: number): void {
    this.state = S.Text;
    this.startRun(next);
  }

  private startRun(at: number): void {
    this.runStart = at;
    this.runAmp = false;
  }

  /** The open tag's name without a namespace prefix (what follows its last ':'). */
  private tag(): string {
    const b = this.nameBytes;
    let start = this.nameLen;
    while (start > 0 && b[start - 1] !== 0x3a) start--;
    return tagName(b, start, this.nameLen);
  }

  private openTag(selfClosing: boolean, next: number): void {
    const tag = this.tag();
    const l = this.limits;
    if (++this.elements > l.maxElements) throw new CodecError(`more than ${l.maxElements} elements in one request (server.max_values)`);
    const depth = this.stack.length + 1;
    if (depth > MAX_TAG_DEPTH) throw new CodecError(`elements nested deeper than ${MAX_TAG_DEPTH} levels`);
    if (tag === 'value') {
      if (++this.values > l.maxValues) throw new CodecError(`more than ${l.maxValues} values in one request (server.max_values)`);
      if (this.valueDepth + 1 > MAX_VALUE_DEPTH) throw new CodecError(`values nested deeper than ${MAX_VALUE_DEPTH} levels`);
      if (depth === 7 && this.method === 'system.multicall' && this.stack[5] === 'data' && this.stack[4] === 'array' && this.stack[2] === 'param')
        if (++this.calls > l.maxMulticallCalls) throw new CodecError(`system.multicall: more than ${l.maxMulticallCalls} calls in one request (server.max_multicall_calls)`);
    } else if (tag === 'param' && depth === 3 && this.stack[1] === 'params') {
      if (++this.params > l.maxParams) throw new CodecError(`more than ${l.maxParams} params in one request (server.max_params)`);
    }
    if (!selfClosing) {
      this.stack.push(tag);
      if (tag === 'value') this.valueDepth++;
      if (tag === 'methodName' && depth === 2 && !this.methodKnown) {
        this.methodBytes = Buffer.allocUnsafe(MAX_METHOD_BYTES);
        this.methodLen = 0;
      }
    }
    this.afterMarkup(next);
  }

  private closeTag(next: number): void {
    const top = this.stack.pop();
    if (top === 'value') this.valueDepth--;
    if (top === 'methodName' && this.methodBytes) {
      const name = this.methodBytes.toString('latin1', 0, this.methodLen).trim();
      this.method = this.methodPlain && /^[A-Za-z0-9_.:/-]{1,256}$/.test(name) ? name : undefined;
      this.methodKnown = true;
      this.methodBytes = undefined;
    }
    this.afterMarkup(next);
  }
}
