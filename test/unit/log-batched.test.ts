// The agent's stdout (batchedStdout): the lines of one event-loop turn go out together at the end of
// that turn, never later, and whatever is queued when the process exits is written before it goes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { batchedStdout, createLogger } from '../../src/shared/log.js';

test('batchedStdout: one turn\'s lines are written together at the end of the turn', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'brick-log-'));
  const file = join(dir, 'out');
  const fd = openSync(file, 'w');
  try {
    const log = createLogger({ svc: 'agent', destination: batchedStdout(fd) });
    log.info({ n: 1 }, 'call');
    log.warn({ n: 2 }, 'call');
    assert.equal(readFileSync(file, 'utf8'), '', 'nothing written while the turn runs');
    await new Promise((r) => setImmediate(r));
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    assert.equal(lines.length, 2);
    assert.match(lines[0], /^<6>\{"level":30,"svc":"agent","n":1,"msg":"call"\}$/);
    assert.match(lines[1], /^<4>\{"level":40,/);
    log.info('later');
    // Immediates run in order: this one runs right after the flush the line scheduled (a timer
    // could fire before it on a loaded machine, in the loop's timers phase).
    await new Promise((r) => setImmediate(r));
    assert.equal(readFileSync(file, 'utf8').split('\n').filter(Boolean).length, 3, 'a line logged in a later turn is written in that turn');
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});

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
