// A call's signal (ctx.signal) is made when its handler first asks for it: most calls never do, and
// then cost no AbortController and no listener on the client's signal. Whenever it is made, it must
// say what happened before: aborted if the client had gone or the deadline had passed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig } from '../../src/config/load.js';
import { Dispatcher } from '../../src/agent-extension/dispatch.js';
import { method } from '../../src/rpc/params.js';
import type { CallContext } from '../../src/rpc/catalogue.js';
import { memoryLogger } from '../fixtures/server.js';
import { connect } from 'node:net';
import { createServer } from '../../src/agent-extension/server.js';
import { serializeMethodCall, parseMethodResponse } from '../../src/agent-extension/codec.js';
import { basicAuth } from '../../src/agent-extension/client.js';
import { BrickError } from '../../src/shared/errors.js';

/** A client signal that counts the listeners added to it and removed from it. */
function clientSignal() {
  const ac = new AbortController();
  const counts = { added: 0, removed: 0 };
  const s = ac.signal;
  const add = s.addEventListener.bind(s);
  const remove = s.removeEventListener.bind(s);
  s.addEventListener = ((...a: Parameters<typeof add>) => (counts.added++, add(...a))) as typeof s.addEventListener;
  s.removeEventListener = ((...a: Parameters<typeof remove>) => (counts.removed++, remove(...a))) as typeof s.removeEventListener;
  return { ac, signal: s, counts };
}

let release!: () => void;
let seen: CallContext | undefined;
const methods = [
  method({ name: 'quick', params: [], returns: 'string', help: 'Answers at once.', handler: async () => 'ok' }),
  method({
    name: 'asks_late',
    params: [],
    returns: 'string',
    help: 'Waits, then asks for its signal.',
    timeoutMs: 60_000,
    handler: async (_a, ctx) => {
      await new Promise<void>((r) => (release = r));
      return ctx.signal.aborted ? `aborted: ${(ctx.signal.reason as Error).message}` : 'not aborted';
    },
  }),
  method({
    name: 'waits_on_signal',
    params: [],
    returns: 'string',
    help: 'Answers when its signal aborts.',
    timeoutMs: 60_000,
    handler: (_a, ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(`aborted: ${(ctx.signal.reason as Error).message}`))),
  }),
  method({
    name: 'hangs_then_asks',
    params: [],
    returns: 'string',
    help: 'Outlives its 50 ms deadline, then asks for its signal.',
    timeoutMs: 50,
    handler: async (_a, ctx) => {
      seen = ctx;
      await new Promise((r) => setTimeout(r, 200));
      return String(ctx.signal.aborted);
    },
  }),
];
const dispatcher = new Dispatcher({ config: defaultConfig(), log: memoryLogger().log, methods });
const tick = () => new Promise((r) => setImmediate(r));

test('a call that never asks for its signal adds no listener to the client signal', async () => {
  const c = clientSignal();
  assert.equal(await dispatcher.call('quick', [], { signal: c.signal }), 'ok');
  assert.deepEqual(c.counts, { added: 0, removed: 0 });
});

test('the client went away before the handler asked: its signal is made aborted, and nothing listens', async () => {
  const c = clientSignal();
  const answer = dispatcher.call('asks_late', [], { signal: c.signal });
  await tick();
  c.ac.abort();
  release();
  assert.equal(await answer, 'aborted: asks_late: the client went away');
  assert.deepEqual(c.counts, { added: 0, removed: 0 });
});

test('the client goes away while the handler waits on its signal: aborted then; the listener is removed when the call answers', async () => {
  const c = clientSignal();
  const answer = dispatcher.call('waits_on_signal', [], { signal: c.signal });
  await tick();
  assert.equal(c.counts.added, 1, 'listening to the client once the handler asked');
  c.ac.abort();
  assert.equal(await answer, 'aborted: waits_on_signal: the client went away');
  assert.equal(c.counts.removed, 1);
});

