// The command line as a user meets it: spawned as a real process (`node --import tsx src/cli/main.ts`),
// so exit codes, stdout/stderr separation and the absence of stack traces are what a shell sees.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
let dir: string;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function brick(...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts'), ...args],
      { cwd: root, timeout: 30_000, env: { ...process.env, NODE_OPTIONS: '' } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const lines = (s: string) => s.split('\n').filter((l) => l !== '');
const noStack = (s: string) => assert.doesNotMatch(s, /^\s+at .+[(:]\d+/m, `a stack trace leaked:\n${s}`);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'brick-cli-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function config(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const GOOD = `
[server]
listen = "127.0.0.1:8898"
password_file = "/etc/brick/password"

[fencer]
action = "reboot"

[[fencer.pool]]
path = "/OVS/Repositories/0004fb0000030000aaaa"
heartbeat = "ovm"
`;

test('check-config on a good config exits 0 and says ok on stdout', async () => {
  const p = config('good.toml', GOOD);
  const r = await brick('check-config', '--config', p);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${p}: ok\n`);
  assert.equal(r.stderr, '');
});

test('check-config on a config with three mistakes reports all three, one line each, exit 1, no stack trace', async () => {
  const p = config(
    'three.toml',
    `
[server]
listen = "127.0.0.1:8898"
lisen = "0.0.0.0:8898"          # 1: a typo'd key
[network]
backend = "bridge"              # 2: not one of the choices
[fencer]
probe_interval_s = "5"          # 3: a string where seconds are expected
`,
  );
  const r = await brick('check-config', '--config', p);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  noStack(r.stderr);
  const got = lines(r.stderr);
  assert.equal(got.length, 3, `expected exactly three problem lines, got:\n${r.stderr}`);
  assert.match(got.find((l) => l.startsWith('server.lisen:')) ?? '', /unknown key.*did you mean listen/);
  assert.match(got.find((l) => l.startsWith('network.backend:')) ?? '', /linuxbridge.*openvswitch/);
  assert.match(got.find((l) => l.startsWith('fencer.probe_interval_s:')) ?? '', /must be a number/);
});

test('check-config reports a cross-field timing mistake naming the key', async () => {
  const p = config('timing.toml', GOOD.replace('action = "reboot"', 'action = "reboot"\nfence_after_s = 40'));
  const r = await brick('check-config', '--config', p);
  assert.equal(r.code, 1);
  noStack(r.stderr);
  assert.equal(lines(r.stderr).length, 1, r.stderr);
  assert.match(r.stderr, /^fencer\.fence_after_s: .*dead_host_window_s/);
});

test('check-config on a missing file is one line naming the file, exit 1', async () => {
  const p = join(dir, 'nope.toml');
  const r = await brick('check-config', '--config', p);
  assert.equal(r.code, 1);
  assert.deepEqual(lines(r.stderr), [`${p}: cannot read the config: no such file`]);
});

test('check-config on a file that is not TOML names the line, exit 1', async () => {
  const p = config('broken.toml', '[server]\nlisten = \n');
  const r = await brick('check-config', '--config', p);
  assert.equal(r.code, 1);
  noStack(r.stderr);
  assert.equal(lines(r.stderr).length, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2:\\d+: not valid TOML`));
});

test('an unknown command prints one line and the usage, exit 1', async () => {
  const r = await brick('frobnicate');
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  noStack(r.stderr);
  const [first, second, ...rest] = lines(r.stderr);
  assert.equal(first, 'brick: unknown command "frobnicate"');
  assert.equal(second, 'usage:');
  for (const cmd of ['serve', 'fencer', 'status', 'check-config', 'call', '--version'])
    assert.ok(rest.some((l) => l.trim().startsWith(`brick ${cmd}`)), `usage lacks "brick ${cmd}"`);
});

test('a wrong option prints one line naming it and the usage, exit 1', async () => {
  for (const args of [['check-config', '--bogus'], ['status', '--frob'], ['serve', 'extra-positional'], ['--version', 'x']]) {
    const r = await brick(...args);
    assert.equal(r.code, 1, `${args.join(' ')}: exit ${r.code}`);
    noStack(r.stderr);
    const [first, second] = lines(r.stderr);
    assert.match(first, /^brick: /, `${args.join(' ')}: ${r.stderr}`);
    // The command's own usage line when the command is known, else the global usage.
    assert.match(second, args[0] === '--version' ? /^usage:$/ : new RegExp(`^usage: brick ${args[0]} `), `${args.join(' ')}: ${r.stderr}`);
  }
});

test('no command at all prints the usage, exit 1; --help prints it, exit 0', async () => {
  const none = await brick();
  assert.equal(none.code, 1);
  assert.match(none.stdout, /^usage:\n/);
  const help = await brick('--help');
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage:\n/);
});

test('--version prints the version, the Node runtime and the build commit', async () => {
  const r = await brick('--version');
  assert.equal(r.code, 0, r.stderr);
  const [v, n, c, ...rest] = lines(r.stdout);
  assert.equal(v, `brick ${pkg.version}`);
  assert.equal(n, `node ${process.version}`);
  assert.match(c, /^commit ([0-9a-f]{7,40}|unknown)$/);
  assert.deepEqual(rest, []);
  assert.equal(r.stderr, '');
});

test('call -t and status --timeout above 1000000 s are usage errors (exit 1), not a deadline that passes after 1 ms', async () => {
  // Before: `brick call -t 3000000` gave up at once ("no reply ... within 3000000000 ms", exit 7)
  // against an agent that answered in 0.2 s.
  for (const args of [['call', '--url', 'http://127.0.0.1:9/', '-u', 'oracle', '-p', config('pw', 'secret\n'), '-t', '3000000', 'system.listMethods'], ['status', '-c', config('t.toml', GOOD), '--timeout', '1e9']]) {
    const r = await brick(...args);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^brick: --timeout: must be a number of seconds > 0 and ≤ 1000000, got "(3000000|1e9)"\n/);
    assert.doesNotMatch(r.stderr, /TimeoutOverflowWarning/);
    noStack(r.stderr);
  }
});

test('serve and fencer with an unknown --log-level: a usage error (exit 1), not an internal error with a stack trace', async () => {
  // Before: "brick: internal error: Error: default level:bogus must be included in custom levels", exit 2.
  const c = config('loglevel.toml', GOOD);
  for (const cmd of ['serve', 'fencer']) {
    const r = await brick(cmd, '-c', c, '--log-level', 'bogus');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^brick: --log-level: must be one of trace, debug, info, warn, error, fatal, silent, got "bogus"\n/);
    noStack(r.stderr);
  }
});

test('brick COMMAND --help works for every command, help and version included (exit 0, that command\'s usage)', async () => {
  // Before: `brick version --help` was "brick: version: takes no arguments" and `brick help --help`
  // "no method or command "--help"", both exit 1.
  for (const [cmd, usage] of [['version', 'usage: brick version'], ['help', 'usage: brick help [METHOD|COMMAND]'], ['check-config', 'usage: brick check-config']]) {
    for (const flag of ['--help', '-h']) {
      const r = await brick(cmd, flag);
      assert.equal(r.code, 0, `${cmd} ${flag}: ${r.stderr}`);
      assert.equal(lines(r.stdout)[0].startsWith(usage), true, r.stdout);
    }
  }
});
