// fastify runs without a logger instance of its own (no per-request child logger, no response
// listeners for request logging): its own lines must still reach brick's log, at their level, as
// component "http".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig } from '../../src/config/load.js';
import { createServer } from '../../src/agent-extension/server.js';
import { memoryLogger } from '../fixtures/server.js';

test("fastify's own lines (its listen line, a warning, an error) reach the log as component http, at their level", async () => {
  const c = defaultConfig();
  Object.assign(c.server, { listen: '127.0.0.1:0', password: 'pw', tls_cert: '', tls_key: '' });
  const { log, lines } = memoryLogger('info');
  const app = createServer(c, { log, methods: [] });
  try {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const listening = lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at http://127.0.0.1:'));
    assert.ok(listening, `fastify's listen line is logged: ${JSON.stringify(lines)}`);
    assert.equal(listening.component, 'http');
    assert.equal(listening.level, 30);
    app.log.warn({ err: new Error('w') }, 'a fastify warning');
    app.log.error('a fastify error');
    app.log.debug('below the level');
    const warn = lines.find((l) => l.msg === 'a fastify warning');
    assert.equal(warn?.level, 40);
    assert.equal(warn?.component, 'http');
    assert.equal((warn?.err as { message?: string })?.message, 'w', 'objects are serialized as pino does');
    assert.equal(lines.find((l) => l.msg === 'a fastify error')?.level, 50);
    assert.equal(lines.find((l) => l.msg === 'below the level'), undefined, "the logger's level applies");
  } finally {
    await app.close();
  }
});
