// The server through fastify's inject(): auth, routes, faults, argument checks, deadlines,
// concurrency, locks, logging and metrics. No sockets, no host.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createServer } from '../../src/agent-extension/server.js';
import { sameHeader } from '../../src/agent-extension/credentials.js';
import { method, optional, param } from '../../src/rpc/params.js';
import { Any, Int, Str } from '../../src/rpc/formats.js';
import { Type } from '@sinclair/typebox';
import { BrickError } from '../../src/shared/errors.js';
import { parseMethodResponse, serializeMethodCall, XmlRpcFault } from '../../src/agent-extension/codec.js';
import { basicAuth } from '../../src/agent-extension/client.js';
import { memoryLogger } from '../fixtures/server.js';

const PASSWORD = 'unit-test-pw-Ünï';
let gateOpen!: () => void;
const gate = new Promise<void>((r) => (gateOpen = r));
const inLock = { now: 0, max: 0 };
let sawAbort = false;

const methods = [
  method({ name: 'echo', params: [param('value', Any)], returns: 'any', help: 'Returns its argument.', handler: async ([v]) => v }),
  method({
    name: 'add',
    params: [
      param('a', Int),
      param('b', Type.Union([Int, Str])),
      optional('c', Int),
    ],
    returns: 'int',
    help: 'Adds.',
    handler: async ([a, b, c]) => a + Number(b) + (c ?? 0),
  }),
  method({ name: 'conflict', params: [], returns: 'nil', help: 'Fails.', handler: async () => { throw new BrickError('CONFLICT', 'bridge xenbr0 exists with another uplink; remove it first'); } }),
  method({ name: 'bug', params: [], returns: 'nil', help: 'Has a bug.', handler: async () => { throw new Error('secret detail /etc/shadow'); } }),
  method({ name: 'nan', params: [], returns: 'double', help: 'Returns NaN.', handler: async () => NaN }),
  method({
    name: 'hang',
    params: [],
    returns: 'nil',
    help: 'Never answers.',
    timeoutMs: 100,
    handler: (_a, ctx) =>
      new Promise(() => {
        ctx.signal.addEventListener('abort', () => (sawAbort = true));
      }),
  }),
  method({ name: 'wait_gate', params: [], returns: 'string', help: 'Waits for open_gate.', handler: async () => (await gate, 'passed') }),
  method({ name: 'open_gate', params: [], returns: 'boolean', help: 'Opens the gate.', handler: async () => (gateOpen(), true) }),
  method({
    name: 'locked',
    params: [param('key', Str)],
    returns: 'int',
    help: 'Holds a lock on key for a moment.',
    handler: async ([key], ctx) =>
      ctx.locks.with('thing:' + key, async () => {
        inLock.now++;
        inLock.max = Math.max(inLock.max, inLock.now);
        await new Promise((r) => setTimeout(r, 20));
        inLock.now--;
        return ctx.remainingMs() > 0 ? 1 : 0;
      }),
  }),
];

function config(server: Partial<Config['server']> = {}): Config {
  const c = defaultConfig();
  Object.assign(c.server, { listen: '127.0.0.1:0', password: PASSWORD, body_limit_bytes: 64 * 1024, tls_cert: '', tls_key: '' }, server);
  return c;
}

const { log, lines } = memoryLogger('info');
const app = createServer(config(), { log, methods });
/** A call over config()'s 64 KiB body_limit_bytes. */
const OVER_LIMIT = serializeMethodCall('echo', ['x'.repeat(70 * 1024)]);
after(() => app.close());
const AUTH = basicAuth('oracle', PASSWORD);

async function rpc(method: string, params: unknown[] = [], url = '/') {
  const res = await app.inject({ method: 'POST', url, headers: { authorization: AUTH, 'content-type': 'text/xml' }, payload: serializeMethodCall(method, params) });
  assert.equal(res.statusCode, 200, res.body);
  assert.match(res.headers['content-type'] as string, /^text\/xml/);
  return parseMethodResponse(res.rawPayload);
}
async function fault(method: string, params: unknown[] = []): Promise<XmlRpcFault> {
  try {
    await rpc(method, params);
  } catch (e) {
    if (e instanceof XmlRpcFault) return e;
    throw e;
  }
  throw new Error(`${method} did not fault`);
}

