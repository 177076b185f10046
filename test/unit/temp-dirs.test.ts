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
import { TEMP_ROOT, makeTempDir, sweepLeftTempDirs } from '../../src/shared/temp-dirs.js';

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
      assert.match(made, new RegExp(`^/tmp/brick-define-${process.pid}-[A-Za-z0-9]{6}$`));
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
