// Temporary directories a killed brick serve left (hook, define, domR upload: its `finally` never
// ran) are removed when brick serve starts, only those whose process is gone; a live process's
// directory, another user's, a link and a name brick does not make stay. They are in /tmp whatever
// TMPDIR says (the serve test sets TMPDIR elsewhere: what is there stays).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort, startServe } from '../fixtures/serve-process.js';
import { TEMP_ROOT, makeTempDir, sweepLeftTempDirs } from '../../src/shared/temp-dirs.js';

const dir = mkdtempSync(join(tmpdir(), 'brick-h-res-tmpdirs-'));
const children: Array<{ kill: (s: NodeJS.Signals) => boolean }> = [];
/** What a test made in /tmp itself (brick serve sweeps only there). */
const inTmp: string[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const p of inTmp) rmSync(p, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

/** The pid of a process that has ended (and been reaped). */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(String(r.stdout).trim());
}

/** Six characters as mkdtemp makes them (another run of this test on the machine picks others). */
const six = () => randomBytes(3).toString('hex');

function layout(tmp: string) {
  mkdirSync(tmp, { recursive: true });
  const dead = deadPid();
  const paths = {
    dead: join(tmp, `brick-hook-${dead}-${six()}`),
    deadDefine: join(tmp, `brick-define-${dead}-${six()}`),
    live: join(tmp, `brick-hook-${process.pid}-${six()}`),
    foreign: join(tmp, `brick-domr-${dead}-${six()}`),
    link: join(tmp, `brick-define-${dead}-${six()}`),
    old: join(tmp, `brick-hook-${six()}`),
    other: join(tmp, `other-${dead}-${six()}`),
  };
  if (tmp === TEMP_ROOT) inTmp.push(...Object.values(paths));
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

test('brick serve removes at start the temporary directories a killed brick left, in /tmp whatever TMPDIR says', async () => {
  // Every brick serve sweeps /tmp when it starts, and the other test files start brick serve too (two
  // files run at once): one of them can sweep this test's left directories in the second before this
  // serve does. That shows as the directories gone while this serve's log names none of them; the
  // scenario is then set up again (at most three times). Each attempt asserts everything below.
  for (let attempt = 1; ; attempt++) {
    const p = layout(TEMP_ROOT);
    // TMPDIR names another directory holding a left one: brick serve neither sweeps there (before: it
    // swept only there) nor writes there.
    const elsewhere = layout(join(dir, `elsewhere-${attempt}`));
    const port = await freePort();
    const config = join(dir, 'brick.toml');
    writeFileSync(config, `[server]\nlisten = "127.0.0.1:${port}"\npassword = "tmp-pw"\ngenerate_credentials = false\ntls_cert = ""\ntls_key = ""\n`);
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = join(dir, `elsewhere-${attempt}`); // the child's environment: it must change nothing
    let s;
    try {
      s = startServe(config, children);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    const out = await s.listening;
    // What this serve said it removed (the line is written before the one saying it listens).
    const removed = out
      .split('\n')
      .map((l) => l.replace(/^<\d>/, ''))
      .filter((l) => l.includes('removed temporary directories a stopped brick left'))
      .flatMap((l) => (JSON.parse(l) as { removed: string[] }).removed);
    const gone = !existsSync(p.dead) && !existsSync(p.deadDefine);
    if (gone && !removed.includes(p.dead) && !removed.includes(p.deadDefine) && attempt < 3) {
      s.child.kill('SIGTERM');
      await s.exited;
      continue; // swept by another test's brick serve first
    }
    assert.ok(gone, `the left directories are gone:\n${out}`);
    for (const k of ['live', 'foreign', 'link', 'old', 'other'] as const) assert.ok(existsSync(p[k]), `${k} kept`);
    for (const k of Object.keys(elsewhere) as (keyof typeof elsewhere)[]) assert.ok(existsSync(elsewhere[k]), `${k} under $TMPDIR kept`);
    assert.ok(removed.includes(p.dead) && removed.includes(p.deadDefine), `this serve says it removed both: ${JSON.stringify(removed)}\n${out}`);
    s.child.kill('SIGTERM');
    await s.exited;
    return;
  }
});
