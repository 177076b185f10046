// The admin's side of the command line (issue 21): each command's --help, the exit codes of status,
// doctor and call against a real agent (brick's own server on 127.0.0.1, port 0) and a real fencer
// state file, brick methods / brick help METHOD, check-config on an empty file and on a quoted
// fence command. Most run main() in this process (the exit code is what the process would exit
// with); the must-show ones also run as a real process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as netServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.js';
import { COMMANDS, EXIT, EXIT_CODES, usage } from '../../src/cli/commands.js';
import { writeFencerState, type FencerState, type PoolState } from '../../src/fencer/state.js';
import { writeFenceMarker } from '../../src/fencer/marker.js';
import { judgeStatus } from '../../src/cli/status.js';
import { procStart } from '../../src/shared/process-identity.js';
import { startTestServer, type TestServer } from '../fixtures/server.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let dir: string;
let srv: TestServer;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'brick-cli-admin-'));
  srv = await startTestServer();
});
after(async () => {
  await srv.close();
  rmSync(dir, { recursive: true, force: true });
});

async function brick(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (s) => void (stdout += s), err: (s) => void (stderr += s) });
  return { code, stdout, stderr };
}

function spawnBrick(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts'), ...args], { cwd: root, timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

const noStack = (s: string) => assert.doesNotMatch(s, /^\s+at .+[(:]\d+/m, `a stack trace leaked:\n${s}`);
const port = () => Number(new URL(srv.url).port);
let n = 0;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = netServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** A config for a host whose agent is the test server; fencer files in a fresh directory. */
function hostConfig(opts: { password?: string; listen?: string; fencer?: string } = {}): { path: string; state: string; marker: string } {
  const d = join(dir, `host-${++n}`);
  const state = join(d, 'run');
  const marker = join(d, 'lib');
  mkdirSync(state, { recursive: true });
  mkdirSync(marker, { recursive: true });
  const path = join(d, 'brick.toml');
  writeFileSync(
    path,
    `[server]\nlisten = "${opts.listen ?? `127.0.0.1:${port()}`}"\ntls_cert = ""\ntls_key = ""\npassword = "${opts.password ?? srv.password}"\n` +
      `[fencer]\nstate_dir = "${state}"\nmarker_dir = "${marker}"\n${opts.fencer ?? ''}`,
  );
  return { path, state, marker };
}

function pool(over: Partial<PoolState> = {}): PoolState {
  return {
    path: '/mnt/pool1',
    heartbeat: 'ovm',
    heartbeat_file: '/mnt/pool1/.hb-h1',
    fence_when: 'in-use',
    state: 'healthy',
    armed: true,
    in_use: true,
    last_ok_age_s: 1,
    fence_in_s: 29,
    probe_latency_ms: { last: 3, min: 2, max: 9 },
    stuck_probes: 0,
    stuck_for_s: null,
    probes_ok: 10,
    probes_failed: 0,
    last_error: null,
    ...over,
  };
}

/**
 * A fencer state file. `ageS` is how old the file is; a running fencer's file is written "now" plus
 * a margin, so a slow start of the process under test cannot make it look stale (the staleness rule
 * itself is tested with ageS = 60).
 */
function state(
  stateDir: string,
  o: { ageS?: number; pools?: PoolState[]; action?: FencerState['action']; watchdog?: Partial<FencerState['watchdog']>; runtime_pools?: FencerState['runtime_pools']; extra?: Partial<FencerState> } = {},
): void {
  const written = o.ageS === undefined ? Date.now() + 30_000 : Date.now() - o.ageS * 1000;
  writeFencerState(stateDir, {
    version: 1,
    // A process that exists (this one), and its start time: a running fencer's writer is alive.
    pid: process.pid,
    pid_start: procStart(process.pid),
    host_id: 'h1',
    written_at_ms: written,
    started_at_ms: written - 100_000,
    action: o.action ?? 'reboot',
    fence_after_s: 30,
    probe_interval_s: 5,
    probe_timeout_s: 10,
    watchdog: { device: '/dev/watchdog', open: true, petting: true, last_pet_age_s: 0.5, timeout_s: 20, ...o.watchdog },
    fenced: null,
    last_fence: null,
    pools: o.pools ?? [pool()],
    ...(o.runtime_pools ? { runtime_pools: o.runtime_pools } : {}),
    ...o.extra,
  });
}

// ------------------------------------------------------------------------------------ --help

test('each subcommand\'s --help says what it does and names its own options (and not the others\'), exit 0', async () => {
  const all = new Set(COMMANDS.flatMap((c) => c.options.map((o) => `--${o.name}`)));
  for (const c of COMMANDS.filter((x) => x.options.some((o) => o.name === 'help'))) {
    for (const flag of ['--help', '-h']) {
      const r = await brick(c.name, flag);
      assert.equal(r.code, 0, `${c.name} ${flag}: ${r.stderr}`);
      assert.ok(r.stdout.startsWith(`usage: brick ${c.name}`), `${c.name} ${flag}:\n${r.stdout}`);
      assert.ok(r.stdout.includes(c.summary.slice(1)), `${c.name}: says what it does`);
      const own = new Set(c.options.map((o) => `--${o.name}`));
      for (const o of c.options) {
        assert.ok(r.stdout.includes(`--${o.name}`), `${c.name} --help lacks --${o.name}`);
        if (o.short) assert.ok(r.stdout.includes(`-${o.short}, --${o.name}`), `${c.name} --help lacks -${o.short}`);
      }
      for (const other of all) if (!own.has(other)) assert.ok(!new RegExp(`${other}\\b`).test(r.stdout), `${c.name} --help names ${other}, not its option`);
    }
  }
  const serve = await brick('serve', '--help');
  assert.match(serve.stdout, /--log-level LEVEL/);
  assert.match(serve.stdout, /--log-format json\|pretty/);
  const call = await brick('call', '--help');
  for (const o of ['--url URL', '-u, --user U', '-p, --password-file F', '-k, --insecure', '-t, --timeout S']) assert.ok(call.stdout.includes(o), o);
  for (const code of [5, 6, 7]) assert.match(call.stdout, new RegExp(`^  ${code}  call: `, 'm'));
  assert.match((await brick('help', 'status')).stdout, /^usage: brick status /);
});

test('the usage lists --timeout, --log-level and the short flags; brick --help lists every exit code', async () => {
  const u = usage();
  for (const s of ['--timeout S', '--log-level LEVEL', '-c|--config FILE', '-u|--user U', '-k|--insecure', '-t|--timeout S', 'brick doctor', 'brick methods', 'brick help'])
    assert.ok(u.includes(s), `usage lacks ${s}:\n${u}`);
  const r = await brick('--help');
  assert.equal(r.code, 0);
  for (const e of EXIT_CODES) assert.ok(r.stdout.includes(`  ${e.code}  ${e.meaning}`), `exit ${e.code}`);
});

// ------------------------------------------------------------------------------------ check-config

test('check-config: an empty file passes (real process, exit 0); a quoted string fence command is refused (exit 1)', async () => {
  const empty = join(dir, 'empty.toml');
  writeFileSync(empty, '');
  const ok = await spawnBrick('check-config', '--config', empty);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, new RegExp(`^${empty}: ok`));
  // Empty = no pool with action = "reboot": valid, but it says the fencer guards nothing.
  assert.match(ok.stderr, /^warning: fencer\.pool: no \[\[fencer\.pool\]\] is configured, so the fencer guards no pool/m);

  const quoted = join(dir, 'quoted.toml');
  writeFileSync(quoted, `[fencer]\naction = "command"\ncommand = "/bin/sh -c 'echo x > /tmp/f'"\n[[fencer.pool]]\npath = "/mnt/p"\n`);
  const bad = await spawnBrick('check-config', '--config', quoted);
  assert.equal(bad.code, 1);
  noStack(bad.stderr);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  assert.match(bad.stderr, /^fencer\.command: the string form is split on spaces and run without a shell.*use the array form/);
});

// ------------------------------------------------------------------------------------ status

test('status exit 0: fencer running, a healthy pool, watchdog petted, the agent answers an authenticated call', async () => {
  const h = hostConfig();
  state(h.state);
  const r = await brick('status', '--config', h.path);
  assert.equal(r.code, EXIT.OK, r.stdout + r.stderr);
  assert.match(r.stdout, /^agent: {4}127\.0\.0\.1:\d+ reachable \(an authenticated call answered in \d+ ms\)$/m);
  assert.match(r.stdout, /^pool \/mnt\/pool1 \(config\): healthy, .*fences in 2\d\.\d s/m);
  assert.match(r.stdout, /^verdict: {2}ok$/m);
  // The same as a real process: its exit status is the verdict.
  const p = await spawnBrick('status', '--config', h.path, '--json');
  assert.equal(p.code, 0, p.stderr);
  const j = JSON.parse(p.stdout);
  assert.equal(j.verdict, 'ok');
  assert.equal(j.agent.reachable, true);
  assert.equal(j.fencer.pools[0].source, 'config', 'a state from before runtime pools: its pools are config pools');
});

test('status: config pools first, then runtime pools, each saying which it is; a removed runtime pool still guarded and an unusable runtime pools file are warnings', async () => {
  const h = hostConfig();
  state(h.state, {
    pools: [pool({ path: '/mnt/rt', source: 'runtime' } as never), pool({ source: 'config' } as never)],
    runtime_pools: { file: '/var/lib/brick/runtime-pools.json', error: null },
  } as never);
  let r = await brick('status', '--config', h.path);
  assert.equal(r.code, EXIT.OK, r.stdout + r.stderr);
  assert.match(r.stdout, /^pool \/mnt\/pool1 \(config\): healthy.*\npool \/mnt\/rt \(runtime, added by the orchestrator\): healthy/m);
  state(h.state, {
    pools: [pool({ path: '/mnt/rt', source: 'runtime', removing: 'removed from the runtime pools file: it is late' } as never)],
    runtime_pools: { file: '/var/lib/brick/runtime-pools.json', error: 'not JSON' },
  } as never);
  r = await brick('status', '--config', h.path);
  assert.equal(r.code, EXIT.DEGRADED, r.stdout + r.stderr);
  assert.match(r.stdout, /^pool \/mnt\/rt \(runtime, added by the orchestrator\): healthy \(REMOVED, still guarded until it verifies\)/m);
  assert.match(r.stdout, /^runtime pools: \/var\/lib\/brick\/runtime-pools\.json is UNUSABLE \(not JSON\)/m);
  assert.match(r.stdout, /^verdict: {2}DEGRADED: .*runtime pool \/mnt\/rt was removed but stays guarded/m);
});

test('status exit 3 (degraded): a late pool; the agent refusing the password; the agent not running', async () => {
  const late = hostConfig();
  state(late.state, { pools: [pool({ state: 'late', last_ok_age_s: 20, fence_in_s: 10 })] });
  let r = await brick('status', '--config', late.path);
  assert.equal(r.code, EXIT.DEGRADED, r.stdout);
  assert.match(r.stdout, /^verdict: {2}DEGRADED: pool \/mnt\/pool1 is late$/m);

  const wrong = hostConfig({ password: 'not-the-password' });
  state(wrong.state);
  r = await brick('status', '--config', wrong.path);
  assert.equal(r.code, EXIT.DEGRADED, r.stdout);
  // A TCP connect works here; "reachable" needs an answered, authenticated call.
  assert.match(r.stdout, /^agent: .* NOT reachable: HTTP 401: the agent refused server\.user "oracle"/m);

  const down = hostConfig({ listen: `127.0.0.1:${await freePort()}` });
  state(down.state);
  r = await brick('status', '--config', down.path, '--timeout', '2');
  assert.equal(r.code, EXIT.DEGRADED, r.stdout);
  assert.match(r.stdout, /NOT reachable: .*ECONNREFUSED/);
});

test('status exit 4 (not protected): a stopped fencer shows no countdown; no state; an expired pool; guarding no pool; log-only', async () => {
  const stopped = hostConfig();
  state(stopped.state, { ageS: 60, pools: [pool({ fence_in_s: 0.2 })] });
  let r = await brick('status', '--config', stopped.path);
  assert.equal(r.code, EXIT.NOT_PROTECTED, r.stdout);
  assert.match(r.stdout, /^fencer: {3}NOT RUNNING \(its last state is 60(\.\d+)? s old\)/m);
  assert.match(r.stdout, /^pool \/mnt\/pool1 \(config\): unknown \(the fencer is not running\), .*fences in -,/m);
  assert.doesNotMatch(r.stdout, /fences in \d/);
  assert.match(r.stdout, /^verdict: {2}NOT PROTECTED: the fencer is not running/m);
  const j = JSON.parse((await brick('status', '--config', stopped.path, '--json')).stdout);
  assert.equal(j.fencer.pools[0].fence_in_s, null);
  assert.equal(j.fencer.pools[0].state, 'unknown');

  const none = hostConfig();
  r = await brick('status', '--config', none.path);
  assert.equal(r.code, EXIT.NOT_PROTECTED);
  assert.match(r.stdout, /^fencer: {3}NOT RUNNING \(no state:/m);

  const expired = hostConfig();
  state(expired.state, { pools: [pool({ state: 'expired', last_ok_age_s: 31, fence_in_s: 0 }), pool({ path: '/mnt/pool2' })] });
  r = await brick('status', '--config', expired.path);
  assert.equal(r.code, EXIT.NOT_PROTECTED);
  assert.match(r.stdout, /NOT PROTECTED: pool \/mnt\/pool1 expired/);

  const nopool = hostConfig();
  state(nopool.state, { pools: [] });
  r = await brick('status', '--config', nopool.path);
  assert.equal(r.code, EXIT.NOT_PROTECTED);
  assert.match(r.stdout, /^pools: {4}guarding no pool/m);

  const logOnly = hostConfig();
  state(logOnly.state, { action: 'log-only' });
  r = await brick('status', '--config', logOnly.path);
  assert.equal(r.code, EXIT.NOT_PROTECTED);
  assert.match(r.stdout, /fencer\.action = "log-only"/);
});

test('status exit 4, never ok: a fresh state file whose fencer stopped cleanly, whose writer is gone (or its pid drawn by another process since), or that is from another boot', async () => {
  // Before: each of these read "fencer: running" with the pools' last states for up to 5 s (a clean
  // stop, a SIGKILL), or for as long as the wall clock stayed behind the old file (another boot with
  // a persistent state_dir): exit 0 or 3 while no fencer ran.
  const dead = await new Promise<number>((resolve) => {
    const c = execFile(process.execPath, ['-e', '0'], () => resolve(c.pid!));
  });
  for (const [what, extra, why] of [
    ['clean stop', { clean_stop: true }, /stopped cleanly/],
    ['writer gone', { pid: dead }, new RegExp(`its process \\(pid ${dead}\\) is gone`)],
    ['another boot', { boot_id: 'a-boot-before-this-one' }, /from another boot/],
    // The fencer died and another process (this one) drew its pid: another start time.
    ['pid reused', { pid_start: String(Number(procStart(process.pid)) + 1) }, new RegExp(`its process \\(pid ${process.pid}\\) is gone: that pid is another process's now`)],
  ] as const) {
    const h = hostConfig();
    state(h.state, { extra });
    const r = await brick('status', '--config', h.path);
    assert.equal(r.code, EXIT.NOT_PROTECTED, `${what}:\n${r.stdout}`);
    assert.match(r.stdout, /^fencer: {3}NOT RUNNING \(/m, what);
    assert.match(r.stdout.split('\n').find((l) => l.startsWith('fencer:'))!, why, what);
    assert.match(r.stdout, /^pool \/mnt\/pool1 \(config\): unknown \(the fencer is not running\), .*fences in -,/m, what);
    const j = JSON.parse((await brick('status', '--config', h.path, '--json')).stdout);
    assert.equal(j.fencer.running, false, what);
    assert.match(j.fencer.not_running, why, what);
    assert.equal(j.verdict, 'not-protected', what);
  }
});

test('status as a real process: a fresh state naming a live unrelated process (a sleep) with another start time is no running fencer, exit 4; with its own start time, running', async () => {
  // Before: signal 0 on the pid alone, so "fencer: running" (exit 0/3) while nothing guarded the host.
  const sleeper = spawn('sleep', ['300'], { stdio: 'ignore' });
  try {
    const pid = sleeper.pid!;
    const start = procStart(pid);
    assert.match(start ?? '', /^\d+$/, 'the sleep exists from spawn() on');
    const h = hostConfig();
    state(h.state, { extra: { pid, pid_start: String(Number(start) - 1) } });
    const p = await spawnBrick('status', '--config', h.path, '--json');
    assert.equal(p.code, EXIT.NOT_PROTECTED, p.stdout + p.stderr);
    const j = JSON.parse(p.stdout);
    assert.equal(j.fencer.running, false);
    assert.equal(j.fencer.not_running, `its process (pid ${pid}) is gone: that pid is another process's now (started at another time)`);
    assert.equal(j.fencer.pools[0].state, 'unknown');
    // The same file with the sleep's own start time: its writer runs.
    state(h.state, { extra: { pid, pid_start: start } });
    const q = await spawnBrick('status', '--config', h.path, '--json');
    assert.equal(JSON.parse(q.stdout).fencer.running, true, q.stdout + q.stderr);
  } finally {
    sleeper.kill('SIGKILL');
  }
});

test('status exit 4 with the reason, never a stack trace: a truncated, empty or foreign state file', async () => {
  // Before: a file that is not JSON read "no state: .../fencer.json missing" (it is there); a JSON
  // file without the fields status reads (no watchdog, a null pool) ended in exit 2 and a stack trace.
  const full = JSON.stringify({ version: 1, pid: process.pid, host_id: 'h1', written_at_ms: Date.now(), action: 'reboot', fenced: null, pools: [] });
  for (const [what, text, why] of [
    ['truncated', full.slice(0, 30), /not JSON/],
    ['empty', '', /not JSON/],
    ['no watchdog', full, /watchdog/],
    ['a null pool', JSON.stringify({ ...JSON.parse(full), watchdog: { device: '', open: false, petting: false, last_pet_age_s: null, timeout_s: 20 }, action: 'reboot', fenced: null, pools: [null] }), /pools\[0\]/],
    ['another version', JSON.stringify({ version: 2, pools: [] }), /version/],
  ] as const) {
    const h = hostConfig();
    writeFileSync(join(h.state, 'fencer.json'), text);
    const r = await brick('status', '--config', h.path);
    noStack(r.stdout + r.stderr);
    assert.equal(r.code, EXIT.NOT_PROTECTED, `${what}:\n${r.stdout}${r.stderr}`);
    const line = r.stdout.split('\n').find((l) => l.startsWith('fencer:')) ?? '';
    assert.match(line, /^fencer: {3}NOT RUNNING\? .*fencer\.json is unusable/, what);
    assert.match(line, why, what);
    assert.doesNotMatch(line, /missing/, what);
    assert.match(r.stdout, /^verdict: {2}NOT PROTECTED: the fencer state .*fencer\.json is unusable/m, what);
    const j = JSON.parse((await brick('status', '--config', h.path, '--json')).stdout);
    assert.equal(j.fencer, null, what);
    assert.match(j.state_error, why, what);
  }
});

test('status exit 4: a pool that never verified within the start-up window while VMs use it cannot fence (a runtime pool added at run time never fails start-up)', async () => {
  // Before: "has no verified heartbeat yet", exit 3 ("the host is protected"), for as long as the
  // pool stayed unverified: it is not armed, so losing it never fences, whatever the VMs on it do.
  const h = hostConfig();
  const overdue = { state: 'unverified', armed: false, last_ok_age_s: null, fence_in_s: null, startup_overdue: true, source: 'runtime' } as const;
  state(h.state, { pools: [pool(), pool({ ...overdue, path: '/mnt/rt' } as never)] });
  const r = await brick('status', '--config', h.path);
  assert.equal(r.code, EXIT.NOT_PROTECTED, r.stdout);
  assert.match(r.stdout, /^pool \/mnt\/rt \(runtime, added by the orchestrator\): unverified \(NOT VERIFIED within the start-up window\)/m);
  assert.match(r.stdout, /^verdict: {2}NOT PROTECTED: pool \/mnt\/rt has not verified within the start-up window and guards VMs: losing it cannot fence this host/m);
  // Idle (no running VM uses it, fence_when = "in-use"): nothing to protect yet, degraded as before;
  // within the window: degraded as before.
  for (const over of [{ in_use: false }, { startup_overdue: false }]) {
    state(h.state, { pools: [pool({ ...overdue, ...over } as never)] });
    assert.equal((await brick('status', '--config', h.path)).code, EXIT.DEGRADED, JSON.stringify(over));
  }
});

test('status: a pool armed by the previous fencer whose age was lost says so, not "last heartbeat - ago" as if never verified', async () => {
  // planner.inherit: a crashed fencer's lease says the pool was armed, but no age survived (state
  // file gone or unreadable): the pool is expired until its first probe since this start verifies.
  const h = hostConfig();
  state(h.state, { pools: [pool({ state: 'expired', armed: true, last_ok_age_s: null, fence_in_s: 0 })] });
  const r = await brick('status', '--config', h.path);
  assert.equal(r.code, EXIT.NOT_PROTECTED, r.stdout);
  assert.match(r.stdout, /^pool \/mnt\/pool1 \(config\): expired, last heartbeat unknown \(armed by the previous fencer, its age lost\), fences in 0\.0 s/m);
  // Never verified: "-" as before.
  state(h.state, { pools: [pool({ state: 'unverified', armed: false, last_ok_age_s: null, fence_in_s: null })] });
  assert.match((await brick('status', '--config', h.path)).stdout, /^pool \/mnt\/pool1 \(config\): unverified, last heartbeat - ago, /m);
});

test('status exit 1 on a bad config; the verdict of each finding (pure)', async () => {
  const bad = join(dir, 'bad-status.toml');
  writeFileSync(bad, '[fencer]\nfence_after_s = "x"\n');
  const r = await brick('status', '--config', bad);
  assert.equal(r.code, EXIT.USER);
  assert.match(r.stderr, /^fencer\.fence_after_s: must be a number/);

  const agent = { listen: 'x', url: 'x', reachable: true, answer: 'ok' as const };
  const fencer = (o: Partial<NonNullable<Parameters<typeof judgeStatus>[0]['fencer']>> = {}) => ({
    running: true,
    not_running: null,
    state_age_s: 1,
    pid: 1,
    action: 'reboot' as const,
    host_id: 'h',
    watchdog: { device: '/dev/watchdog', open: true, petting: true, last_pet_age_s: 1, timeout_s: 20 },
    fenced: null,
    pools: [pool()],
    ...o,
  });
  const base = { agent, last_fence: null, state_error: null, state_file: 's', marker_file: 'm' };
  assert.equal(judgeStatus({ ...base, fencer: fencer() }).verdict, 'ok');
  for (const [what, f, verdict] of [
    ['unverified', fencer({ pools: [pool({ state: 'unverified' })] }), 'degraded'],
    ['idle dead pool', fencer({ pools: [pool({ state: 'dead' })] }), 'degraded'],
    ['stuck probe', fencer({ pools: [pool({ stuck_probes: 1 })] }), 'degraded'],
    ['no watchdog', fencer({ watchdog: { device: '', open: false, petting: false, last_pet_age_s: null, timeout_s: 20 } }), 'degraded'],
    ['watchdog not petted', fencer({ watchdog: { device: '/dev/watchdog', open: true, petting: false, last_pet_age_s: 9, timeout_s: 20 } }), 'degraded'],
    ['fenced', fencer({ fenced: { at: 't', pool: '/mnt/pool1', reason: 'r' } as never }), 'not-protected'],
  ] as const)
    assert.equal(judgeStatus({ ...base, fencer: f }).verdict, verdict, what);
  assert.equal(judgeStatus({ ...base, fencer: fencer(), last_fence: { at: 't', pool: 'p', reason: 'r' } as never }).verdict, 'degraded', 'an unread fence marker');
});

test('status reads a fence marker left by an earlier reset and says to remove it (degraded)', async () => {
  const h = hostConfig();
  state(h.state);
  writeFenceMarker(h.marker, { at: '2026-01-01T00:00:00.000Z', pool: '/mnt/pool1', reason: 'no verified heartbeat for 30 s' } as never);
  const r = await brick('status', '--config', h.path);
  assert.equal(r.code, EXIT.DEGRADED, r.stdout);
  assert.match(r.stdout, /^last fence: 2026-01-01T00:00:00\.000Z, pool \/mnt\/pool1: .*\(remove .*fence-marker\.json once understood\)$/m);
});

// ------------------------------------------------------------------------------------ call

test('call exit codes: 0 a result, 5 a fault, 6 HTTP 401, 7 connection refused, 1 a config that cannot be read', async () => {
  const h = hostConfig();
  let r = await brick('call', '--config', h.path, 'system.listMethods');
  assert.equal(r.code, EXIT.OK, r.stderr);
  assert.ok(JSON.parse(r.stdout).includes('system.methodHelp'));

  r = await brick('call', '--config', h.path, 'no_such_method');
  assert.equal(r.code, EXIT.FAULT);
  assert.match(r.stderr, /^fault -32601 \(METHOD_NOT_FOUND\): /);

  const wrong = hostConfig({ password: 'wrong' });
  r = await brick('call', '--config', wrong.path, 'system.listMethods');
  assert.equal(r.code, EXIT.UNAUTHORIZED);
  assert.match(r.stderr, /HTTP 401: the user or password was refused/);

  const down = hostConfig({ listen: `127.0.0.1:${await freePort()}` });
  r = await brick('call', '--config', down.path, '-t', '5', 'system.listMethods');
  assert.equal(r.code, EXIT.UNREACHABLE);
  assert.match(r.stderr, /ECONNREFUSED \(is brick serve running\?/);

  r = await brick('call', '--config', join(dir, 'nope.toml'), 'system.listMethods');
  assert.equal(r.code, EXIT.USER);
  assert.match(r.stderr, /nope\.toml: cannot read the config: no such file/);

  // The same codes as a real process.
  const p = await spawnBrick('call', '--config', wrong.path, 'system.listMethods');
  assert.equal(p.code, 6, p.stderr);
});

test('call without a config says what it tried and what to pass (exit 1)', async (t) => {
  if (existsSync('/etc/brick/brick.toml')) return t.skip('this machine has /etc/brick/brick.toml: the no-config case cannot happen here');
  const r = await spawnBrick('call', 'system.listMethods');
  assert.equal(r.code, 1);
  noStack(r.stderr);
  assert.match(r.stderr, /^brick: call: no config file: tried \/etc\/brick\/brick\.toml \(it does not exist\).*pass --config FILE .*--url URL with --user U and --password-file F/);
  // --url with the credentials in it needs no config.
  const ok = await brick('call', '--url', srv.urlWithAuth, 'system.listMethods');
  assert.equal(ok.code, 0, ok.stderr);
});

test('call: a password file that cannot be read names where it came from and the fix', async () => {
  const d = join(dir, 'pwless');
  mkdirSync(d);
  const cfg = join(d, 'brick.toml');
  writeFileSync(cfg, `[server]\nlisten = "127.0.0.1:${port()}"\ntls_cert = ""\ntls_key = ""\npassword_file = "${d}/password"\n`);
  const r = await brick('call', '--config', cfg, 'system.listMethods');
  assert.equal(r.code, EXIT.USER);
  assert.match(r.stderr, new RegExp(`server\\.password_file \\(from ${cfg}\\) ${d}/password: cannot read it \\(ENOENT\\); start brick serve once`));
});

test('call system.methodHelp prints the help as text, not as a JSON string', async () => {
  const h = hostConfig();
  const r = await brick('call', '--config', h.path, 'system.methodHelp', 'system.methodSignature');
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stdout.startsWith('"'), r.stdout);
  assert.doesNotMatch(r.stdout, /\\n/);
  assert.match(r.stdout, /^system\.methodSignature\(method: string\) → array\n\nReturns the method's signatures/);
});

// ------------------------------------------------------------------------------------ methods, help

test('brick methods lists the catalogue; brick help METHOD shows arguments, reply and faults; an unknown one exits 1', async () => {
  const m = await brick('methods');
  assert.equal(m.code, 0);
  const names = m.stdout.split('\n').filter((l) => /^\S+\s{2}/.test(l)).map((l) => l.split(/\s+/)[0]);
  for (const want of ['network_ensure_bridge', 'heartbeat_status', 'domain_tweak', 'exec_domr', 'system.multicall']) assert.ok(names.includes(want), want);
  // The same set the agent serves.
  assert.deepEqual([...names].sort(), [...((await srv.call('system.listMethods')) as string[])].sort());

  const h = await brick('help', 'network_ensure_vlan_bridge');
  assert.equal(h.code, 0);
  assert.match(h.stdout, /^network_ensure_vlan_bridge\(/);
  assert.match(h.stdout, /\nArguments:\n {2}parent/);
  assert.match(h.stdout, /\nReply: struct\n$/);
  assert.equal(h.stdout, `${await srv.call('system.methodHelp', 'network_ensure_vlan_bridge')}\n\nReply: struct\n`, 'the same text as system.methodHelp');

  const u = await brick('help', 'network_ensure');
  assert.equal(u.code, 1);
  assert.match(u.stderr, /^brick: help: no method or command "network_ensure" \(did you mean network_ensure_/);
});

test('status: a [[fencer.pool]] added to the config while the fencer runs (not restarted) is NOT GUARDED, exit 4', async () => {
  // Before: the fencer, started before the edit, guarded only /mnt/pool1, and status said
  // "verdict: ok", exit 0, with /mnt/pool2 in brick.toml unguarded.
  const h = hostConfig({ fencer: '[[fencer.pool]]\npath = "/mnt/pool1/"\n[[fencer.pool]]\npath = "/mnt/pool2"\n' });
  state(h.state);
  const r = await brick('status', '--config', h.path);
  assert.equal(r.code, EXIT.NOT_PROTECTED, r.stdout + r.stderr);
  assert.match(r.stdout, /^pool \/mnt\/pool2 \(config\): NOT GUARDED: the fencer runs an older config without it; restart brick-fencer$/m);
  assert.doesNotMatch(r.stdout, /pool \/mnt\/pool1\/? \(config\): NOT GUARDED/);
  assert.match(r.stdout, /^verdict: {2}NOT PROTECTED: pool \/mnt\/pool2 is in the config but not guarded \(restart brick-fencer to apply the config\)$/m);
  // Once the fencer guards it (restarted, or the orchestrator added it at run time): ok.
  state(h.state, { pools: [pool(), pool({ path: '/mnt/pool2', heartbeat_file: '/mnt/pool2/.hb-h1', source: 'runtime' })] });
  const ok = await brick('status', '--config', h.path);
  assert.equal(ok.code, EXIT.OK, ok.stdout);
});

test('status: a watchdog_device that is a regular file (the fencer pets it, nothing resets) is degraded, exit 3', async () => {
  // Before: "watchdog: /dev/watchdog petted", "verdict: ok", exit 0, for a /dev/watchdog that
  // `echo V > /dev/watchdog` had created as a file while no driver was loaded.
  const h = hostConfig();
  state(h.state, { watchdog: { not_a_device: true } });
  const r = await brick('status', '--config', h.path);
  assert.equal(r.code, EXIT.DEGRADED, r.stdout);
  assert.match(r.stdout, /^watchdog: \/dev\/watchdog is NOT a watchdog device \(a regular file or FIFO\): a wedged fencer cannot reset this host; load the driver and remove the file$/m);
  assert.match(r.stdout, /^verdict: {2}DEGRADED: \/dev\/watchdog is not a watchdog device \(a file\): a wedged fencer cannot reset this host$/m);
});
