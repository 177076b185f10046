// The agent's stdout (batchedStdout): info lines go out in batches (at most BATCH_MS late), a warning
// or worse at the end of its turn with everything queued before it, and whatever is queued when the
// process exits is written before it goes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BATCH_BYTES, BATCH_MS, batchedStdout, createLogger } from '../../src/shared/log.js';

function withFile(fn: (fd: number, read: () => string[]) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'brick-log-'));
    const file = join(dir, 'out');
    const fd = openSync(file, 'w');
    try {
      await fn(fd, () => readFileSync(file, 'utf8').split('\n').filter(Boolean));
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  };
}
const turn = () => new Promise((r) => setImmediate(r));

test('batchedStdout: a warning is written at the end of its turn, with the lines queued before it, in order', withFile(async (fd, read) => {
  const log = createLogger({ svc: 'agent', destination: batchedStdout(fd) });
  log.info({ n: 1 }, 'call');
  log.warn({ n: 2 }, 'call');
  assert.deepEqual(read(), [], 'nothing written while the turn runs');
  // Immediates run in order: this one runs right after the flush the warning scheduled.
  await turn();
  const lines = read();
  assert.equal(lines.length, 2);
  assert.match(lines[0], /^<6>\{"level":30,"svc":"agent","n":1,"msg":"call"\}$/);
  assert.match(lines[1], /^<4>\{"level":40,/);
  log.error('bad');
  await turn();
  assert.equal(read().length, 3, 'an error is written at the end of its turn');
}));

test(`batchedStdout: info lines wait for the next batch (at most ${BATCH_MS} ms), then go out in one write`, (t) =>
  withFile(async (fd, read) => {
    // The batch's timer runs on mocked time: on a loaded machine two turns can take longer than
    // BATCH_MS of real time, and the batch would (rightly) have gone out before the first check.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const log = createLogger({ svc: 'agent', destination: batchedStdout(fd) });
    log.info('a');
    await turn();
    log.info('b');
    await turn();
    assert.deepEqual(read(), [], 'info lines are not written at the end of their turn');
    t.mock.timers.tick(BATCH_MS - 1);
    assert.deepEqual(read(), [], `nor before ${BATCH_MS} ms`);
    t.mock.timers.tick(1);
    assert.deepEqual(read().map((l) => JSON.parse(l.slice(3)).msg), ['a', 'b']);
  })(),
);

test('batchedStdout: logger.flush() writes the queued lines at once (serve flushes its "listening" line)', withFile(async (fd, read) => {
  const log = createLogger({ svc: 'agent', destination: batchedStdout(fd) });
  log.info('queued');
  log.info({ url: 'http://127.0.0.1:1/' }, 'brick agent extension listening');
  assert.deepEqual(read(), []);
  log.flush();
  assert.deepEqual(read().map((l) => JSON.parse(l.slice(3)).msg), ['queued', 'brick agent extension listening']);
}));

test('batchedStdout: a full batch is written at the end of its turn', withFile(async (fd, read) => {
  const log = createLogger({ svc: 'agent', destination: batchedStdout(fd) });
  const big = 'x'.repeat(1024);
  const n = Math.ceil(BATCH_BYTES / big.length);
  for (let i = 0; i < n; i++) log.info({ big }, 'filler');
  await turn();
  assert.equal(read().length, n);
}));

test('batchedStdout: lines queued when the process exits are written (process.exit and an uncaught error)', () => {
  const logTs = fileURLToPath(new URL('../../src/shared/log.ts', import.meta.url));
  for (const [end, code] of [['process.exit(0)', 0], ["throw new Error('boom')", 1]] as const) {
    const script = `import { batchedStdout, createLogger } from ${JSON.stringify(logTs)};
const log = createLogger({ svc: 'agent', destination: batchedStdout() });
for (let i = 0; i < 3; i++) log.info({ i }, 'queued');
${end};`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, code, r.stderr);
    assert.equal(r.stdout.split('\n').filter((l) => l.includes('"msg":"queued"')).length, 3, `${end}: ${r.stdout}`);
  }
});
