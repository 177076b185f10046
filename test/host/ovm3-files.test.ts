// File calls and host_capabilities on the real file system and tools, handlers called directly:
// concurrency of ovs_mkdirs/ovs_upload_file, a refused upload through a symlink swapped in, and
// host_capabilities' shape with whatever this machine has.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../../src/config/load.js';
import type { CallContext } from '../../src/rpc/catalogue.js';
import { ovsCheckFile, ovsMkdirs, ovsUploadFile, ovsUploadSshKey } from '../../src/agent-extension/ovm3/files.js';
import { hostCapabilities } from '../../src/agent-extension/host-methods.js';
import { memoryLogger } from '../fixtures/server.js';
import { BrickError } from '../../src/shared/errors.js';
import { callContext } from '../fixtures/call-context.js';

let work: string;
let ctx: CallContext;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'brick-ovm3-files-'));
  mkdirSync(join(work, 'root'));
  mkdirSync(join(work, 'outside'));
  const config = defaultConfig();
  config.server.file_roots = [join(work, 'root')];
  config.ovm3.ssh_key = join(work, 'root', 'keys', 'id_rsa.cloud');
  config.fencer.state_dir = join(work, 'state');
  config.fencer.watchdog_device = '';
  ctx = callContext(config, { log: memoryLogger().log });
});
after(() => rmSync(work, { recursive: true, force: true }));

test('20 concurrent ovs_mkdirs of one new directory: exactly one nil (created), the rest true', async () => {
  const dir = join(work, 'root', 'c', 'd', 'e');
  const replies = await Promise.all(Array.from({ length: 20 }, () => ovsMkdirs([dir], ctx)));
  assert.equal(replies.filter((r) => r === null).length, 1);
  assert.equal(replies.filter((r) => r === true).length, 19);
  assert.ok(statSync(dir).isDirectory());
});

test('concurrent ovs_upload_file of one file: every reply true, the file is one whole version, no temp files left', async () => {
  const dir = join(work, 'root', 'up');
  const versions = Array.from({ length: 20 }, (_, i) => `version ${i}\n`.repeat(1000));
  const replies = await Promise.all(versions.map((v) => ovsUploadFile([dir, 'vm.cfg', v], ctx)));
  assert.ok(replies.every((r) => r === true));
  assert.ok(versions.includes(readFileSync(join(dir, 'vm.cfg'), 'utf8')));
  assert.deepEqual(readdirSync(dir), ['vm.cfg']);
  assert.equal(statSync(join(dir, 'vm.cfg')).mode & 0o777, 0o644);
});

test('ovs_upload_file over an existing file keeps its mode, owner and group (before: the replacement was root:root)', async () => {
  const dir = join(work, 'root', 'owned');
  mkdirSync(dir);
  writeFileSync(join(dir, 'vm.cfg'), 'old\n', { mode: 0o640 });
  chownSync(join(dir, 'vm.cfg'), 4321, 8765);
  assert.equal(await ovsUploadFile([dir, 'vm.cfg', 'new\n'], ctx), true);
  const st = statSync(join(dir, 'vm.cfg'));
  assert.equal(readFileSync(join(dir, 'vm.cfg'), 'utf8'), 'new\n');
  assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [4321, 8765, 0o640]);
  // A new file is the agent's own.
  assert.equal(await ovsUploadFile([dir, 'new.cfg', 'x'], ctx), true);
  assert.deepEqual([statSync(join(dir, 'new.cfg')).uid, statSync(join(dir, 'new.cfg')).mode & 0o7777], [process.getuid!(), 0o644]);
});

test('ovs_upload_ssh_key tightens an existing lax key directory to 0700 and writes 0600', async () => {
  mkdirSync(join(work, 'root', 'keys'), { mode: 0o755 });
  assert.equal(await ovsUploadSshKey(['id_rsa.cloud', '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----'], ctx), true);
  assert.equal(statSync(join(work, 'root', 'keys')).mode & 0o777, 0o700);
  assert.equal(statSync(ctx.config.ovm3.ssh_key).mode & 0o777, 0o600);
  assert.ok(readFileSync(ctx.config.ovm3.ssh_key, 'utf8').endsWith('-----\n'), 'a final newline is added (OpenSSH needs it)');
});