test('a call past its deadline that asks for its signal afterwards finds it aborted with the deadline', async () => {
  const c = clientSignal();
  // it still ends within the grace after the deadline, so the call gets its own answer: what it saw
  assert.equal(await dispatcher.call('hangs_then_asks', [], { signal: c.signal }), 'true');
  assert.ok(seen);
  assert.equal(seen.signal.aborted, true);
  assert.match((seen.signal.reason as Error).message, /hangs_then_asks: no result within 0.05 s \(the call's deadline\)/);
  assert.deepEqual(c.counts, { added: 0, removed: 0 }, 'a call that has ended does not start listening to the client');
});

// Through the server, over a real connection: the signal is the request's, made when asked.
test('server: a client that hangs up mid-call aborts the signal of a call waiting on it, and a call that asks after the hang-up finds it aborted; a call that never asks answers as usual', async () => {
  const seenBy: Record<string, (v: string) => void> = {};
  const seen = (name: string) => new Promise<string>((r) => (seenBy[name] = r));
  let late!: () => void;
  const calls = [
    methods.find((m) => m.name === 'quick')!,
    method({
      name: 'waits',
      params: [],
      returns: 'string',
      help: 'Answers when its signal aborts.',
      timeoutMs: 60_000,
      handler: (_a, ctx) =>
        new Promise((resolve) => ctx.signal.addEventListener('abort', () => (seenBy.waits(String((ctx.signal.reason as Error).message)), resolve('gone')))),
    }),
    method({
      name: 'late',
      params: [],
      returns: 'string',
      help: 'Asks for its signal once released.',
      timeoutMs: 60_000,
      handler: async (_a, ctx) => {
        await new Promise<void>((r) => (late = r));
        seenBy.late(ctx.signal.aborted ? `aborted: ${(ctx.signal.reason as Error).message}` : 'not aborted');
        return 'done';
      },
    }),
  ];
  const c = defaultConfig();
  Object.assign(c.server, { listen: '127.0.0.1:0', password: 'pw', tls_cert: '', tls_key: '' });
  const app = createServer(c, { log: memoryLogger().log, methods: calls });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  const request = (name: string) => {
    const body = serializeMethodCall(name, []);
    return `POST /RPC2 HTTP/1.1\r\nHost: x\r\nAuthorization: ${basicAuth('oracle', 'pw')}\r\nContent-Type: text/xml\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  };
  /** Send a call and hang up once the handler has it (`started` resolved). */
  const hangUp = async (name: string, started: () => boolean) => {
    const s = connect(port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    s.write(request(name));
    while (!started()) await tick();
    const closed = new Promise((r) => s.once('close', r));
    s.destroy();
    await closed;
  };
  try {
    const waits = seen('waits');
    await hangUp('waits', () => seenBy.waits !== undefined);
    assert.equal(await waits, 'waits: the client went away');

    const lateSeen = seen('late');
    late = undefined as unknown as () => void;
    await hangUp('late', () => late !== undefined);
    await new Promise((r) => setTimeout(r, 50)); // the server has seen the connection close
    late();
    assert.equal(await lateSeen, 'aborted: late: the client went away');

    // A call that never asks, on a connection that stays: answered, and again on the same connection.
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d));
    s.write(request('quick') + request('quick'));
    while ((got.match(/<\/methodResponse>/g) ?? []).length < 2) await tick();
    s.destroy();
    const bodies = got.split(/HTTP\/1\.1 200 OK/).slice(1).map((r) => r.slice(r.indexOf('<?xml')));
    assert.deepEqual(bodies.map((b) => parseMethodResponse(b.trim())), ['ok', 'ok']);
  } finally {
    await app.close();
  }
});

test('a handler that throws before returning a promise is a fault like one that rejects; a failure after the deadline is handled, not unhandled', async () => {
  let failLate!: (e: Error) => void;
  const d = new Dispatcher({
    config: defaultConfig(),
    log: memoryLogger().log,
    methods: [
      method({ name: 'throws_now', params: [], returns: 'string', help: 'Throws at once.', handler: () => { throw new BrickError('CONFLICT', 'no: at once'); } }),
      method({ name: 'rejects', params: [], returns: 'string', help: 'Rejects.', handler: async () => { throw new BrickError('CONFLICT', 'no: later'); } }),
      method({ name: 'fails_late', params: [], returns: 'string', help: 'Fails after its deadline.', timeoutMs: 20, handler: () => new Promise((_r, reject) => (failLate = reject)) }),
    ],
  });
  for (const [name, msg] of [['throws_now', 'no: at once'], ['rejects', 'no: later']]) {
    const xml = String(await d.handle(Buffer.from(`<methodCall><methodName>${name}</methodName><params/></methodCall>`)));
    assert.match(xml, /<name>faultString<\/name><value><string>no: [a-z ]+<\/string>/, xml);
    assert.ok(xml.includes(msg), xml);
  }
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    const answer = d.call('fails_late', []).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 60)); // past the deadline, inside the grace
    failLate(new Error('too late'));
    const e = (await answer) as Error;
    assert.match(e.message, /fails_late: no result within 0.02 s .*stopped: too late/);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
