import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CodecError,
  parseMethodCall,
  parseMethodResponse,
  serializeFault,
  serializeMethodCall,
  serializeResponse,
  XmlRpcFault,
  encodeValueXml,
} from '../../src/agent-extension/codec.js';
import { XmlRpcDouble } from '../../src/rpc/values.js';

const call = (params: string, name = 'm') => `<?xml version="1.0"?><methodCall><methodName>${name}</methodName><params>${params}</params></methodCall>`;
const p = (v: string) => `<param><value>${v}</value></param>`;
const one = (v: string) => parseMethodCall(call(p(v))).params[0];
const refused = (body: string | Buffer, re?: RegExp) =>
  assert.throws(() => parseMethodCall(body), (e: unknown) => e instanceof CodecError && (!re || re.test(e.message)), `should refuse: ${String(body).slice(0, 120)}`);

test('every XML-RPC type reads as the documented JS value', () => {
  assert.equal(one('<int>42</int>'), 42);
  assert.equal(one('<i4>-7</i4>'), -7);
  assert.equal(one('<int> +5 </int>'), 5);
  assert.equal(one('<i8>1099511627776</i8>'), 2 ** 40);
  assert.equal(one('<i8>9223372036854775807</i8>'), 9223372036854775807n);
  assert.equal(one('<ex:i8>-9007199254740993</ex:i8>'), -9007199254740993n);
  assert.equal(one('<boolean>1</boolean>'), true);
  assert.equal(one('<boolean>0</boolean>'), false);
  assert.equal(one('<double>-1.5e3</double>'), -1500);
  assert.equal(one('<string>a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos; &#65;&#x42;&#13;</string>'), 'a <b> & "c" \'d\' AB\r');
  assert.equal(one('<string><![CDATA[x<y & &amp;]]></string>'), 'x<y & &amp;');
  assert.equal(one('untyped  text '), 'untyped  text ');
  assert.equal(one(''), '');
  assert.equal(one('<string>žluťoučký € 𝄞</string>'), 'žluťoučký € 𝄞');
  assert.deepEqual(one('<base64>AAFiaW5hcnn/</base64>'), Buffer.from('\x00\x01binary\xff', 'latin1'));
  assert.deepEqual(one('<dateTime.iso8601>20250102T03:04:05</dateTime.iso8601>'), new Date(Date.UTC(2025, 0, 2, 3, 4, 5)));
  assert.deepEqual(one('<dateTime.iso8601>2025-01-02T03:04:05+01:00</dateTime.iso8601>'), new Date(Date.UTC(2025, 0, 2, 2, 4, 5)));
  assert.equal(one('<nil/>'), null);
  assert.equal(one('<ex:nil/>'), null);
  assert.deepEqual(one('<array><data><value><int>1</int></value><value>x</value></data></array>'), [1, 'x']);
  assert.deepEqual(one('<array><data/></array>'), []);
  const s = one('<struct><member><name>a</name><value><int>1</int></value></member><member><name>b</name><value><struct/></value></member></struct>');
  assert.equal(Object.getPrototypeOf(s), null);
  assert.equal((s as Record<string, unknown>).a, 1);
  assert.deepEqual(parseMethodCall('<methodCall><methodName>system.listMethods</methodName></methodCall>'), { method: 'system.listMethods', params: [] });
});

test('__proto__ and constructor struct members are plain keys and change no prototype', () => {
  const s = one(
    '<struct><member><name>__proto__</name><value><struct><member><name>isAdmin</name><value><boolean>1</boolean></value></member></struct></value></member>' +
      '<member><name>constructor</name><value>x</value></member></struct>',
  ) as Record<string, unknown>;
  assert.deepEqual(Object.keys(s).sort(), ['__proto__', 'constructor']);
  assert.equal(Object.getPrototypeOf(s), null);
  assert.equal((s as { isAdmin?: unknown }).isAdmin, undefined);
  assert.equal(({} as { isAdmin?: unknown }).isAdmin, undefined);
  assert.equal(s.constructor, 'x');
});

