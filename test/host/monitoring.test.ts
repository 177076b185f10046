// `promtool test rules` on the shipped alert rules (packaging/monitoring/brick-alerts.yml): each
// alert with series that stay below its threshold and then cross it (brick-alerts.test.yml).
// promtool comes from Debian's prometheus package (scripts/install-test-deps.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'packaging', 'monitoring');
const promtool = '/usr/bin/promtool';
const missing = existsSync(promtool) ? false : `${promtool} is missing: apt-get install prometheus (scripts/install-test-deps.sh)`;
const skip = missing && process.env.CI !== 'true' ? missing : false;

const run = (args: string[]) =>
  new Promise<{ code: number; out: string }>((resolve) =>
    execFile(promtool, args, { cwd: dir, timeout: 120_000 }, (e, stdout, stderr) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, out: stdout + stderr })),
  );

test('promtool check rules: the shipped alert rules are valid', { skip }, async () => {
  assert.ok(!missing, String(missing));
  const r = await run(['check', 'rules', 'brick-alerts.yml']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /SUCCESS: \d+ rules found/);
});

test('promtool test rules: every alert stays quiet below its threshold and fires once crossed', { skip }, async () => {
  assert.ok(!missing, String(missing));
  const r = await run(['test', 'rules', 'brick-alerts.test.yml']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /SUCCESS/);
});
