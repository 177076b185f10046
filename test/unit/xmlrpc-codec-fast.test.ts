// The codec's fast path for plainly written calls (parseMethodCallFast) must never change what a
// body means: for every body it answers, the full path (fast-xml-parser, validate then parse) must
// accept it too and give the same method and the same values; everything else it leaves to the full
// path. Checked on a seeded corpus of generated calls, written the ways real clients write them
// (Apache XML-RPC in one line, Python's xmlrpc.client with newlines), and mutated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMethodCall, parseMethodCallFast, parseMethodCallFull, serializeMethodCall, CodecError } from '../../src/agent-extension/codec.js';
import { prng } from '../fixtures/prng.js';

const rnd = prng(0x5eed19);
const int = (n: number) => Math.floor(rnd() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];

function randomValue(depth = 0): unknown {
  switch (int(depth > 3 ? 8 : 10)) {
    case 0: return int(2 ** 31) - 2 ** 30;
    case 1: return pick([2 ** 40, -(2 ** 33), 9223372036854775807n, 0, -1]);
    case 2: return rnd() * 1e6;
    case 3: return rnd() < 0.5;
    case 4: return pick(['', 'plain', ' spaced ', 'a<b&c>', 'žluť €', '\n\t', 'x\ry', ']]>', '"\'', '𝄞', 'br0.100', '/var/run/x']);
    case 5: return null;
    case 6: return new Date(Date.UTC(1970 + int(100), int(12), 1 + int(28), int(24), int(60), int(60)));
    case 7: return Buffer.from(Array.from({ length: int(12) }, () => int(256)));
    case 8: return Array.from({ length: int(4) }, () => randomValue(depth + 1));
    default: {
      const o: Record<string, unknown> = Object.create(null);
      for (let i = int(4); i > 0; i--) o[pick(['a', 'b', '__proto__', 'constructor', 'x y', '', 'k'])] = randomValue(depth + 1);
      return o;
    }
  }
}

/** The same call as Python's xmlrpc.client writes it: newlines between elements, its declaration. */
function pythonStyle(xml: string): string {
  return xml
    .replace('<?xml version="1.0" encoding="UTF-8"?>\n', pick(["<?xml version='1.0'?>\n", '<?xml version="1.0"?>', '', '<?xml version="1.0" encoding="utf-8"?>\n  ']))
    .replace(/><(\/?)(methodName|params|param|value|data|array|struct|member|name)>/g, (_m, sl: string, t: string) => `>${pick(['', '\n', '\n  ', ' ', '\t'])}<${sl}${t}>`);
}

const PIECES = ['<value>', '</value>', '<string>', '</string>', '<int>', '</int>', '<i4>', '<i8>', '<nil/>', '<nil></nil>', '<ex:nil/>', '<value/>', '<params/>', '<data/>',
  '<struct>', '</struct>', '<member>', '<name>', '</name>', '<array>', '<data>', '</data>', '<boolean>', '<double>', '<base64>', '<![CDATA[x]]>', '<!-- c -->',
  '<?pi x?>', '&amp;', '&lt;', '&#65;', '&nbsp;', '&', '\r\n', '\r', '\u0000', '\uFFFE', ' ', '\n', '>', ']]>', '<value a="1">', '<Value>', 'x', '12abc', '<!DOCTYPE x>'];

function mutate(s: string): string {
  for (let n = 1 + int(3); n > 0; n--) {
    const at = int(s.length + 1);
    switch (int(6)) {
      case 0: s = s.slice(0, at) + pick(PIECES) + s.slice(at); break;
      case 1: s = s.slice(0, at) + s.slice(at + 1 + int(12)); break;
      case 2: s = s.slice(0, at); break;
      case 3: s = s.replace(/-?\d+/, pick(['12abc', '99999999999999999999', '-0', '1e5', ' 7 ', '+3', '2147483648', '', '00'])); break;
      case 4: s = s + pick(['', '\n', '  \n', 'x', '<x/>', '<!-- c -->']); break;
      default: s = pick(['', ' ', '\n', '\uFEFF']) + s;
    }
  }
  return s;
}

