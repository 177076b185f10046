// Reading a request under its limits (body-scan.ts, request-body.ts): the server reads every body
// exactly as the codec alone does (long text runs read in place included), the scan gives the same
// answer however the body is cut into chunks, and each limit refuses with a fault that names it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig } from '../../src/config/load.js';
import { createServer } from '../../src/agent-extension/server.js';
import { method, optional, param } from '../../src/rpc/params.js';
import { Any, Plain, Str } from '../../src/rpc/formats.js';
import { isTextView } from '../../src/rpc/values.js';
import { CodecError, parseMethodCall, parseMethodResponse, serializeFault, serializeResponse, XmlRpcFault } from '../../src/agent-extension/codec.js';
import { BodyScan } from '../../src/agent-extension/body-scan.js';
import { basicAuth } from '../../src/agent-extension/client.js';
import { memoryLogger } from '../fixtures/server.js';

const methods = [
  method({ name: 'echo', params: [optional('value', Any), optional('more', Any)], returns: 'any', help: 'Returns its argument.', handler: async ([v]) => v ?? null }),
  method({ name: 'upload', carriesFile: true, params: [param('content', Any)], returns: 'any', help: 'Returns its argument.', handler: async ([v]) => v }),
  method({
    name: 'put',
    carriesFile: true,
    params: [param('name', Plain(4096)), param('label', Str), param('content', Any)],
    returns: 'any',
    help: 'Says what its arguments arrived as.',
    handler: async ([name, label, content]) => [typeof name, typeof label, isTextView(content)],
  }),
];

const c = defaultConfig();
Object.assign(c.server, { listen: '127.0.0.1:0', password: 'pw', password_file: '', tls_cert: '', tls_key: '', call_body_limit_bytes: 64 * 1024, body_limit_bytes: 4 * 1024 * 1024, max_params: 4, max_values: 100, max_multicall_calls: 3 });
const { log, lines } = memoryLogger('info');
const app = createServer(c, { log, methods });
after(() => app.close());
const auth = basicAuth('oracle', 'pw');
const post = (payload: string | Buffer) => app.inject({ method: 'POST', url: '/', headers: { authorization: auth, 'content-type': 'text/xml' }, payload });

/** What the codec alone makes of a body, as the server would reply. */
function expected(body: Buffer): string {
  try {
    const { params } = parseMethodCall(body);
    return serializeResponse(params[0] ?? null);
  } catch (e) {
    if (e instanceof CodecError) return serializeFault(-32700, e.message);
    throw e;
  }
}

const big = 'x'.repeat(20_000);
const call = (inner: string, method = 'upload') => `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params><param>${inner}</param></params></methodCall>`;
const BODIES: Array<[string, string | Buffer]> = [
  ['long string', call(`<value><string>${big}</string></value>`)],
  ['long untyped value', call(`<value>${big}</value>`)],
  ['long text with entities (not set aside)', call(`<value><string>${big}&amp;&lt;${big}</string></value>`)],
  ['long text beside CDATA', call(`<value><string>${big}<![CDATA[<b>&]]>${big}</string></value>`)],
  ['a comment holding tags, then long text', call(`<value><string><!-- <value><value> -->${big}</string></value>`)],
  ['a ">" in an attribute before long text', call(`<value a="x>y"><string>${big}</string></value>`)],
  ['long text in a struct and an array', call(`<value><struct><member><name>${big}</name><value><array><data><value>${big}</value></data></array></value></member></struct></value>`)],
  ['long whitespace around the root', ' '.repeat(20_000) + call('<value>1</value>') + '\n'.repeat(20_000)],
  ['long junk where elements belong', call(`<value><array>${big}<data></data></array></value>`)],
  ['multi-byte text', call(`<value><string>${'žluť €😀'.repeat(5000)}</string></value>`)],
  ['invalid UTF-8 inside a long run', Buffer.concat([Buffer.from(call(`<value><string>${big}`).slice(0, -0) ), Buffer.from([0xc3, 0x28]), Buffer.from(`${big}</string></value></param></params></methodCall>`)])],
  ['U+FFFE inside a long run', call(`<value><string>${big}\uFFFE${big}</string></value>`)],
  ['a control character inside a long run', call(`<value><string>${big}\u0001${big}</string></value>`)],
  ['long text after the root element', call('<value>1</value>') + big],
  ['a DOCTYPE', '<!DOCTYPE x [<!ENTITY a "b">]>' + call(`<value><string>${big}</string></value>`)],
  ['unclosed', call(`<value><string>${big}</value>`)],
  ['key look-alike', call(`<value><string>brick-large-text-000000000000000000000000-0</string></value>`)],
  ['65 levels deep', call(`${'<value><array><data>'.repeat(64)}<value>1</value>${'</data></array></value>'.repeat(64)}`)],
  ['64 levels deep', call(`${'<value><array><data>'.repeat(63)}<value>1</value>${'</data></array></value>'.repeat(63)}`)],
];

