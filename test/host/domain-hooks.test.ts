// before_vm_start hooks with real executables in a temporary hooks_dir: ok, warn, stop, timeout,
// garbage XML, order, environment, non-executables. Through domain_tweak, as a caller sees them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, existsSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/shared/log.js';
import { defaultConfig } from '../../src/config/load.js';
import { methods } from '../../src/agent-extension/domain/methods.js';
import type { CallContext } from '../../src/rpc/catalogue.js';
import type { BrickError } from '../../src/shared/errors.js';
import { callContext } from '../fixtures/call-context.js';
import { procStart } from '../../src/shared/process-identity.js';
import { scratchDir } from '../fixtures/scratch.js';

const base = scratchDir('brick-hooks-test-');
const XML = readFileSync(join(import.meta.dirname, '../golden/domain/kvm-small-input.xml'), 'utf8');
const tweak = methods.find((m) => m.name === 'domain_tweak')!.handler;

/** A fresh hooks_dir with these scripts (name → body; mode 0755 unless name ends in .noexec). */
function hooksDir(scripts: Record<string, string>): string {
  const dir = mkdtempSync(join(base, 'h-'));
  mkdirSync(join(dir, 'before_vm_start'));
  for (const [name, body] of Object.entries(scripts)) {
    const p = join(dir, 'before_vm_start', name);
    writeFileSync(p, body);
    chmodSync(p, name.endsWith('.noexec') ? 0o644 : 0o755);
  }
  return dir;
}

function ctx(dir: string, timeoutS = 10): CallContext & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l.replace(/^<\d>/, '')));
      cb();
    },
  });
  const config = defaultConfig();
  config.domain.hooks_dir = dir;
  config.domain.hook_timeout_s = timeoutS;
  return { ...callContext(config, { budgetMs: 120_000, log: createLogger({ svc: 'test', level: 'debug', destination }) }), lines };
}

const SH = '#!/bin/sh\n';

