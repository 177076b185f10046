// The shipped man page renders with man(1) without warnings, and the bash completion completes
// commands, options, option values and method names in a real bash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMMANDS } from '../../src/cli/commands.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const missing = existsSync('/usr/bin/man') ? false : '/usr/bin/man is missing: apt-get install man-db (scripts/install-test-deps.sh)';
const skip = missing && process.env.CI !== 'true' ? missing : false;

const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(cmd, args, { cwd: root, timeout: 120_000, env: { ...process.env, ...env } }, (e, stdout, stderr) =>
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr }),
    ),
  );

test('man -l packaging/man/brick.8 renders brick(8), with every command, and groff has no warning', { skip }, async () => {
  assert.ok(!missing, String(missing));
  const r = await run('man', ['--warnings', '-l', 'packaging/man/brick.8'], { MANWIDTH: '100', MANPAGER: 'cat', PAGER: 'cat' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '', 'groff warnings');
  assert.match(r.stdout, /^BRICK\(8\) +System Administration +BRICK\(8\)$/m);
  for (const s of ['NAME', 'SYNOPSIS', 'COMMANDS', 'EXIT STATUS', 'FILES']) assert.match(r.stdout, new RegExp(`^${s}$`, 'm'));
  for (const c of COMMANDS) assert.match(r.stdout, new RegExp(`^ {7}brick ${c.name}\\b`, 'm'), c.name);
  assert.match(r.stdout, /^ {7}4 +Status, +doctor: +not protected/m);
});

test('bash completion: commands, a command\'s options, option values, method names', async () => {
  const script = [
    'source packaging/bash-completion/brick',
    `brick() { "${process.execPath}" --import tsx src/cli/main.ts "$@"; }`,
    't() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _brick brick; echo "${COMPREPLY[*]}"; }',
    't brick st',
    't brick status --',
    't brick serve --log-format ""',
    't brick call network_ensure_v',
  ].join('\n');
  const r = await run('bash', ['-c', script]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.split('\n').slice(0, 4), ['status', '--config --json --timeout --help', 'json pretty', 'network_ensure_vlan_bridge network_ensure_vxlan_bridge']);
});