function call(): string {
  const method = pick(['echo', 'get_module_version', 'system.multicall', 'network_ensure_bridge', 'a:b/c-d.e', ' spaced ']);
  return serializeMethodCall(method.trim() || 'x', Array.from({ length: int(4) }, () => randomValue())).replace('<methodName>x', `<methodName>${method}`);
}

function full(xml: string): { ok: true; v: unknown } | { ok: false; e: unknown } {
  try {
    return { ok: true, v: parseMethodCallFull(xml) };
  } catch (e) {
    return { ok: false, e };
  }
}

test('fast path: every body it reads, the full path reads to the same method and values', () => {
  let fast = 0;
  let plainFast = 0;
  let plain = 0;
  const N = 12_000;
  for (let i = 0; i < N; i++) {
    const base = i % 3 === 0 ? call() : pythonStyle(call());
    const xml = i % 4 === 3 ? mutate(base) : base;
    const got = parseMethodCallFast(xml);
    const ref = full(xml);
    if (i % 4 !== 3) {
      plain++;
      if (got) plainFast++;
    }
    if (!got) continue;
    fast++;
    assert.ok(ref.ok, `the fast path read a body the full path refuses (${ref.ok ? '' : String(ref.e)}): ${JSON.stringify(xml)}`);
    assert.deepStrictEqual(got, ref.v, `different values for ${JSON.stringify(xml)}`);
  }
  // The fast path must really carry the plainly written calls (not just give up on everything).
  assert.ok(plainFast > plain * 0.5, `only ${plainFast} of ${plain} unmutated calls took the fast path`);
  assert.ok(fast > plainFast, 'some mutated bodies stay plain and take the fast path too');
});

test('fast path: what it leaves to the full path is still refused with the same message', () => {
  const refused = [
    '<?xml version="1.0"?><methodCall><methodName>x</methodName><params><param><value><int>12abc</int></value></param></params></methodCall>',
    '<methodCall><methodName>x</methodName><params><param><value><int>2147483648</int></value></param></params></methodCall>',
    '<methodCall><methodName>x</methodName><params><param><value><boolean>2</boolean></value></param></params></methodCall>',
    '<methodCall><methodName>x y</methodName></methodCall>',
    '<methodCall><methodName>x</methodName><params><param><value><struct><member><name>a</name><value>1</value></member><member><name>a</name><value>2</value></member></struct></value></param></params></methodCall>',
    '<methodCall><methodName>x</methodName></methodCall>trailing',
    '<methodCall><methodName>x</methodName><params><param><value>a<string>b</string></value></param></params></methodCall>',
    '<!DOCTYPE x><methodCall><methodName>x</methodName></methodCall>',
  ];
  for (const xml of refused) {
    assert.equal(parseMethodCallFast(xml), undefined, xml);
    let full: unknown;
    let viaServer: unknown;
    try {
      parseMethodCallFull(xml);
    } catch (e) {
      full = e;
    }
    try {
      parseMethodCall(Buffer.from(xml));
    } catch (e) {
      viaServer = e;
    }
    assert.ok(full instanceof CodecError && viaServer instanceof CodecError, xml);
    assert.equal((viaServer as Error).message, (full as Error).message);
  }
});

test('fast path: Apache XML-RPC and Python xmlrpc.client calls as they are sent', () => {
  const apache = '<?xml version="1.0" encoding="UTF-8"?><methodCall><methodName>ovs_upload_file</methodName><params><param><value>/etc/x</value></param><param><value><i4>7</i4></value></param><param><value><ex:nil/></value></param></params></methodCall>';
  const python = "<?xml version='1.0'?>\n<methodCall>\n<methodName>echo</methodName>\n<params>\n<param>\n<value><struct>\n<member>\n<name>a</name>\n<value><array><data>\n<value><int>1</int></value>\n<value><string>x</string></value>\n</data></array></value>\n</member>\n</struct></value>\n</param>\n</params>\n</methodCall>\n";
  assert.deepStrictEqual(parseMethodCallFast(python), parseMethodCallFull(python));
  assert.ok(parseMethodCallFast(python));
  // <ex:nil/> (a namespace prefix) goes the full way, which reads it as nil.
  assert.equal(parseMethodCallFast(apache), undefined);
  assert.deepStrictEqual(parseMethodCall(apache), { method: 'ovs_upload_file', params: ['/etc/x', 7, null] });
});