test('a symlink to outside file_roots as the target directory is refused and nothing is written outside', async () => {
  symlinkSync(join(work, 'outside'), join(work, 'root', 'link'));
  await assert.rejects(ovsUploadFile([join(work, 'root', 'link'), 'x', 'pwned'], ctx), (e) => e instanceof BrickError && e.fault === 'PATH_REFUSED');
  await assert.rejects(ovsMkdirs([join(work, 'root', 'link', 'sub')], ctx), (e) => e instanceof BrickError && e.fault === 'PATH_REFUSED');
  symlinkSync('/nonexistent-brick-target', join(work, 'root', 'dangling'));
  await assert.rejects(ovsMkdirs([join(work, 'root', 'dangling', 'sub')], ctx), (e) => e instanceof BrickError && e.fault === 'PATH_REFUSED');
  assert.deepEqual(readdirSync(join(work, 'outside')), []);
});

test('a symlink loop on the way is PATH_REFUSED naming it (before: a raw ELOOP, an INTERNAL fault "a bug in brick")', async () => {
  symlinkSync(join(work, 'root', 'loopB'), join(work, 'root', 'loopA'));
  symlinkSync(join(work, 'root', 'loopA'), join(work, 'root', 'loopB'));
  const refused = (e: unknown) => e instanceof BrickError && e.fault === 'PATH_REFUSED' && /loopA(\/sub)?: a symlink loop/.test(e.message);
  await assert.rejects(ovsUploadFile([join(work, 'root', 'loopA'), 'x', 'data'], ctx), refused);
  await assert.rejects(ovsMkdirs([join(work, 'root', 'loopA', 'sub')], ctx), refused);
  await assert.rejects(ovsCheckFile([join(work, 'root', 'loopA')], ctx), refused);
});

test('host_capabilities: every SPEC field with its type, from this machine, no fault', async () => {
  const c = (await hostCapabilities(ctx)) as Record<string, unknown>;
  for (const k of ['hypervisor', 'hypervisor_version', 'ovm_version', 'libvirt_version', 'ovs_version', 'brick_version']) assert.equal(typeof c[k], 'string', k);
  assert.ok(['xen', 'kvm', 'none'].includes(c.hypervisor as string));
  assert.equal(typeof c.dpdk, 'boolean');
  assert.ok(Array.isArray(c.bridges));
  assert.equal(typeof (c.watchdog as Record<string, unknown>).present, 'boolean');
  assert.deepEqual(c.fencer, { running: false, state: 'no fencer state file' });
  // scripts/install-test-deps.sh installs both; elsewhere a missing tool must give "" (not a fault).
  if (existsSync('/usr/bin/virsh') || process.env.CI === 'true') assert.match(c.libvirt_version as string, /^\d+\.\d+/);
  else assert.equal(c.libvirt_version, '');
  if (existsSync('/usr/bin/ovs-vsctl') || process.env.CI === 'true') assert.match(c.ovs_version as string, /^\d+\.\d+/);
  else assert.equal(c.ovs_version, '');
});

test('ovs_upload_file removes the temp file a killed brick left for that file name, and only that', async () => {
  // brick killed (SIGKILL, OOM, a reset) between creating its temp file and the rename leaves
  // `.NAME.brick-XXXXXXXXXXXX.tmp` (up to 64 MiB) in the repository; nothing ever removed it.
  const dir = join(work, 'root', 'leftover');
  mkdirSync(dir, { recursive: true });
  const stale = join(dir, '.disk.img.brick-0123456789ab.tmp');
  const otherName = join(dir, '.other.img.brick-0123456789ab.tmp');
  const notOurs = join(dir, '.disk.img.tmp');
  for (const f of [stale, otherName, notOurs]) writeFileSync(f, 'partial');
  assert.equal(await ovsUploadFile([dir, 'disk.img', 'whole'], ctx), true);
  assert.equal(readFileSync(join(dir, 'disk.img'), 'utf8'), 'whole');
  assert.deepEqual(readdirSync(dir).sort(), ['.disk.img.tmp', '.other.img.brick-0123456789ab.tmp', 'disk.img']);
});

