// 20,000+ malformed or hostile bodies, generated deterministically (seeded PRNG), against the real
// server through inject(): mutated valid calls, deep nesting, huge numbers, DOCTYPE/entities, bad
// UTF-8, __proto__ members, random bytes. Every reply must be a well-formed XML-RPC reply (a value
// or a fault, never INTERNAL) or a 4xx; nothing crashes, no prototype changes, memory stays bounded.
import { test, after } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import assert from 'node:assert/strict';
import { defaultConfig } from '../../src/config/load.js';
import { createServer } from '../../src/agent-extension/server.js';
import { method, optional, param } from '../../src/rpc/params.js';
import { Any, Int } from '../../src/rpc/formats.js';
import { parseMethodResponse, serializeMethodCall, XmlRpcFault } from '../../src/agent-extension/codec.js';
import { basicAuth } from '../../src/agent-extension/client.js';
import { memoryLogger } from '../fixtures/server.js';
import { prng } from '../fixtures/prng.js';

const BODIES = 20_000;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const LIMIT = 256 * 1024;

const rnd = prng(0xb41c);
const int = (n: number) => Math.floor(rnd() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];

function randomValue(depth = 0): unknown {
  const k = int(depth > 4 ? 8 : 11);
  switch (k) {
    case 0: return int(2 ** 31) - 2 ** 30;
    case 1: return pick([2 ** 40, -(2 ** 33), 9223372036854775807n, 0, -1]);
    case 2: return rnd() * 1e6;
    case 3: return rnd() < 0.5;
    case 4: return pick(['', 'plain', 'a<b&c>', 'žluť €', '\r\n\t', ']]>', '&amp;', '"\'']);
    case 5: return null;
    case 6: return new Date(Date.UTC(1970 + int(100), int(12), 1 + int(28), int(24), int(60), int(60)));
    case 7: return Buffer.from(Array.from({ length: int(12) }, () => int(256)));
    case 8: return Array.from({ length: int(4) }, () => randomValue(depth + 1));
    default: {
      const o: Record<string, unknown> = Object.create(null);
      for (let i = int(4); i > 0; i--) o[pick(['a', 'b', '__proto__', 'constructor', 'prototype', 'toString', 'x y', ''])] = randomValue(depth + 1);
      return o;
    }
  }
}

const TAGS = ['<value>', '</value>', '<int>', '</int>', '<i8>', '<struct>', '</struct>', '<member>', '<name>', '<array>', '<data>', '</data>', '<nil/>', '<ex:nil/>',
  '<param>', '</params>', '<methodCall>', '</methodCall>', '<![CDATA[', ']]>', '<!--', '-->', '<?xml version="1.0"?>', '<string>', '<boolean>2</boolean>'];
const HOSTILE = [
  '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>',
  '<!DOCTYPE x SYSTEM "file:///etc/passwd">',
  '<!ENTITY xxe SYSTEM "file:///etc/shadow">',
  '&xxe;', '&lol9;', '&nbsp;', '&#0;', '&#xFFFFFF;', '&#x1F600;', '&', '&amp', '&#;',
  '<int>12abc</int>', '<int>99999999999999999999999999999</int>', '<i8>-99999999999999999999</i8>', '<double>1e99999</double>', '<double>-</double>',
  '<dateTime.iso8601>99999999T99:99:99</dateTime.iso8601>', '<base64>====</base64>',
  '<member><name>__proto__</name><value><struct><member><name>polluted</name><value><boolean>1</boolean></value></member></struct></value></member>',
  '<name>constructor</name>', '<methodName>__proto__</methodName>', '\u0000', '\u0007', '\uFFFE',
];
const BAD_BYTES = [Buffer.from([0xff]), Buffer.from([0xc3]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]), Buffer.from([0xc0, 0xaf])];

function validBody(): Buffer {
  const method = pick(['echo', 'echo', 'add', 'nope', 'system.listMethods', 'system.methodHelp', 'system.multicall', 'system.methodSignature']);
  const params = method === 'system.multicall'
    ? [[{ methodName: 'echo', params: [randomValue()] }, { methodName: pick(['add', 'system.multicall', 'nope']), params: [randomValue()] }]]
    : Array.from({ length: int(3) }, () => randomValue());
  return Buffer.from(serializeMethodCall(method, params));
}