test('POST / and /RPC2 serve XML-RPC; any content type is read as XML', async () => {
  assert.equal(await rpc('add', [1, 2]), 3);
  assert.equal(await rpc('add', [1, '2', 3], '/RPC2'), 6);
  const res = await app.inject({ method: 'POST', url: '/', headers: { authorization: AUTH, 'content-type': 'application/json' }, payload: serializeMethodCall('echo', ['x']) });
  assert.equal(parseMethodResponse(res.rawPayload), 'x');
  // text/xml has the body parser under its own name (fastify remembers it), everything else the
  // catch-all: the same reading, and the same limits, whichever found it (text/xml twice: the second
  // comes from fastify's cache).
  for (const type of ['text/xml', 'text/xml', 'TEXT/XML; charset=UTF-8', 'text/xml; charset=utf-8', 'text/plain', 'application/octet-stream', 'application/x-anything; a=b', undefined, undefined]) {
    const headers: Record<string, string> = { authorization: AUTH, ...(type === undefined ? {} : { 'content-type': type }) };
    const r = await app.inject({ method: 'POST', url: '/RPC2', headers, payload: serializeMethodCall('echo', [[1, 'two', [3.5, true]]]) });
    assert.equal(r.statusCode, 200, `${type}`);
    assert.deepEqual(parseMethodResponse(r.rawPayload), [1, 'two', [3.5, true]], `${type}`);
    const over = await app.inject({ method: 'POST', url: '/RPC2', headers, payload: OVER_LIMIT });
    assert.equal(over.statusCode, 413, `${type}: a body over the limit`);
  }
  // A header that is no media type at all is a transport error (fastify's 415): the body is not
  // read, so the connection closes after the reply, as for 408 and 413.
  const bad = await app.inject({ method: 'POST', url: '/RPC2', headers: { authorization: AUTH, 'content-type': 'no/such/type' }, payload: serializeMethodCall('echo', [1]) });
  assert.equal(bad.statusCode, 415);
  assert.equal(bad.headers.connection, 'close');
});

test('auth: missing or wrong credentials get 401; /healthz needs none; /metrics needs them', async () => {
  const body = serializeMethodCall('echo', [1]);
  const none = await app.inject({ method: 'POST', url: '/', payload: body });
  assert.equal(none.statusCode, 401);
  assert.match(String(none.headers['www-authenticate']), /^Basic realm="brick"/);
  assert.equal(none.headers.connection, 'close', 'a stranger\'s body is never read: the connection closes');
  for (const [u, p] of [['oracle', 'wrong'], ['root', PASSWORD], ['oracle', PASSWORD + 'x'], ['', '']]) {
    const r = await app.inject({ method: 'POST', url: '/', headers: { authorization: basicAuth(u, p) }, payload: body });
    assert.equal(r.statusCode, 401, `${u}:${p}`);
    assert.equal(r.headers.connection, 'close', `${u}:${p}`);
  }
  const h = await app.inject({ method: 'GET', url: '/healthz' });
  assert.equal(h.statusCode, 200);
  assert.equal(h.json().status, 'ok');
  assert.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 401);
  assert.equal((await app.inject({ method: 'GET', url: '/nope' })).statusCode, 401);
  assert.ok(!JSON.stringify(lines).includes(PASSWORD), 'the password never reaches the log');
});

test('sameHeader (the Authorization compare): equal strings only, whatever the lengths and where they differ', () => {
  const e = AUTH;
  assert.equal(sameHeader(e, e), true);
  assert.equal(sameHeader(String(e.split('').join('')), e), true, 'a string made another way');
  for (const h of ['', e.slice(0, -1), e + '=', e + '\0', 'X' + e.slice(1), e.slice(0, -1) + 'X', e.toLowerCase(), e.slice(0, 10) + '\u0142' + e.slice(11), e.repeat(2)]) {
    assert.equal(sameHeader(h, e), false, JSON.stringify(h));
  }
});

test('auth: a header one character off, short or long gets 401; the expected one and the scheme in any case pass', async () => {
  const body = serializeMethodCall('echo', [1]);
  const flip = (i: number) => AUTH.slice(0, i) + (AUTH[i] === 'A' ? 'B' : 'A') + AUTH.slice(i + 1);
  for (const h of [AUTH.slice(0, -4), flip(6), flip(20), flip(AUTH.length - 3), AUTH + ' ' + AUTH, 'Basic', 'x'.repeat(8000)]) {
    const r = await app.inject({ method: 'POST', url: '/', headers: { authorization: h }, payload: body });
    assert.equal(r.statusCode, 401, h.slice(0, 40));
  }
  for (const h of [AUTH, 'basic ' + AUTH.slice(6)]) {
    const r = await app.inject({ method: 'POST', url: '/', headers: { authorization: h, 'content-type': 'text/xml' }, payload: body });
    assert.equal(r.statusCode, 200, h);
    assert.equal(parseMethodResponse(r.rawPayload), 1);
  }
});

