// `npm run sandbox` as a user runs it: two at once do not collide (own name, port, directory and
// network namespace), each makes a bridge in its namespace, and then one is stopped with Ctrl-C
// (SIGINT to the whole foreground process group, as a terminal sends it) and the other with
// SIGTERM to the npm process alone. Afterwards nothing is left: no process, no namespace (so no
// bridge), no directory under /tmp.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Sandbox {
  npm: ChildProcess;
  name: string;
  port: number;
  dir: string;
  output: () => string;
  exited: Promise<number | null>;
}

const started: Sandbox[] = [];
after(() => {
  // Only if a test failed half-way: leave this machine as it was.
  for (const s of started) {
    try {
      process.kill(-s.npm.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
    try {
      execFileSync('ip', ['netns', 'del', s.name], { stdio: 'ignore' });
    } catch {
      /* gone */
    }
    if (s.dir) rmSync(s.dir, { recursive: true, force: true });
  }
});

function startSandbox(): Promise<Sandbox> {
  // detached: its own process group, like a job in a terminal.
  const npm = spawn('npm', ['run', 'sandbox'], { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  npm.stdout!.on('data', (d) => (out += d));
  npm.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => npm.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  const s: Sandbox = { npm, name: '', port: 0, dir: '', output: () => out, exited };
  started.push(s);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the sandbox did not start in 120 s:\n${out}`)), 120_000);
    const check = () => {
      const m = /^sandbox: (brick-sandbox(?:-\d+)?) on http:\/\/127\.0\.0\.1:(\d+), network namespace \1, files in (\S+)$/m.exec(out);
      if (m) Object.assign(s, { name: m[1], port: Number(m[2]), dir: m[3] });
      if (m && /brick agent extension listening/.test(out) && /fencer started/.test(out)) {
        clearTimeout(timer);
        npm.stdout!.off('data', check);
        resolve(s);
      }
    };
    npm.stdout!.on('data', check);
    npm.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`npm run sandbox exited before it was ready:\n${out}`));
    });
  });
}

async function brick(...args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (x) => void (stdout += x), err: (x) => void (stderr += x) });
  return { code, stdout, stderr };
}

const netns = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]);
/**
 * Another sandbox (another worktree's test run, a person's `npm run sandbox`) may claim the same
 * instance name as soon as ours has released it: then its directory holds an owner outside our
 * process group, and what is there is theirs, not a leftover of ours.
 */
function claimedByAnother(s: Sandbox): boolean {
  try {
    const owner = readFileSync(join(s.dir, 'owner'), 'utf8').trim();
    const pgid = Number(readFileSync(`/proc/${owner}/stat`, 'utf8').split(') ')[1].split(' ')[2]);
    return pgid !== s.npm.pid;
  } catch {
    return false;
  }
}

function groupGone(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

test('two sandboxes run side by side; Ctrl-C stops one and SIGTERM to npm the other, and nothing is left', { timeout: 300_000 }, async () => {
  const [a, b] = await Promise.all([startSandbox(), startSandbox()]);
  assert.notEqual(a.name, b.name);
  assert.notEqual(a.port, b.port);
  assert.notEqual(a.dir, b.dir);
  for (const s of [a, b]) {
    const config = join(s.dir, 'brick.toml');
    const r = await brick('call', '--config', config, 'network_ensure_bridge', 'br-demo', '{}');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(netns().includes(s.name), `${s.name}: the namespace exists`);
    const links = execFileSync('ip', ['netns', 'exec', s.name, 'ip', '-br', 'link'], { encoding: 'utf8' });
    assert.match(links, /^br-demo /m);
  }

  process.kill(-a.npm.pid!, 'SIGINT'); // Ctrl-C: the terminal signals the whole foreground group
  process.kill(b.npm.pid!, 'SIGTERM'); // systemd, kill, a CI runner: only npm gets it
  await Promise.all([a.exited, b.exited]);
  for (const s of [a, b]) {
    // npm has exited; its script cleans up before exiting itself: give the group a moment to go.
    for (let i = 0; i < 100 && !groupGone(s.npm.pid!); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(groupGone(s.npm.pid!), `${s.name}: a process of the sandbox is still running:\n${s.output()}`);
    if (!claimedByAnother(s)) {
      assert.ok(!netns().includes(s.name), `${s.name}: the namespace is left behind:\n${s.output()}`);
      assert.ok(!existsSync(s.dir), `${s.dir} is left behind:\n${s.output()}`);
    }
    assert.match(s.output(), new RegExp(`sandbox: stopped; removed ${s.dir} and the network namespace ${s.name}`));
    assert.match(s.output(), /clean stop/);
  }
});