test('strict: malformed, hostile or ambiguous bodies are refused with a message', () => {
  refused(call(p('<int>1</i4>')), /closing tag/);
  refused(call(p('<int>12abc</int>')), /not an integer/);
  refused(call(p('<int>2147483648</int>')), /outside 32 bits/);
  refused(call(p('<i8>9223372036854775808</i8>')), /64 bits/);
  refused(call(p('<boolean>true</boolean>')), /0 or 1/);
  refused(call(p('<double>NaN</double>')));
  refused(call(p('<double>1e999</double>')), /range/);
  refused(call(p('<dateTime.iso8601>20251302T00:00:00</dateTime.iso8601>')), /no such date/);
  refused(call(p('<base64>!!!</base64>')), /base64/);
  // A dangling last character (a truncated body) or padding that does not end a group of four.
  refused(call(p('<base64>QUJD\nR</base64>')), /5 characters is not a whole number of bytes/);
  refused(call(p('<base64>Q</base64>')), /base64/);
  refused(call(p('<base64>QQ=</base64>')), /with padding/);
  refused(call(p('<base64>QUJDR===</base64>')), /base64/);
  assert.deepEqual(one('<base64>QUJD\nRA==</base64>'), Buffer.from('ABCD'));
  assert.deepEqual(one('<base64>QUJDRA</base64>'), Buffer.from('ABCD'));
  assert.deepEqual(one('<base64>QUJDREU</base64>'), Buffer.from('ABCDE'));
  assert.deepEqual(one('<base64></base64>'), Buffer.alloc(0));
  refused(call(p('<INT>1</INT>')), /unknown XML-RPC type/);
  refused(call(p('<int>1</int><int>2</int>')), /exactly one/);
  refused(call(p('<struct><member><name>a</name><value>1</value></member><member><name>a</name><value>2</value></member></struct>')), /twice/);
  refused(call(p('<struct><member><value>1</value></member></struct>')), /name/);
  refused(call(p('<array><value>1</value></array>')), /data/);
  refused(call(p('<nil>x</nil>')), /empty/);
  refused(call(p('1')) + 'trailing', /well-formed/);
  refused(call(p('1')) + '<methodCall/>', /exactly one/);
  refused('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>' + call(p('&a;')), /DOCTYPE/);
  refused(call(p('<string>&xxe;</string>')), /entity/);
  refused(call(p('<string>&nbsp;</string>')), /entity/);
  refused(call(p('<string>a & b</string>')), /&/);
  refused(call(p('<string>&#0;</string>')), /character/);
  refused(call(p('<string>\u0001</string>')), /control character/);
  refused(Buffer.concat([Buffer.from(call(p('<string>'))), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('</string></value></param></params></methodCall>')]), /UTF-8/);
  refused('<methodResponse/>', /methodCall/);
  refused('<methodCall><params/></methodCall>', /methodName/);
  refused(call('', 'bad name!'), /method name/);
  refused(call('<param><value>1</value></param>stray'), /unexpected text/);
  refused('');
  refused('not xml at all');
  const deep = (n: number) => call(p('<array><data><value>'.repeat(n) + '1' + '</value></data></array>'.repeat(n)));
  assert.doesNotThrow(() => parseMethodCall(deep(60)));
  refused(deep(70), /nested deeper/);
  refused(deep(20000), /nested deeper/);
});

test('a processing instruction without a target is refused: fast-xml-parser would read what its validator skipped', () => {
  // The validator takes `<?>` for a PI running to the next `?>`; the parser for a whole PI, and
  // read the four params after it (the read limits, which skip PIs as XML does, counted none).
  const hidden = `<?>${p('1').repeat(4)}<param><value><string>?></string></value></param>`;
  refused(call(hidden), /processing instruction without a target/);
  refused(call(`<? x?>${p('1')}`), /processing instruction without a target/);
  refused(call(`<??>${p('1')}`), /processing instruction without a target/);
  refused(call(`<![CDATA[<!--]]>${hidden}-->`), /processing instruction without a target/);
  // Inside CDATA or a comment it is text; a PI with a target is still read (and ignored).
  assert.deepEqual(parseMethodCall(call(p('<string><![CDATA[<?>]]></string>'))).params, ['<?>']);
  assert.deepEqual(parseMethodCall(call(`<!-- <?> -->${p('1')}`)).params, ['1']);
  assert.deepEqual(parseMethodCall(call(`<?pi x?>${p('1')}`)).params, ['1']);
});