test('a body over body_limit_bytes gets HTTP 413, a malformed body a PARSE_ERROR fault with HTTP 200', async () => {
  const r = await app.inject({ method: 'POST', url: '/', headers: { authorization: AUTH, 'content-type': 'text/xml' }, payload: OVER_LIMIT });
  assert.equal(r.statusCode, 413);
  const m = await app.inject({ method: 'POST', url: '/', headers: { authorization: AUTH, 'content-type': 'text/xml' }, payload: '<methodCall><methodName>echo</methodName><params><param><value><int>12abc</int></value></param></params></methodCall>' });
  assert.equal(m.statusCode, 200);
  assert.throws(() => parseMethodResponse(m.rawPayload), (e: unknown) => e instanceof XmlRpcFault && e.faultCode === -32700 && /12abc/.test(e.faultString));
  const empty = await app.inject({ method: 'POST', url: '/', headers: { authorization: AUTH } });
  assert.equal(empty.statusCode, 200);
  assert.throws(() => parseMethodResponse(empty.rawPayload), (e: unknown) => e instanceof XmlRpcFault && e.faultCode === -32700);
});

test('arguments are checked before the handler runs; the fault names the parameter', async () => {
  let f = await fault('add', [1]);
  assert.equal(f.faultCode, -32602);
  assert.match(f.faultString, /argument 2 "b" \(int or string\) is missing/);
  f = await fault('add', [1, 2, 3, 4]);
  assert.match(f.faultString, /takes 2 to 3 arguments, got 4/);
  f = await fault('add', ['1', 2]);
  assert.match(f.faultString, /argument 1 "a" must be int, got string/);
  f = await fault('add', [2 ** 40, 2]);
  assert.match(f.faultString, /"a" must be int, got i8/);
  f = await fault('add', [1, 2, 1.5]);
  assert.match(f.faultString, /"c" must be int, got double/);
  assert.equal(await rpc('add', [1, 2, null]), 3, 'nil for an optional argument means not given');
  f = await fault('nope');
  assert.equal(f.faultCode, -32601);
});

test('faults: BrickError keeps its code and message; anything else is INTERNAL with details only in the log', async () => {
  let f = await fault('conflict');
  assert.equal(f.faultCode, 1002);
  assert.equal(f.faultString, 'bridge xenbr0 exists with another uplink; remove it first');
  f = await fault('bug');
  assert.equal(f.faultCode, -32603);
  assert.doesNotMatch(f.faultString, /secret|shadow|at /);
  assert.ok(lines.some((l) => l.level === 50 && JSON.stringify(l).includes('secret detail')), 'the log has the details');
  f = await fault('nan');
  assert.equal(f.faultCode, -32603);
  assert.match(f.faultString, /could not write its reply/);
});

test('a call past its deadline gets a TIMEOUT fault and its signal is aborted', async () => {
  const f = await fault('hang');
  assert.equal(f.faultCode, 1004);
  assert.match(f.faultString, /hang: no result within 0.1 s/);
  assert.equal(sawAbort, true);
});

test('calls run concurrently: a waiting call does not block others', async () => {
  const waiting = rpc('wait_gate');
  assert.equal(await rpc('open_gate'), true);
  assert.equal(await waiting, 'passed');
});

test('calls on the same thing are serialized through ctx.locks, different things are not', async () => {
  inLock.max = 0;
  await Promise.all(Array.from({ length: 6 }, () => rpc('locked', ['a'])));
  assert.equal(inLock.max, 1);
  inLock.max = 0;
  await Promise.all(['a', 'b', 'c', 'd'].map((k) => rpc('locked', [k])));
  assert.ok(inLock.max > 1, `different keys ran together (max ${inLock.max})`);
});

test('introspection and multicall', async () => {
  const list = (await rpc('system.listMethods')) as string[];
  assert.ok(list.includes('add') && list.includes('system.multicall'));
  assert.deepEqual(list, [...list].sort());
  assert.deepEqual(await rpc('system.methodSignature', ['add']), [
    ['int', 'int', 'int'],
    ['int', 'int', 'string'],
    ['int', 'int', 'int', 'int'],
    ['int', 'int', 'string', 'int'],
  ]);
  const help = (await rpc('system.methodHelp', ['add'])) as string;
  assert.match(help, /add\(a: int, b: int\|string\[, c: int\]\) → int/);
  assert.match(help, /Adds\./);
  assert.equal((await fault('system.methodHelp', ['nope'])).faultCode, 1001);
  const r = (await rpc('system.multicall', [[
    { methodName: 'add', params: [1, 2] },
    { methodName: 'conflict', params: [] },
    { methodName: 'system.multicall', params: [[]] },
    { methodName: 'add', params: ['x'] },
    'junk',
  ]])) as unknown[];
  assert.deepEqual(r[0], [3]);
  assert.deepEqual({ ...(r[1] as object) }, { faultCode: 1002, faultString: 'bridge xenbr0 exists with another uplink; remove it first' });
  assert.equal((r[2] as { faultCode: number }).faultCode, -32602);
  assert.equal((r[3] as { faultCode: number }).faultCode, -32602);
  assert.equal((r[4] as { faultCode: number }).faultCode, -32602);
});