describe('a failed upload removes the directories it made, and only those', () => {
  // A small tmpfs inside file_roots: a file larger than it fails with ENOSPC after the call made
  // its directories, as a full repository would.
  let full: string;
  before(() => {
    full = join(work, 'root', 'full');
    mkdirSync(full);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', full]);
  });
  after(() => {
    execFileSync('umount', [full]);
  });
  const big = 'x'.repeat(4 << 20);
  const noSpace = (e: unknown) => e instanceof BrickError && e.fault === 'COMMAND_FAILED' && /no space left/.test(e.message);

  test('ovs_upload_file that fails after making a/b/ leaves no a/ behind; a directory that was there stays (before: a/b/ stayed, empty)', async () => {
    mkdirSync(join(full, 'kept'));
    await assert.rejects(ovsUploadFile([join(full, 'kept', 'a', 'b'), 'vm.cfg', big], ctx), noSpace);
    assert.deepEqual(readdirSync(join(full, 'kept')), []);
    assert.deepEqual(readdirSync(full), ['kept']);
    // The key upload makes its directory the same way.
    const c = callContext({ ...ctx.config, ovm3: { ...ctx.config.ovm3, ssh_key: join(full, 'kept', 'keys', 'id_rsa.cloud') } }, { log: memoryLogger().log });
    await assert.rejects(ovsUploadSshKey(['id_rsa.cloud', big], c), noSpace);
    assert.deepEqual(readdirSync(join(full, 'kept')), []);
  });

  test('uploads into the same new directories at once: the failing one never takes a directory from under one that writes (each reply whole)', async () => {
    // Per round, at once: one upload that fails (its file fills the tmpfs: ENOSPC), one into the
    // same new directory, one below it, ovs_mkdirs below it, and one beside it. The ones into x/
    // and below wait for the failing one (they need x/, which it may make and remove), so they
    // succeed whatever the order. The one beside may write while the failing one fills the tmpfs
    // (when x/'s parent is already there, they share no directory it could remove): it succeeds, or
    // fails with ENOSPC itself and leaves no directory; never another fault.
    for (let i = 0; i < 15; i++) {
      const dir = join(full, `r${i}`, 'x');
      const beside = join(full, `r${i}`, 'z');
      const [failing, same, below, mkdirs, besideR] = await Promise.allSettled([
        ovsUploadFile([dir, 'big', big], ctx),
        ovsUploadFile([dir, 'small', `same ${i}`], ctx),
        ovsUploadFile([join(dir, 'y'), 'small', `below ${i}`], ctx),
        ovsMkdirs([join(dir, 'm')], ctx),
        ovsUploadFile([beside, 'small', `beside ${i}`], ctx),
      ]);
      assert.equal(failing.status, 'rejected');
      assert.ok(noSpace((failing as PromiseRejectedResult).reason), String((failing as PromiseRejectedResult).reason));
      for (const [what, r] of Object.entries({ same, below, mkdirs }))
        assert.equal(r.status, 'fulfilled', `round ${i}, ${what}: ${String((r as PromiseRejectedResult).reason)}`);
      assert.equal(readFileSync(join(dir, 'small'), 'utf8'), `same ${i}`);
      assert.equal(readFileSync(join(dir, 'y', 'small'), 'utf8'), `below ${i}`);
      assert.ok(statSync(join(dir, 'm')).isDirectory());
      assert.deepEqual(readdirSync(dir).sort(), ['m', 'small', 'y'], 'no temp file of the failed upload left');
      if (besideR.status === 'fulfilled') assert.equal(readFileSync(join(beside, 'small'), 'utf8'), `beside ${i}`);
      else {
        assert.ok(noSpace(besideR.reason), `round ${i}, beside: ${String(besideR.reason)}`);
        assert.equal(existsSync(beside), false, 'the directory it made is gone with it');
      }
    }
  });
});