test('the server reads every body as the codec alone does, long text runs read in place included', async () => {
  for (const [name, body] of BODIES) {
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
    const r = await post(buf);
    assert.equal(r.statusCode, 200, name);
    assert.equal(r.body, expected(buf), name);
  }
});

test('the scan gives the same runs and counts however the body is cut into chunks', () => {
  const limits = { maxParams: 100, maxValues: 10_000, maxElements: 100_000, maxMulticallCalls: 100 };
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  for (const [name, body] of BODIES) {
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
    const whole = new BodyScan(limits);
    let wholeErr = '';
    try {
      whole.push(buf);
    } catch (e) {
      wholeErr = (e as Error).message;
    }
    if (name === 'long string' || name === 'long text beside CDATA') assert.ok(whole.runs.length >= 2, `${name}: its text is read in place`);
    for (let round = 0; round < 5; round++) {
      const s = new BodyScan(limits);
      let err = '';
      try {
        for (let at = 0; at < buf.length; ) {
          const n = 1 + rnd(round < 2 ? 7 : 5000);
          s.push(buf.subarray(at, at + n));
          at += n;
        }
      } catch (e) {
        err = (e as Error).message;
      }
      assert.equal(err, wholeErr, name);
      if (!err) assert.deepEqual([s.runs, s.values, s.elements, s.method], [whole.runs, whole.values, whole.elements, whole.method], name);
    }
  }
});

test('each limit refuses with a PARSE_ERROR fault naming it; a small body limit for ordinary calls', async () => {
  const before = lines.length;
  const fault = async (body: string, re: RegExp) => {
    const r = await post(body);
    assert.equal(r.statusCode, 200);
    assert.match(r.body, /<int>-32700<\/int>/);
    assert.match(r.body, re);
    assert.equal(r.headers.connection, 'close');
  };
  const v = '<param><value><int>1</int></value></param>';
  await fault(`<methodCall><methodName>echo</methodName><params>${v.repeat(5)}</params></methodCall>`, /more than 4 params .*server\.max_params/);
  await fault(`<methodCall><methodName>echo</methodName><params><param><value><array><data>${'<value>1</value>'.repeat(100)}</data></array></value></param></params></methodCall>`, /more than 100 values .*server\.max_values/);
  await fault(`<methodCall><methodName>echo</methodName><params><param><value><string>${'<b/>'.repeat(500)}</string></value></param></params></methodCall>`, /more than 464 elements/);
  const mc = (n: number) => `<methodCall><methodName>system.multicall</methodName><params><param><value><array><data>${'<value><struct><member><name>methodName</name><value>echo</value></member></struct></value>'.repeat(n)}</data></array></value></param></params></methodCall>`;
  await fault(mc(4), /system\.multicall: more than 3 calls .*server\.max_multicall_calls/);
  const ok = await post(mc(3));
  assert.doesNotMatch(ok.body, /<fault>/);
  // 64 KiB for ordinary calls, 4 MiB for a file call.
  const str = (method: string, n: number) => `<methodCall><methodName>${method}</methodName><params><param><value>${'y'.repeat(n)}</value></param></params></methodCall>`;
  const small = await post(str('echo', 70_000));
  assert.equal(small.statusCode, 413);
  assert.match(small.body, /server\.call_body_limit_bytes \(65536\)/);
  const file = await post(str('upload', 3_000_000));
  assert.equal(file.statusCode, 200);
  assert.equal(file.body, serializeResponse('y'.repeat(3_000_000)));
  const tooBig = await post(str('upload', 5_000_000));
  assert.equal(tooBig.statusCode, 413);
  assert.match(tooBig.body, /server\.body_limit_bytes \(4194304\)/);
  // Params behind a `<?>` (a PI without a target, which the scan skips as XML does) are not read
  // past the limit: the codec refuses the body instead of reading them.
  const hidden = await post(`<methodCall><methodName>echo</methodName><params><?>${v.repeat(5)}<param><value><string>?></string></value></param></params></methodCall>`);
  assert.match(hidden.body, /<int>-32700<\/int>.*processing instruction without a target/s);
  const refused = lines.slice(before).filter((l) => l.refused_while_reading);
  assert.equal(refused.length, 4, 'each refused body is one log line');
});

