// Temporary directories a killed brick serve left (hook, define, domR upload: its `finally` never
// ran) are removed when brick serve starts, only those whose process is gone; a live process's
// directory, another user's, a link and a name brick does not make stay. They are in /tmp whatever
// TMPDIR says (the serve test sets TMPDIR elsewhere: what is there stays). The serve test runs brick
// serve in its own mount namespace whose /tmp is a directory of this test: every brick serve sweeps
// /tmp at start, and the other test files start brick serve too (two files run at once), so in the
// shared /tmp another serve could sweep this test's left directories first.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort, startServe } from '../fixtures/serve-process.js';
import { makeTempDir, sweepLeftTempDirs } from '../../src/shared/temp-dirs.js';
import { procStart } from '../../src/shared/process-identity.js';

// Not under /tmp: the serve below sees its own /tmp, and must still read its config here.
const dir = mkdtempSync(join('/var/tmp', 'brick-h-res-tmpdirs-'));
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

/** Six characters as mkdtemp makes them (another run of this test on the machine picks others). */
const six = () => randomBytes(3).toString('hex');

function layout(tmp: string) {
  mkdirSync(tmp, { recursive: true });
  const dead = deadPid();
  const myStart = procStart('self')!;
  const parentStart = procStart(process.ppid)!;
  const paths = {
    dead: join(tmp, `brick-hook-${dead}-${six()}`),
    // The start time in the name tells the maker from a later process with its pid.
    deadNew: join(tmp, `brick-hook-${dead}-${myStart}-${six()}`),
    liveNew: join(tmp, `brick-define-${process.pid}-${myStart}-${six()}`),
    reusedSelf: join(tmp, `brick-hook-${process.pid}-${Number(myStart) + 1}-${six()}`),
    reusedOther: join(tmp, `brick-domr-${process.ppid}-${Number(parentStart) - 1}-${six()}`),
    deadDefine: join(tmp, `brick-define-${dead}-${six()}`),
    live: join(tmp, `brick-hook-${process.pid}-${six()}`),
    foreign: join(tmp, `brick-domr-${dead}-${six()}`),
    link: join(tmp, `brick-define-${dead}-${six()}`),
    old: join(tmp, `brick-hook-${six()}`),
    other: join(tmp, `other-${dead}-${six()}`),
  };
  for (const p of [paths.dead, paths.deadNew, paths.liveNew, paths.reusedSelf, paths.reusedOther, paths.deadDefine, paths.live, paths.foreign, paths.old, paths.other]) {
    mkdirSync(p, { mode: 0o700 });
    writeFileSync(join(p, 'domxml'), '<domain/>');
  }
  chownSync(paths.foreign, 65534, 65534);
  symlinkSync(basename(paths.live), paths.link); // relative: the same target seen from a private /tmp
  return paths;
}

const GONE = ['dead', 'deadNew', 'deadDefine', 'reusedSelf', 'reusedOther'] as const;
const KEPT = ['live', 'liveNew', 'foreign', 'link', 'old', 'other'] as const;

test('makeTempDir names its process (pid and start time); the sweep removes only a left directory of this user whose maker is gone, its pid free or drawn since by another process', async () => {
  const tmp = join(dir, 'unit');
  const p = layout(tmp);
  assert.deepEqual((await sweepLeftTempDirs(tmp)).sort(), GONE.map((k) => p[k]).sort());
  for (const k of KEPT) assert.ok(existsSync(p[k]), `${k} kept`);
  assert.ok(existsSync(join(p.live, 'domxml')), 'nothing removed through the link');
  const mine = await makeTempDir('hook');
  try {
    assert.match(mine, new RegExp(`/brick-hook-${process.pid}-${procStart('self')}-[A-Za-z0-9]{6}$`));
  } finally {
    rmSync(mine, { recursive: true, force: true });
  }
});

test('brick serve removes at start the temporary directories a killed brick left, in /tmp whatever TMPDIR says', async () => {
  // This serve's /tmp is `priv` (a bind mount in a mount namespace of its own): no other test's brick
  // serve sees the directories left there, so what goes, this serve removed.
  const priv = join(dir, 'private-tmp');
  const p = layout(priv);
  const inside = (path: string) => join('/tmp', basename(path));
  // TMPDIR names another directory holding a left one: brick serve neither sweeps there (before: it
  // swept only there) nor writes there.
  const elsewhere = layout(join(dir, 'elsewhere'));
  const port = await freePort();
  const config = join(dir, 'brick.toml');
  writeFileSync(config, `[server]\nlisten = "127.0.0.1:${port}"\npassword = "tmp-pw"\ngenerate_credentials = false\ntls_cert = ""\ntls_key = ""\n`);
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = join(dir, 'elsewhere'); // the child's environment: it must change nothing
  let s;
  try {
    s = startServe(config, children, { wrap: ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /tmp && exec "$@"', priv] });
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
  for (const k of GONE) assert.ok(!existsSync(p[k]), `${k}: the left directory is gone:\n${out}`);
  for (const k of KEPT) assert.ok(existsSync(p[k]), `${k} kept`);
  for (const k of Object.keys(elsewhere) as (keyof typeof elsewhere)[]) assert.ok(existsSync(elsewhere[k]), `${k} under $TMPDIR kept`);
  assert.deepEqual(removed.sort(), GONE.map((k) => inside(p[k])).sort(), `this serve says it removed these, and nothing else:\n${out}`);
  s.child.kill('SIGTERM');
  await s.exited;
});