test('exit 0: each hook edits the same file in name order; custom properties arrive as env vars, verbatim', async () => {
  const side = join(base, `side-${process.pid}-${Date.now()}`);
  const dir = hooksDir({
    '50_second': SH + `sed -i "s#<name>r-7-VM</name>#<name>r-7-VM</name><description>$(cat ${side})+second</description>#" "$_hook_domxml"\n`,
    '10_first': SH + `printf '%s|%s|%s' "$DISK_MODE" "$vmId" "$vmName" > ${side}\nprintf 'first' >> ${side}\n`,
    '.hidden': SH + 'exit 2\n',
  });
  const c = ctx(dir);
  const out = (await tweak([XML, { hooks: true, custom: { DISK_MODE: "a'b; rm -rf / $(x)" } }], c)) as string;
  assert.match(out, /<description>a'b; rm -rf \/ \$\(x\)\|0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5\|r-7-VMfirst\+second<\/description>/);
  assert.ok(c.lines.some((l) => l.msg === 'hook ok' && String(l.hook).endsWith('10_first')));
  rmSync(side, { force: true });
});

test('hooks see the final XML: pure tweaks run first', async () => {
  const seen = join(base, `seen-${process.pid}`);
  const dir = hooksDir({ '10_copy': SH + `cp "$_hook_domxml" ${seen}\n` });
  await tweak([XML, { hooks: true, dpdk: { '1e:00:5a:00:00:08': { socket: '/run/openvswitch/csdpdk-1', mode: 'server' } } }], ctx(dir));
  assert.match(readFileSync(seen, 'utf8'), /<interface type='vhostuser'>/);
});

test('exit 1 (as vdsm): the chain goes on and the next hook sees the file, then the start fails with HOOK_FAILED naming the hook and its stderr', async () => {
  const seen = join(base, `after-warn-${process.pid}`);
  const dir = hooksDir({
    '10_warn': SH + 'echo "could not reach the CMDB" >&2\nsed -i "s|<vcpu>1</vcpu>|<vcpu>3</vcpu>|" "$_hook_domxml"\nexit 1\n',
    '20_ok': SH + `cp "$_hook_domxml" ${seen}\n`,
  });
  const c = ctx(dir);
  await assert.rejects(tweak([XML, { hooks: true }], c), (e: BrickError) => {
    assert.equal(e.fault, 'HOOK_FAILED');
    assert.match(e.message, /before_vm_start hooks failed for the domain XML, so the start fails: \S*10_warn exited 1: could not reach the CMDB/);
    assert.doesNotMatch(e.message, /20_ok/);
    return true;
  });
  assert.match(readFileSync(seen, 'utf8'), /<vcpu>3<\/vcpu>/, 'the chain went on with the file 10_warn left');
  const err = c.lines.find((l) => l.msg === 'hook failed; the start will fail after the chain');
  assert.ok(err, 'error logged');
  assert.match(String(err.err), /could not reach the CMDB/);
  rmSync(seen, { force: true });
});

test('an exit code above 2 fails the start too (vdsm treats it as a failure); the chain goes on', async () => {
  const dir = hooksDir({ '10_odd': SH + 'echo odd >&2\nexit 5\n', '20_also': SH + 'echo also >&2\nexit 1\n' });
  await assert.rejects(tweak([XML, { hooks: true }], ctx(dir)), (e: BrickError) => {
    assert.equal(e.fault, 'HOOK_FAILED');
    assert.match(e.message, /10_odd exited 5: odd; \S*20_also exited 1: also/);
    return true;
  });
});

test('exit 2: stops the chain, HOOK_FAILED carries the hook name and its stderr', async () => {
  const marker = join(base, `after-stop-${process.pid}`);
  const dir = hooksDir({
    '10_stop': SH + 'echo "VM i-2-10-VM is not licensed on this host" >&2\nexit 2\n',
    '20_never': SH + `touch ${marker}\n`,
  });
  await assert.rejects(tweak([XML, { hooks: true }], ctx(dir)), (e: BrickError) => {
    assert.equal(e.fault, 'HOOK_FAILED');
    assert.match(e.message, /10_stop exited 2: VM i-2-10-VM is not licensed on this host/);
    return true;
  });
  assert.equal(existsSync(marker), false, 'no hook runs after exit 2');
});

test('timeout: a hook (and the child it started) is killed at hook_timeout_s; HOOK_FAILED names it', async () => {
  const dir = hooksDir({ '10_hang': SH + 'sleep 60 &\nsleep 60\n' });
  const t0 = performance.now();
  await assert.rejects(tweak([XML, { hooks: true }], ctx(dir, 1)), (e: BrickError) => {
    assert.equal(e.fault, 'HOOK_FAILED');
    assert.match(e.message, /10_hang did not finish within domain\.hook_timeout_s \(1 s\); killed/);
    return true;
  });
  // Not a timing assertion on performance: only that the 60 s children did not hold the call.
  assert.ok(performance.now() - t0 < 30_000);
});

test('a hook that exits 0 leaving a background child: the chain goes on at once, the child is killed (before: the call waited for the child, then a false "did not finish" HOOK_FAILED)', async () => {
  const pidFile = join(base, `bg-${process.pid}`);
  const dir = hooksDir({ '10_bg': SH + `sleep 300 &\necho $! > ${pidFile}\nexit 0\n`, '20_after': SH + 'sed -i "s|<name>|<name>after-|" "$_hook_domxml"\n' });
  const c = ctx(dir, 5);
  const out = (await tweak([XML, { hooks: true }], c)) as string;
  assert.match(out, /<name>after-/, 'the chain went on and succeeded');
  const pid = Number(readFileSync(pidFile, 'utf8'));
  // Killed: gone, or a zombie until its new parent reaps it.
  const alive = () => {
    try {
      return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 100 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
  const left = alive();
  if (left) process.kill(pid, 'SIGKILL');
  assert.equal(left, false, 'the background child outlived its hook');
});

test('a hook that ignores SIGTERM is still killed', async () => {
  const dir = hooksDir({ '10_stubborn': SH + "trap '' TERM\nsleep 60\n" });
  await assert.rejects(tweak([XML, { hooks: true }], ctx(dir, 1)), (e: BrickError) => e.fault === 'HOOK_FAILED' && /killed/.test(e.message));
});

test('exit 0 with garbage XML: HOOK_FAILED naming the hook; a DOCTYPE or another root counts as garbage', async () => {
  for (const body of ['echo "<domain><name>x" > "$_hook_domxml"', `echo '<!DOCTYPE domain><domain/>' > "$_hook_domxml"`, `echo '<network/>' > "$_hook_domxml"`]) {
    const dir = hooksDir({ '30_garbage': SH + body + '\n' });
    await assert.rejects(tweak([XML, { hooks: true }], ctx(dir)), (e: BrickError) => {
      assert.equal(e.fault, 'HOOK_FAILED');
      assert.match(e.message, /30_garbage exited 0 but left XML brick cannot use for the domain XML/);
      return true;
    });
  }
});

test('exit 0 after removing $_hook_domxml, or leaving a FIFO there: HOOK_FAILED naming the hook (before: INTERNAL, and a FIFO blocked the call)', async () => {
  for (const [name, body] of [
    ['10_rm', 'rm -f "$_hook_domxml"\n'],
    ['10_fifo', 'rm -f "$_hook_domxml"\nmkfifo "$_hook_domxml"\n'],
    ['10_dir', 'rm -f "$_hook_domxml"\nmkdir "$_hook_domxml"\n'],
  ]) {
    const dir = hooksDir({ [name]: SH + body });
    await assert.rejects(tweak([XML, { hooks: true }], ctx(dir)), (e: BrickError) => {
      assert.equal(e.fault, 'HOOK_FAILED', `${name}: ${e.message}`);
      assert.match(e.message, new RegExp(`${name} exited 0 but left XML brick cannot use.*\\$_hook_domxml`));
      return true;
    });
  }
});

test('non-executable files are skipped with a warning; no hook directory means no hooks', async () => {
  const dir = hooksDir({ 'helper.noexec': SH + 'exit 2\n', '10_ok': SH + 'true\n' });
  const c = ctx(dir);
  assert.equal(await tweak([XML, { hooks: true }], c), XML);
  assert.ok(c.lines.some((l) => l.msg?.toString().startsWith('hook is not an executable file') && String(l.hook).endsWith('helper.noexec')));
  const empty = mkdtempSync(join(base, 'none-'));
  assert.equal(await tweak([XML, { hooks: true }], ctx(empty)), XML);
});

test('the temp file is gone afterwards, also after a failure', async () => {
  const rec = join(base, `path-${process.pid}`);
  const dir = hooksDir({ '10_rec': SH + `echo "$_hook_domxml" > ${rec}\nexit 2\n` });
  await assert.rejects(tweak([XML, { hooks: true }], ctx(dir)));
  const p = readFileSync(rec, 'utf8').trim();
  assert.match(p, new RegExp(`^/tmp/brick-hook-${process.pid}-${procStart('self')}-[A-Za-z0-9]{6}/domxml$`));
  assert.equal(existsSync(p), false);
});

test('bash\'s own variables are not custom properties: SHELLOPTS=noexec would turn every bash hook into a no-op that exits 0', async () => {
  // A refusing hook (exit 2) that a caller could otherwise switch off with custom {SHELLOPTS: 'noexec'}:
  // bash reads SHELLOPTS (and BASHOPTS) from its environment and, with noexec, runs nothing.
  const dir = hooksDir({ '10_refuse': '#!/bin/bash\necho "VM i-2-10-VM is not licensed on this host" >&2\nexit 2\n' });
  for (const custom of [{ SHELLOPTS: 'noexec' }, { BASHOPTS: 'extdebug' }, { PS4: '$(touch /tmp/x)' }]) {
    await assert.rejects(tweak([XML, { hooks: true, custom }], ctx(dir)), (e: BrickError) => {
      assert.equal(e.fault, 'INVALID_PARAMS', `${JSON.stringify(custom)}: ${e.message}`);
      assert.match(e.message, /is reserved/);
      return true;
    });
  }
  await assert.rejects(tweak([XML, { hooks: true, custom: { DISK_MODE: 'x' } }], ctx(dir)), (e: BrickError) => e.fault === 'HOOK_FAILED');
});