function deepBody(): Buffer {
  const n = pick([63, 64, 65, 100, 500, 5000, 40000]);
  const [o, c] = rnd() < 0.5 ? ['<value><array><data>', '</data></array></value>'] : ['<value><struct><member><name>k</name>', '</member></struct></value>'];
  const closeAll = rnd() < 0.8;
  return Buffer.from(`<methodCall><methodName>echo</methodName><params><param>${o.repeat(n)}<value>1</value>${closeAll ? c.repeat(n) : c.repeat(int(n))}</param></params></methodCall>`);
}

function mutate(b: Buffer): Buffer {
  let s = b;
  for (let rounds = 1 + int(3); rounds > 0; rounds--) {
    const at = int(s.length + 1);
    switch (int(10)) {
      case 0: { const c = Buffer.from(s); if (c.length) c[int(c.length)] = int(256); s = c; break; } // flip a byte
      case 1: s = s.subarray(0, at); break; // truncate
      case 2: s = Buffer.concat([s.subarray(0, at), Buffer.from(pick(TAGS)), s.subarray(at)]); break;
      case 3: s = Buffer.concat([s.subarray(0, at), Buffer.from(pick(HOSTILE)), s.subarray(at)]); break;
      case 4: { const len = int(40); s = Buffer.concat([s.subarray(0, at), s.subarray(at + len)]); break; } // delete a range
      case 5: { const len = int(60); s = Buffer.concat([s.subarray(0, at), s.subarray(at, at + len), s.subarray(at)]); break; } // duplicate a range
      case 6: s = Buffer.concat([s.subarray(0, at), pick(BAD_BYTES), s.subarray(at)]); break;
      case 7: s = Buffer.from(s.toString('latin1').replace(/<(\/?)(int|i4|string|value|struct|array|name)>/, (_m, sl: string) => `<${sl}${pick(['INT', 'i16', 'Value', 'boolean', 'data'])}>`), 'latin1'); break;
      case 8: s = Buffer.concat([s, Buffer.from(pick(['trailing', '<x/>', '<methodCall/>', '\n', '<!-- c -->', '<?pi x?>']))]); break;
      default: s = Buffer.from(s.toString('latin1').replace(/-?\d+/, pick(['12abc', '99999999999999999999', '-0', '1e5', '0x10', '', ' 7 ', '١٢'])), 'latin1');
    }
  }
  return s;
}

function body(i: number): Buffer {
  const kind = i % 20;
  if (kind < 12) return mutate(validBody());
  if (kind < 14) return deepBody();
  if (kind === 14) return Buffer.from(Array.from({ length: int(300) }, () => int(256)));
  if (kind === 15) return Buffer.from(pick(HOSTILE) + serializeMethodCall('echo', [randomValue()]));
  if (kind === 16) return Buffer.from(`<methodCall><methodName>echo</methodName><params><param><value><struct>${pick(HOSTILE.slice(-5, -4))}</struct></value></param></params></methodCall>`);
  if (kind === 17) return Buffer.from(`<methodCall><methodName>echo</methodName><params><param><value><string>${'x'.repeat(int(2) ? 100 : LIMIT + 10)}</string></value></param></params></methodCall>`);
  if (kind === 18) return Buffer.concat([validBody(), pick(BAD_BYTES)]);
  return validBody(); // valid ones keep the server honest: they must succeed or fault cleanly
}

const methods = [
  method({ name: 'echo', params: [optional('value', Any)], returns: 'any', help: 'Returns its argument.', handler: async ([v]) => v ?? null }),
  method({ name: 'add', params: [param('a', Int), param('b', Int)], returns: 'int', help: 'Adds.', handler: async ([a, b]) => a + b }),
];