test('a body that declares an encoding other than UTF-8 is read only while it is all ASCII, never misread', () => {
  const latin1 = (text: string) => `<?xml version='1.0' encoding='iso-8859-1'?>\n<methodCall><methodName>m</methodName><params>${p(`<string>${text}</string>`)}</params></methodCall>`;
  // What Python's ServerProxy(encoding='iso-8859-1') sends for "Ã©": its Latin-1 bytes C3 A9, which are UTF-8 "é".
  refused(Buffer.from(latin1('Ã©'), 'latin1'), /encoding "iso-8859-1" .*UTF-8 only/);
  refused(Buffer.from(latin1('é'), 'latin1'), /UTF-8/);
  assert.deepEqual(parseMethodCall(Buffer.from(latin1('plain'), 'latin1')).params, ['plain']);
  assert.deepEqual(parseMethodCall(Buffer.from(latin1('&#233;'), 'latin1')).params, ['é']);
  const utf8 = (enc: string) => `<?xml version="1.0" encoding="${enc}"?><methodCall><methodName>m</methodName><params>${p('<string>é</string>')}</params></methodCall>`;
  for (const enc of ['UTF-8', 'utf-8', 'utf8']) assert.deepEqual(parseMethodCall(Buffer.from(utf8(enc))).params, ['é']);
  refused(Buffer.from(utf8('US-ASCII')), /encoding "US-ASCII"/);
});

test('writing: <i8> outside int32, <nil/>, doubles, dates, base64, escaping', () => {
  assert.equal(encodeValueXml(2147483647), '<value><int>2147483647</int></value>');
  assert.equal(encodeValueXml(2147483648), '<value><i8>2147483648</i8></value>');
  assert.equal(encodeValueXml(-2147483649), '<value><i8>-2147483649</i8></value>');
  assert.equal(encodeValueXml(68719476736), '<value><i8>68719476736</i8></value>');
  assert.equal(encodeValueXml(2n ** 62n), '<value><i8>4611686018427387904</i8></value>');
  assert.equal(encodeValueXml(5n), '<value><int>5</int></value>');
  assert.equal(encodeValueXml(null), '<value><nil/></value>');
  assert.equal(encodeValueXml(undefined), '<value><nil/></value>');
  assert.equal(encodeValueXml(1.5), '<value><double>1.5</double></value>');
  assert.equal(encodeValueXml(new XmlRpcDouble(2)), '<value><double>2.0</double></value>');
  assert.equal(encodeValueXml(new Date(Date.UTC(2025, 0, 2, 3, 4, 5))), '<value><dateTime.iso8601>20250102T03:04:05</dateTime.iso8601></value>');
  assert.equal(encodeValueXml(Buffer.from('hi')), '<value><base64>aGk=</base64></value>');
  assert.equal(encodeValueXml('a<&>\r\u0000'), '<value><string>a&lt;&amp;&gt;&#13;\uFFFD</string></value>');
  assert.throws(() => encodeValueXml(NaN));
  assert.throws(() => encodeValueXml(() => 1));
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  assert.throws(() => encodeValueXml(cyclic), /nested deeper/);
});

