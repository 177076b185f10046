// Where brick serve makes its private temporary directories (hooks, domain_define, domR uploads) and
// what it sweeps at start: /tmp, whatever TMPDIR says. os.tmpdir() follows TMPDIR, so the
// environment the agent was started with moved both (a rule: no environment variable changes how the
// shipped binary runs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { TEMP_ROOT, leftByGoneProcess, makeTempDir, sweepLeftTempDirs } from '../../src/shared/temp-dirs.js';
import { procStart, type ProcessFacts } from '../../src/shared/process-identity.js';

/** The pid of a process that has ended (and been reaped). */
function deadPid(): number {
  return Number(String(spawnSync('sh', ['-c', 'echo $$']).stdout).trim());
}

const suffix = () => randomBytes(3).toString('hex');

/** Run fn with TMPDIR set to `dir`, then put it back. */
async function withTmpdir<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
}

test('the temporary directories are made in /tmp whatever TMPDIR says (before: in $TMPDIR)', async () => {
  assert.equal(TEMP_ROOT, '/tmp');
  const elsewhere = mkdtempSync(join(TEMP_ROOT, 'brick-unit-tmpdir-'));
  try {
    const made = await withTmpdir(elsewhere, () => makeTempDir('define'));
    try {
      assert.match(made, new RegExp(`^/tmp/brick-define-${process.pid}-${procStart('self')}-[A-Za-z0-9]{6}$`));
    } finally {
      rmSync(made, { recursive: true, force: true });
    }
  } finally {
    rmSync(elsewhere, { recursive: true, force: true });
  }
});

test("serve's start-up sweep looks in /tmp whatever TMPDIR says, and leaves $TMPDIR alone (before: it swept $TMPDIR)", async () => {
  const dead = deadPid();
  const elsewhere = mkdtempSync(join(TEMP_ROOT, 'brick-unit-tmpdir-'));
  const inTmp = join(TEMP_ROOT, `brick-hook-${dead}-${suffix()}`);
  const inElsewhere = join(elsewhere, `brick-hook-${dead}-${suffix()}`);
  try {
    mkdirSync(inTmp, { mode: 0o700 });
    mkdirSync(inElsewhere, { mode: 0o700 });
    const removed = await withTmpdir(elsewhere, () => sweepLeftTempDirs());
    assert.ok(removed.includes(inTmp), `removed ${JSON.stringify(removed)}`);
    assert.ok(!removed.includes(inElsewhere));
    assert.equal(existsSync(inTmp), false);
    assert.equal(existsSync(inElsewhere), true, 'a directory under $TMPDIR is not brick serve\'s to remove');
  } finally {
    rmSync(inTmp, { recursive: true, force: true });
    rmSync(elsewhere, { recursive: true, force: true });
  }
});

test('a left directory is one whose maker is gone: no process has its pid, or one with another start time drew it since (before: kept while the pid ran)', () => {
  const procs: Record<number, ProcessFacts> = {
    500: { pidExists: true, pidStart: '9000' }, // this process, started at 9000
    700: { pidExists: true, pidStart: '1234' }, // runs, started at 1234
    701: { pidExists: true, pidStart: undefined }, // runs, start unreadable (hidepid, another user's)
  };
  const facts = (pid: number): ProcessFacts => procs[pid] ?? { pidExists: false, pidStart: undefined };
  const left = (name: string) => leftByGoneProcess(name, facts);
  // The maker runs: kept.
  assert.equal(left('brick-hook-700-1234-aB3xYz'), false);
  assert.equal(left('brick-hook-700-aB3xYz'), false, 'made before names had a start time: the pid alone');
  assert.equal(left('brick-define-701-1234-aB3xYz'), false, 'a start time that cannot be read: the pid alone');
  // Another process drew the pid: the maker is gone.
  assert.equal(left('brick-domr-700-1233-aB3xYz'), true);
  assert.equal(left('brick-hook-700-12345-aB3xYz'), true);
  // No process has the pid.
  assert.equal(left('brick-hook-702-1234-aB3xYz'), true);
  assert.equal(left('brick-hook-702-aB3xYz'), true);
  assert.equal(left('brick-hook-702-123456'), true, 'six digits are mkdtemp\'s suffix, not a start time');
  // This process's pid: its own (or, without a start time, maybe its own) stay; another start is a previous process's.
  assert.equal(left('brick-hook-500-9000-aB3xYz'), false);
  assert.equal(left('brick-hook-500-aB3xYz'), false);
  assert.equal(left('brick-hook-500-8999-aB3xYz'), true);
  assert.equal(leftByGoneProcess('brick-hook-500-8999-aB3xYz', () => ({ pidExists: true, pidStart: undefined })), false, 'its own start unknown: kept');
  // Names brick does not make are never taken.
  for (const n of ['brick-other-702-1234-aB3xYz', 'brick-hook-0-1234-aB3xYz', 'brick-hook-702-1234-aB3xY', 'brick-hook-702-1234-aB3xYz-x', 'xbrick-hook-702-aB3xYz', 'brick-hook-702-12a4-aB3xYz'])
    assert.equal(left(n), false, n);
});