test('every call is logged once with method, duration and outcome; /metrics counts them', async () => {
  const before = lines.length;
  await rpc('add', [40, 2]);
  await fault('conflict');
  const calls = lines.slice(before).filter((l) => l.msg === 'call');
  assert.equal(calls.length, 2);
  assert.equal(calls[0].method, 'add');
  assert.equal(calls[0].outcome, 'ok');
  assert.equal(typeof calls[0].ms, 'number');
  assert.equal(calls[1].outcome, 'fault');
  assert.equal(calls[1].fault, 'CONFLICT');
  const m = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: AUTH } });
  assert.equal(m.statusCode, 200);
  assert.match(m.body, /brick_xmlrpc_calls_total\{method="add",outcome="ok",fault=""\} \d+/);
  assert.match(m.body, /brick_xmlrpc_calls_total\{method="conflict",outcome="fault",fault="CONFLICT"\} \d+/);
  assert.match(m.body, /brick_xmlrpc_call_duration_seconds_count\{method="add"\} \d+/);
  assert.doesNotMatch(m.body, /method="nope"/, 'unknown names do not become labels');
});

test('the README fault table lists every fault code with its meaning', async () => {
  const { readFileSync } = await import('node:fs');
  const { FAULT_CODES } = await import('../../src/shared/errors.js');
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  for (const [name, f] of Object.entries(FAULT_CODES)) assert.ok(readme.includes(`| ${f.code} | \`${name}\` | ${f.what} |`), `README lacks the row for ${name}`);
});

test('system.multicall: once its deadline has stopped it, the calls after the one it cut off do not start', async () => {
  let marked = 0;
  const inner = [
    method({
      name: 'until_stopped',
      params: [],
      returns: 'nil',
      help: 'Answers when its signal aborts.',
      handler: (_a, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
    }),
    method({ name: 'mark', params: [], returns: 'boolean', help: 'A change that asks for no signal (as a file call).', handler: async () => (marked++, true) }),
  ];
  const short = createServer(config({ call_timeout_s: 1 }), { log: memoryLogger('info').log, methods: inner });
  after(() => short.close());
  const res = await short.inject({
    method: 'POST',
    url: '/',
    headers: { authorization: AUTH, 'content-type': 'text/xml' },
    payload: serializeMethodCall('system.multicall', [[{ methodName: 'mark', params: [] }, { methodName: 'until_stopped', params: [] }, { methodName: 'mark', params: [] }]]),
  });
  const r = parseMethodResponse(res.rawPayload) as unknown[];
  assert.deepEqual(r[0], [true]);
  assert.equal((r[1] as { faultCode: number }).faultCode, 1004);
  assert.equal((r[2] as { faultCode: number }).faultCode, 1004, `the call after the deadline: ${JSON.stringify(r[2])}`);
  assert.match((r[2] as { faultString: string }).faultString, /system\.multicall: no result within 1 s/);
  assert.equal(marked, 1, 'only the call before the deadline ran');
});

test('system.multicall: a call inside it gets no more time than the multicall has left (ctx.remainingMs), whatever its own deadline', async () => {
  // exec_domr, domain_define and the ssh checks size their commands' deadlines by ctx.remainingMs()
  // and do not listen to the signal: an inner call that counted from its own, longer, deadline ran
  // its command past the multicall's.
  const inner = [
    method({
      name: 'budget',
      params: [],
      returns: 'int',
      help: 'Its remaining time, as a command would be given it.',
      timeoutMs: 3_600_000,
      handler: async (_a, ctx) => ctx.remainingMs(),
    }),
  ];
  const short = createServer(config({ call_timeout_s: 2 }), { log: memoryLogger('info').log, methods: inner });
  after(() => short.close());
  const call = async (body: string) =>
    parseMethodResponse((await short.inject({ method: 'POST', url: '/', headers: { authorization: AUTH, 'content-type': 'text/xml' }, payload: body })).rawPayload);
  assert.ok((await call(serializeMethodCall('budget', []))) as number > 2000, 'alone it has its own deadline');
  const r = (await call(serializeMethodCall('system.multicall', [[{ methodName: 'budget', params: [] }]]))) as unknown[];
  assert.ok(Array.isArray(r[0]), JSON.stringify(r[0]));
  const left = (r[0] as number[])[0];
  assert.ok(left > 0 && left <= 2000, `inside a 2 s multicall it had ${left} ms`);
});
