// The connection cap's log line (connections.ts): at most one per LOG_EVERY_MS, measured on the
// guard's monotonic clock (a wall-clock step back used to silence it until the wall clock caught up),
// with the counts since the previous line. Fake sockets: the guard only destroys them and waits for
// their close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { ConnectionGuard, LOG_EVERY_MS } from '../../src/agent-extension/connections.js';
import type { Logger } from '../../src/shared/log.js';

function fakeSocket(): Socket {
  const s = new EventEmitter() as EventEmitter & { destroy: () => void; destroyed: boolean };
  s.destroyed = false;
  s.destroy = () => {
    s.destroyed = true;
  };
  return s as unknown as Socket;
}

test(`the cap's log line: once per ${LOG_EVERY_MS} ms of the monotonic clock (−ε silent, = and +ε logged), with the counts since the last`, () => {
  const lines: Array<Record<string, unknown>> = [];
  const log = { warn: (o: Record<string, unknown>) => lines.push(o) } as unknown as Logger;
  let clock = 1_000;
  const g = new ConnectionGuard(1, log, undefined, () => clock);
  const server = new EventEmitter();
  g.attach(server as unknown as Server);
  const first = fakeSocket();
  server.emit('connection', first);
  g.authenticated(first); // the one slot holds an authenticated call: new connections are refused
  const refuse = () => {
    const s = fakeSocket();
    server.emit('connection', s);
    assert.equal((s as unknown as { destroyed: boolean }).destroyed, true, 'refused');
  };
  refuse();
  assert.deepEqual(lines.map((l) => l.refused), [1], 'the first refusal is logged at once');
  clock += LOG_EVERY_MS - 1;
  refuse();
  assert.equal(lines.length, 1, 'not again before the interval');
  clock += 1;
  refuse();
  assert.deepEqual(lines.map((l) => l.refused), [1, 2], 'at the interval: the two since the last line');
  clock += LOG_EVERY_MS + 1;
  refuse();
  assert.deepEqual(lines.map((l) => l.refused), [1, 2, 1]);
});