test(`fuzz: ${BODIES} malformed or hostile bodies: no crash, every reply a fault/value or 4xx, no prototype change, bounded memory`, async () => {
  const c = defaultConfig();
  Object.assign(c.server, { listen: '127.0.0.1:0', password: 'fuzz', body_limit_bytes: LIMIT, tls_cert: '', tls_key: '' });
  const { log, lines } = memoryLogger('warn');
  const app = createServer(c, { log, methods });
  after(() => app.close());
  await app.ready();
  const auth = basicAuth('oracle', 'fuzz');
  const protoKeys = Object.getOwnPropertyNames(Object.prototype).join();
  const counts = { ok: 0, fault: 0, status4xx: 0, parseFaults: 0 };
  const faultCodes = new Map<number, number>();
  gc();
  const rss0 = process.memoryUsage().rss;
  const heap0 = process.memoryUsage().heapUsed;
  let rssPeak = rss0;
  const BATCH = 64;
  for (let i = 0; i < BODIES; i += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, BODIES - i) }, (_, j) => body(i + j));
    const replies = await Promise.all(
      batch.map((payload) => app.inject({ method: 'POST', url: pick(['/', '/RPC2']), headers: { authorization: auth, 'content-type': 'text/xml' }, payload })),
    );
    replies.forEach((r, j) => {
      if (r.statusCode >= 400 && r.statusCode < 500) {
        assert.equal(r.statusCode, 413, `only an oversize body gets an HTTP error (body ${i + j}: ${batch[j].length} bytes)`);
        assert.ok(batch[j].length > LIMIT);
        counts.status4xx++;
        return;
      }
      assert.equal(r.statusCode, 200, `body ${i + j}: HTTP ${r.statusCode}`);
      try {
        parseMethodResponse(r.rawPayload);
        counts.ok++;
      } catch (e) {
        assert.ok(e instanceof XmlRpcFault, `body ${i + j}: the reply is not well-formed XML-RPC: ${(e as Error).message}`);
        assert.notEqual(e.faultCode, -32603, `body ${i + j}: INTERNAL fault (a bug): ${e.faultString}\n${batch[j].toString('latin1').slice(0, 400)}`);
        counts.fault++;
        if (e.faultCode === -32700) counts.parseFaults++;
        faultCodes.set(e.faultCode, (faultCodes.get(e.faultCode) ?? 0) + 1);
      }
    });
    if (i % 2048 === 0) rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    lines.length = 0; // the collected log is not the server's memory
  }
  rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  const growthMb = (rssPeak - rss0) / 1024 / 1024;
  gc();
  const heapGrowthMb = (process.memoryUsage().heapUsed - heap0) / 1024 / 1024;
  console.log(`fuzz: ${BODIES} bodies: ${counts.ok} values, ${counts.fault} faults (${counts.parseFaults} parse), ${counts.status4xx} × 413; ` +
    `codes ${JSON.stringify(Object.fromEntries(faultCodes))}; peak RSS growth ${growthMb.toFixed(1)} MB, heap growth after GC ${heapGrowthMb.toFixed(1)} MB`);
  assert.equal(counts.ok + counts.fault + counts.status4xx, BODIES);
  assert.ok(counts.parseFaults > BODIES / 3, 'most bodies really were malformed');
  assert.ok(counts.ok > 100, 'valid bodies still work');
  assert.ok(counts.status4xx > 0, 'oversize bodies were tried');
  assert.equal(Object.getOwnPropertyNames(Object.prototype).join(), protoKeys);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  // Peak RSS holds 64 bodies in flight (some over 256 KiB) and garbage not yet collected; what
  // survives a GC is what would leak.
  assert.ok(growthMb < 512, `peak RSS grew by ${growthMb.toFixed(1)} MB`);
  assert.ok(heapGrowthMb < 32, `the heap kept ${heapGrowthMb.toFixed(1)} MB after GC`);
  // The server still answers normally afterwards.
  const r = await app.inject({ method: 'POST', url: '/', headers: { authorization: auth }, payload: serializeMethodCall('add', [2, 3]) });
  assert.equal(parseMethodResponse(r.rawPayload), 5);
});
