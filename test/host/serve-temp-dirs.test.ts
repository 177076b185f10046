// Temporary directories a killed brick serve left (hook, define, domR upload: its `finally` never
// ran) are removed when brick serve starts, only those whose process is gone; a live process's
// directory, another user's, a link and a name brick does not make stay.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startServe } from '../fixtures/serve-process.js';
import { makeTempDir, sweepLeftTempDirs } from '../../src/shared/temp-dirs.js';

const dir = mkdtempSync(join(tmpdir(), 'brick-h-res-tmpdirs-'));
const children: Array<{ kill: (s: NodeJS.Signals) => boolean }> = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** The pid of a process that has ended (and been reaped). */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(String(r.stdout).trim());
}

function layout(tmp: string) {
  mkdirSync(tmp, { recursive: true });
  const dead = deadPid();
  const paths = {
    dead: join(tmp, `brick-hook-${dead}-aB3xYz`),
    deadDefine: join(tmp, `brick-define-${dead}-Qw12er`),
    live: join(tmp, `brick-hook-${process.pid}-aB3xYz`),
    foreign: join(tmp, `brick-domr-${dead}-zzzzzz`),
    link: join(tmp, `brick-define-${dead}-linkkk`),
    old: join(tmp, 'brick-hook-aB3xYz'),
    other: join(tmp, `other-${dead}-aB3xYz`),
  };
  for (const p of [paths.dead, paths.deadDefine, paths.live, paths.foreign, paths.old, paths.other]) {
    mkdirSync(p, { mode: 0o700 });
    writeFileSync(join(p, 'domxml'), '<domain/>');
  }
  chownSync(paths.foreign, 65534, 65534);
  symlinkSync(paths.live, paths.link);
  return paths;
}

test('makeTempDir names its process; the sweep removes only a left directory of this user whose pid is gone', async () => {
  const tmp = join(dir, 'unit');
  const p = layout(tmp);
  assert.deepEqual((await sweepLeftTempDirs(tmp)).sort(), [p.dead, p.deadDefine].sort());
  for (const k of ['live', 'foreign', 'link', 'old', 'other'] as const) assert.ok(existsSync(p[k]), `${k} kept`);
  assert.ok(existsSync(join(p.live, 'domxml')), 'nothing removed through the link');
  const mine = await makeTempDir('hook');
  try {
    assert.match(mine, new RegExp(`/brick-hook-${process.pid}-[A-Za-z0-9]{6}$`));
  } finally {
    rmSync(mine, { recursive: true, force: true });
  }
});

test('brick serve removes at start the temporary directories a killed brick left', async () => {
  const tmp = join(dir, 'serve');
  const p = layout(tmp);
  const port = await freePort();
  const config = join(dir, 'brick.toml');
  writeFileSync(config, `[server]\nlisten = "127.0.0.1:${port}"\npassword = "tmp-pw"\ngenerate_credentials = false\ntls_cert = ""\ntls_key = ""\n`);
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = tmp; // the child's system temporary directory
  let s;
  try {
    s = startServe(config, children);
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
  const out = await s.listening;
  assert.ok(!existsSync(p.dead) && !existsSync(p.deadDefine), `the left directories are gone:\n${out}`);
  for (const k of ['live', 'foreign', 'link', 'old', 'other'] as const) assert.ok(existsSync(p[k]), `${k} kept`);
  assert.match(out, /removed temporary directories a stopped brick left/);
  s.child.kill('SIGTERM');
  await s.exited;
});
