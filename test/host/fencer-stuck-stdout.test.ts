// A fencer whose stdout nobody reads (journald stuck, a full pipe) must keep petting the watchdog:
// logging must never be what stops the watchdog. The fencer runs with stdout on a pipe shrunk to
// one page (F_SETPIPE_SZ) whose read end it holds itself and never reads, and with a dozen pools
// whose probes fail, so its log lines fill the pipe within the first second.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, removeRoot, sleep, tempRoot, waitFor } from './fencer-harness.js';

const skip = (() => {
  const why = !existsSync('/usr/bin/python3') ? 'needs python3 to shrink the pipe (F_SETPIPE_SZ)' : undefined;
  if (why && process.env.CI === 'true') throw new Error(`prerequisite missing in CI: ${why}`);
  return why ?? false;
})();

const root = tempRoot('stuck-stdout');
after(() => removeRoot(root));

// Make a one-page pipe, keep its read end open (inheritable, never read), make it stdout, exec.
const WRAP = [
  'import os, fcntl, sys',
  'r, w = os.pipe()',
  'fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ',
  'os.set_inheritable(r, True)',
  'os.dup2(w, 1)',
  'os.execvp(sys.argv[1], sys.argv[1:])',
].join('\n');

test('stdout that nobody reads does not stop the watchdog being petted', { skip }, async () => {
  const good = join(root, 'good-pool');
  mkdirSync(good);
  const watchdog = join(root, 'watchdog');
  writeFileSync(watchdog, '');
  const pools = [
    `[[fencer.pool]]\npath = "${good}"\nfence_when = "in-use"\nrequire_mount = false`,
    ...Array.from({ length: 12 }, (_, i) => `[[fencer.pool]]\npath = "${root}/missing-pool-with-a-long-name-to-fill-the-log-${i}"\nfence_when = "in-use"`),
  ];
  const config = join(root, 'brick.toml');
  writeFileSync(
    config,
    [
      '[server]',
      'listen = "127.0.0.1:0"',
      '[fencer]',
      'action = "log-only"',
      'probe_interval_s = 0.2',
      'probe_timeout_s = 1',
      'fence_after_s = 5',
      'watchdog_timeout_s = 4',
      `watchdog_device = "${watchdog}"`,
      `sysrq_trigger = "${join(root, 'sysrq')}"`,
      `state_dir = "${join(root, 'state')}"`,
      `marker_dir = "${join(root, 'marker')}"`,
      'host_id = "stuck-stdout"',
      'vm_query = "none"',
      ...pools,
    ].join('\n') + '\n',
  );
  const bin = process.env.BRICK_BIN;
  const args = ['fencer', '--config', config, '--log-level', 'debug'];
  const argv = bin ? [bin, ...args] : [process.execPath, '--import', 'tsx', join(REPO, 'src/cli/main.ts'), ...args];
  const proc = spawn('/usr/bin/python3', ['-c', WRAP, ...argv], {
    cwd: REPO,
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  try {
    await waitFor('the first pets', () => statSync(watchdog).size > 0, 20_000);
    await sleep(3000); // the failing pools' warnings have long filled the one-page pipe by now
    const before = statSync(watchdog).size;
    await sleep(3000);
    const pets = statSync(watchdog).size - before;
    // The tick is at most 250 ms and pets once a tick while no used pool has expired: ~12 in 3 s.
    assert.ok(pets >= 6, `the watchdog was petted ${pets} times in 3 s with stdout stuck (expected about 12)`);
  } finally {
    proc.kill('SIGKILL');
  }
});