test('a file-carrying call gets a long <string> as a view of the request body, not a copy', async () => {
  const { InPlaceBody, isTextView, typeOfValue } = await import('../../src/agent-extension/codec.js');
  const text = 'žluť €'.repeat(4000);
  const body = Buffer.from(call(`<value><string>${text}</string></value>`));
  const s = new BodyScan({ maxParams: 4, maxValues: 100, maxElements: 464, maxMulticallCalls: 3 });
  s.push(body);
  assert.equal(s.runs.length, 2);
  const viewed = parseMethodCall(new InPlaceBody(body, s.runs, true)).params[0] as Buffer;
  assert.ok(isTextView(viewed), 'a view');
  assert.equal(viewed.buffer, body.buffer, 'the same memory as the body');
  assert.equal(viewed.toString('utf8'), text);
  assert.equal(typeOfValue(viewed), 'string');
  assert.equal(serializeResponse(viewed), serializeResponse(text), 'written back as the same string');
  // Without textViews (every other call), the same body gives a string.
  assert.equal(parseMethodCall(new InPlaceBody(body, s.runs)).params[0], text);
  // Base64 content and short strings are never views.
  assert.ok(!isTextView(parseMethodCall(new InPlaceBody(Buffer.from(call('<value><base64>aGVsbG8=</base64></value>')), [], true)).params[0]));
});

test('a file-carrying call: a long <string> for a parameter that takes no bytes arrives as a string, judged by its format', async () => {
  const long = 'n'.repeat(20_000); // over LARGE_TEXT_BYTES: read in place, as a view of the body
  const put = async (name: string, label: string) => {
    const body = `<methodCall><methodName>put</methodName><params><param><value><string>${name}</string></value></param><param><value><string>${label}</string></value></param><param><value><string>${long}</string></value></param></params></methodCall>`;
    const r = await post(body);
    try {
      return parseMethodResponse(r.rawPayload);
    } catch (e) {
      return e;
    }
  };
  // The name's format says what is wrong with the text sent (it was a string: not "must be a string").
  const f = (await put(long, 'x')) as XmlRpcFault;
  assert.ok(f instanceof XmlRpcFault, String(f));
  assert.equal(f.faultString, 'name: longer than 4096 bytes');
  assert.equal(f.faultCode, 1012, 'TOO_LARGE');
  // A plain string parameter gets a string; a parameter of any type keeps the view.
  assert.deepEqual(await put('a', long), ['string', 'string', true]);
});

test('tag names: a namespace prefix is dropped, "/" in an open tag ignored, odd and long names counted as elements only', () => {
  const limits = { maxParams: 2, maxValues: 3, maxElements: 100, maxMulticallCalls: 3 };
  const scan = (body: string, cut = 0) => {
    const s = new BodyScan(limits);
    const buf = Buffer.from(body);
    try {
      // Cut into pieces of `cut` bytes (0: whole), so names are also read across chunks.
      for (let at = 0; at < buf.length; at += cut || buf.length) s.push(buf.subarray(at, at + (cut || buf.length)));
    } catch (e) {
      return (e as Error).message;
    }
    return [s.values, s.elements, s.params, s.method];
  };
  const head = '<methodCall><methodName>echo</methodName><params>';
  for (const cut of [0, 1, 2, 3, 5]) {
    assert.deepEqual(scan(`${head}<param><ns:value>1</ns:value></param><param><a:b:value/></param>`, cut), [2, 7, 2, 'echo'], `cut ${cut}`);
    assert.match(String(scan(`${head}<param><value/><x:value/><value>1</value><value>2</value></param>`, cut)), /more than 3 values/, `cut ${cut}`);
    assert.match(String(scan(`${head}<param/><x:param/><param/>`, cut)), /more than 2 params/, `cut ${cut}`);
    // Long names keep their first 64 bytes: a 70-byte name ending in "value" is not a value.
    assert.deepEqual(scan(`${head}<${'q'.repeat(65)}value/><ét:value/><valu/><values/><VALUE/>`, cut), [1, 8, 0, 'echo'], `cut ${cut}`);
    assert.deepEqual(scan(`<methodCall><x:methodName>system.multicall</x:methodName><params>`, cut), [0, 3, 0, 'system.multicall'], `cut ${cut}`);
  }
});

