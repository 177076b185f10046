// The line of a call that answered is written as one string (callLine), not through pino: it must be
// the very bytes pino writes for the same line, for every method name and duration, honour the
// logger's level, and not apply where pino's line would differ (pretty format, a child logger).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callLine, createLogger, type LogFormat } from '../../src/shared/log.js';
import { Dispatcher } from '../../src/agent-extension/dispatch.js';
import { defaultConfig } from '../../src/config/load.js';
import { serializeMethodCall } from '../../src/agent-extension/codec.js';
import { method, param } from '../../src/rpc/params.js';
import { Plain } from '../../src/rpc/formats.js';

function collector(): { lines: string[]; destination: { write(s: string): void } } {
  const lines: string[] = [];
  return { lines, destination: { write: (s: string) => void lines.push(s) } };
}

function logger(svc: string, format: LogFormat = 'json', level = 'info') {
  const c = collector();
  return { ...c, log: createLogger({ svc, format, level, destination: c.destination }) };
}

const METHODS = [
  'get_module_version', 'system.listMethods', 'network_ensure_bridge', 'a', 'x'.repeat(256), 'ovs-vsctl:add/br_0.1',
  '(unparsed)', 'quote"back\\slash', 'tab\there', 'ünïcode', '\u2028line', 'ctl\u0001',
];
const DURATIONS = [0, 0.01, 0.1, 0.12, 1, 1.5, 12.34, 999.99, 30000, 123456.78, 5e-7];

test('callLine writes, byte for byte, what pino writes for the same ok call', () => {
  for (const svc of ['agent', 'fencer']) {
    const pinoOut = logger(svc);
    const direct = logger(svc);
    const line = callLine(direct.log);
    assert.ok(line, 'createLogger in JSON format has a direct call line');
    for (const method of METHODS)
      for (const ms of DURATIONS) {
        pinoOut.log.info({ method, ms, outcome: 'ok' }, 'call');
        line(method, ms);
      }
    assert.equal(direct.lines.length, METHODS.length * DURATIONS.length);
    assert.deepEqual(direct.lines, pinoOut.lines);
    assert.match(direct.lines[0], /^<6>\{"level":30,"svc":"(agent|fencer)","method":"get_module_version","ms":0,"outcome":"ok","msg":"call"\}\n$/);
  }
});

test('callLine honours the level the logger has when the line is written', () => {
  const { log, lines } = logger('agent', 'json', 'warn');
  const line = callLine(log)!;
  line('get_module_version', 1);
  assert.deepEqual(lines, []);
  log.level = 'debug';
  line('get_module_version', 2);
  log.level = 'silent';
  line('get_module_version', 3);
  assert.equal(lines.length, 1);
  assert.match(lines[0], /"ms":2,/);
});

test('no direct line where pino would write another: pretty format, a child logger, a logger made elsewhere', () => {
  assert.equal(callLine(logger('agent', 'pretty').log), undefined);
  assert.equal(callLine(logger('agent').log.child({ method: 'x' })), undefined);
});

test('a dispatcher logs an ok call (direct) and a fault (pino) with the same keys in the same order as before', async () => {
  const { log, lines } = logger('agent');
  const echo = method({ name: 'echo', params: [param('v', Plain(8))], returns: 'string', help: 'Echoes.', handler: async ([v]) => v });
  const d = new Dispatcher({ config: defaultConfig(), log, methods: [echo] });
  await d.handle(serializeMethodCall('echo', ['hi']));
  await d.handle(serializeMethodCall('echo', []));
  const parsed = lines.map((l) => JSON.parse(l.slice(3)) as Record<string, unknown>);
  assert.equal(parsed.length, 2);
  assert.deepEqual(Object.keys(parsed[0]), ['level', 'svc', 'method', 'ms', 'outcome', 'msg']);
  assert.equal(parsed[0].method, 'echo');
  assert.equal(parsed[0].outcome, 'ok');
  assert.equal(typeof parsed[0].ms, 'number');
  assert.equal(parsed[1].outcome, 'fault');
  assert.equal(parsed[1].method, 'echo');
  assert.equal(typeof parsed[1].faultCode, 'number');
});