test('round trip through methodCall and methodResponse keeps every value', () => {
  const v = {
    int: 1,
    neg: -2147483648,
    big: 2 ** 40,
    huge: 9223372036854775807n,
    dbl: 0.25,
    t: true,
    f: false,
    s: 'a\r\nb <&> "q" ž',
    nil: null,
    date: new Date(Date.UTC(1999, 11, 31, 23, 59, 59)),
    bin: Buffer.from([0, 1, 2, 255]),
    arr: [[], [1, ['x']], {}],
    '__proto__': 'plain',
  };
  const back = parseMethodCall(serializeMethodCall('echo', [v, 'second'])).params;
  assert.equal(back.length, 2);
  assert.deepEqual(JSON.parse(JSON.stringify(back[0], (_k, x) => (typeof x === 'bigint' ? x.toString() : x))), JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x))));
  assert.equal((back[0] as Record<string, unknown>).huge, 9223372036854775807n);
  assert.deepEqual(parseMethodResponse(serializeResponse([1, null])), [1, null]);
  assert.throws(
    () => parseMethodResponse(serializeFault(1002, 'bridge xenbr0 exists & differs')),
    (e: unknown) => e instanceof XmlRpcFault && e.faultCode === 1002 && e.faultString === 'bridge xenbr0 exists & differs',
  );
});

describe('long text runs (set aside before parsing, put back when read)', () => {
  const big = (c: string, n = 40_000) => c.repeat(n);
  const call = (params: string) => `<?xml version="1.0"?><methodCall><methodName>m</methodName><params>${params}</params></methodCall>`;

  it('a 10 MB string arrives intact, typed or untyped (as Apache sends it), with entities decoded', () => {
    const content = big('x', 10 * 1024 * 1024) + '\n&<>"\'';
    assert.equal(parseMethodCall(serializeMethodCall('ovs_upload_file', ['/a', 'b', content])).params[2], content);
    const untyped = parseMethodCall(call(`<param><value>${big('y')}&amp;&#65;</value></param>`)).params[0] as string;
    assert.equal(untyped, big('y') + '&A');
  });

  it('long text in struct members and arrays', () => {
    const r = parseMethodCall(
      call(`<param><value><struct><member><name>k</name><value><string>${big('q')}</string></value></member></struct></value></param>` +
        `<param><value><array><data><value>${big('r')}</value><value>short</value></data></array></value></param>`),
    ).params;
    assert.equal((r[0] as Record<string, string>).k, big('q'));
    assert.deepEqual(r[1], [big('r'), 'short']);
  });

  it('long junk where only elements may be is still refused', () => {
    assert.throws(() => parseMethodCall(call(`<param><value><struct>${big('z')}</struct></value></param>`)), /unexpected text inside <struct>/);
    assert.throws(() => parseMethodCall(call(`<param><value><string>${big('z')}&bogus;</string></value></param>`)), /entity &bogus; is not allowed/);
  });

  it('a sender cannot smuggle a set-aside key: text that looks like one is just text', () => {
    const fake = 'brick-large-text-000000000000000000000000-0';
    const r = parseMethodCall(call(`<param><value>${fake}</value></param><param><value>${big('w')}</value></param>`)).params;
    assert.deepEqual(r, [fake, big('w')]);
  });

  it('CDATA, comments and a ">" inside an attribute take the plain path and read the same', () => {
    assert.equal(parseMethodCall(call(`<param><value><string><![CDATA[${big('c')}<]]></string></value></param>`)).params[0], big('c') + '<');
    assert.equal(parseMethodCall(call(`<!-- note --><param><value>${big('d')}</value></param>`)).params[0], big('d'));
    const attr = `<?xml version="1.0"?><methodCall xmlns:ex="a>b"><methodName>m</methodName><params><param><value>${big('e')}</value></param></params></methodCall>`;
    assert.equal(parseMethodCall(attr).params[0], big('e'));
  });

  it('long whitespace around the root element is still just whitespace', () => {
    const pad = ' \n'.repeat(20_000);
    assert.equal(parseMethodCall(`<?xml version="1.0"?>${pad}<methodCall><methodName>m</methodName><params><param><value>${big('v')}</value></param></params></methodCall>${pad}`).params[0], big('v'));
  });

  it('a long response string (the client side) arrives intact', () => {
    assert.equal(parseMethodResponse(serializeResponse(big('s', 100_000))), big('s', 100_000));
  });
});