test('the body deadline counts on the monotonic clock: a wall-clock step while the body arrives neither ends it early nor stretches it', async (t) => {
  const { readBody } = await import('../../src/agent-extension/request-body.js');
  const { PassThrough } = await import('node:stream');
  const limits = { maxParams: 4, maxValues: 100, maxElements: 1000, maxMulticallCalls: 3, callBodyLimit: 64 * 1024, fileBodyLimit: 4 * 1024 * 1024, baseTimeoutMs: 10_000, minBytesPerS: 64 * 1024 };
  const realNow = Date.now;
  const body = call('<value>1</value>', 'echo');
  const payload = new PassThrough();
  const got: Array<{ err: string | null; bytes?: number }> = [];
  readBody(payload, Buffer.byteLength(body), limits, () => limits.callBodyLimit, (err, b) => got.push({ err: err?.code ?? null, bytes: b && 'buf' in b ? b.buf.length : undefined }));
  // NTP or an admin steps the wall clock an hour forward before the method name arrives.
  t.mock.method(Date, 'now', () => realNow() + 3600_000);
  payload.write(body.slice(0, 80));
  // A deadline the step made due would run within a few ms (Node timers run in order of their time).
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(got, [], 'no 408: the body is well within server.header_timeout_s + its limit at the minimum rate');
  payload.end(body.slice(80));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, [{ err: null, bytes: Buffer.byteLength(body) }]);
  t.mock.restoreAll();

  // The wall clock stepped an hour back: a body that stops arriving still ends at its deadline (here 30 ms + its limit at 1 GB/s), not an hour later.
  const slow = new PassThrough();
  const ended = new Promise<string | null>((resolve) =>
    readBody(slow, Buffer.byteLength(body), { ...limits, baseTimeoutMs: 30, minBytesPerS: 1e9 }, () => limits.callBodyLimit, (err) => resolve(err?.code ?? null)),
  );
  t.mock.method(Date, 'now', () => realNow() - 3600_000);
  slow.write(body.slice(0, 80));
  const r = await Promise.race([ended, new Promise((r) => setTimeout(() => r('no answer within 20 s'), 20_000).unref())]);
  assert.equal(r, 'BRICK_BODY_TIMEOUT');
});

test("server.idle_timeout_s and header_timeout_s are Node's own timers (keep-alive idle, headers; Node decides their boundary): wired in ms, with the request backstop above the largest body's deadline", async () => {
  const { bodyDeadlineMs } = await import('../../src/agent-extension/request-body.js');
  const srv = app.server as import('node:http').Server;
  assert.equal(srv.keepAliveTimeout, c.server.idle_timeout_s * 1000);
  assert.equal(srv.headersTimeout, c.server.header_timeout_s * 1000);
  const largest = bodyDeadlineMs({ maxParams: 0, maxValues: 0, maxElements: 0, maxMulticallCalls: 0, callBodyLimit: 0, fileBodyLimit: 0, baseTimeoutMs: c.server.header_timeout_s * 1000, minBytesPerS: c.server.body_min_rate_bytes_s }, c.server.body_limit_bytes);
  assert.equal(srv.requestTimeout, largest + 5000);
  // README: 11 s for an ordinary call (1 MiB at 1 MiB/s after header_timeout_s 10), 74 s for a 64 MiB file call, by default.
  const d = defaultConfig().server;
  const dl = (limit: number) => bodyDeadlineMs({ maxParams: 0, maxValues: 0, maxElements: 0, maxMulticallCalls: 0, callBodyLimit: 0, fileBodyLimit: 0, baseTimeoutMs: d.header_timeout_s * 1000, minBytesPerS: d.body_min_rate_bytes_s }, limit);
  assert.deepEqual([dl(d.call_body_limit_bytes), dl(d.body_limit_bytes)], [11_000, 74_000]);
});
