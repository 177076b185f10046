// The legacy RPM (OVM 3.2-3.4 / EL7) and the .deb (Debian/Ubuntu) from `npm run build:packages`,
// inspected the way the old tools would read them, installed into scratch roots that hold nothing
// but a static busybox and recording systemctl / initctl / chkconfig / telinit, their scripts run
// for install, upgrade and removal under each init, and the installed binary run from there with
// no host library (chroot: the root has no libc but brick's own).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ok, pkgVersion, prerequisites, repoRoot, rpmNoise, run } from '../fixtures/exec.js';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, appendFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = repoRoot;
const pkg = { version: pkgVersion };
const { skip, demand } = prerequisites('package test', ['rpmbuild', 'rpm', 'dpkg-deb', 'patchelf', 'lintian', 'busybox']);

let work: string;
let legacy: string;
let deb: string;

before(async () => {
  demand();
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'brick-pkgs-'));
  // One build at a time (portable-oldkernel.test.ts builds the same files).
  const out = await ok('flock', [join(tmpdir(), 'brick-build-packages.lock'), 'node', 'scripts/build-packages.mjs', '--use-binary', '--only=legacy,deb'], { timeoutMs: 1_500_000 });
  assert.match(out, /build-packages: /);
  legacy = join(root, 'dist/packages', `brick-${pkg.version}-1.legacy.x86_64.rpm`);
  deb = join(root, 'dist/packages', `brick_${pkg.version}-1_amd64.deb`);
  assert.ok(existsSync(legacy) && existsSync(deb), out);
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const rpmq = async (...args: string[]) => rpmNoise(await ok('rpm', ['-qp', ...args, legacy]));

test('legacy RPM: what rpm 4.4/4.8/4.11 need: no xz/zstd payload or FileDigests rpmlib, no GLIBC_ requires, gzip payload, MD5 digests', { skip }, async () => {
  const requires = (await rpmq('--requires')).split('\n').filter(Boolean);
  for (const bad of ['rpmlib(PayloadIsXz)', 'rpmlib(PayloadIsZstd)', 'rpmlib(FileDigests)', 'GLIBC_', 'libc.so', 'ld-linux'])
    assert.ok(!requires.some((r) => r.includes(bad)), `${bad} in requires:\n${requires.join('\n')}`);
  // Only what the scripts need, written by hand, and the two rpmlib features every rpm >= 4.0 has.
  assert.deepEqual([...new Set(requires)].sort(), ['/bin/cat', '/bin/grep', '/bin/sed', '/bin/sh', 'rpmlib(CompressedFileNames) <= 3.0.4-1', 'rpmlib(PayloadFilesHavePrefix) <= 4.0-1']);
  // It provides nothing of the libraries it carries (AutoReqProv: no).
  assert.deepEqual((await rpmq('--provides')).split('\n').filter(Boolean).sort(), [`brick = ${pkg.version}-1`, `brick(x86-64) = ${pkg.version}-1`]);
  assert.equal(await rpmq('--qf', '%{PAYLOADCOMPRESSOR}'), 'gzip');
  // MD5 is rpm's old default: no FILEDIGESTALGO tag at all, and every file digest is 32 hex digits.
  assert.equal(await rpmq('--qf', '%{FILEDIGESTALGO}'), '(none)');
  const dump = (await rpmq('--dump')).split('\n').filter(Boolean);
  const fileDigests = dump.map((l) => l.split(' ')).filter((f) => f[4].startsWith('010')).map((f) => f[3]);
  assert.ok(fileDigests.length > 20 && fileDigests.every((d) => /^[0-9a-f]{32}$/.test(d)), fileDigests.slice(0, 3).join(' '));
  const files = (await rpmq('-l')).split('\n');
  for (const f of ['/usr/bin/brick', '/usr/lib/brick/lib/ld-linux-x86-64.so.2', '/usr/lib/brick/lib/libc.so.6', '/usr/lib/brick/lib/libstdc++.so.6',
    '/usr/lib/brick/bin/ip', '/usr/lib/brick/bin/wdctl', '/usr/lib/brick/bin/chrt', '/usr/lib/systemd/system/brick-fencer.service',
    '/etc/init/brick-fencer.conf', '/etc/rc.d/init.d/brick-agent', '/etc/rc.d/init.d/brick-fencer', '/var/run/brick',
    '/usr/share/doc/brick/third-party/libc6/copyright', '/usr/share/doc/brick/third-party/libc6/SOURCES.txt',
    '/usr/lib/brick/python/hooking.py', '/etc/brick/hooks/before_device_create'])
    assert.ok(files.includes(f), `${f} not in the legacy RPM`);
  assert.ok(!files.some((f) => f.startsWith('/run/')), 'OL5/OL6 have no /run');
  assert.deepEqual((await rpmq('-c')).split('\n').filter(Boolean).sort(), ['/etc/brick/brick.toml', '/etc/init/brick-agent.conf', '/etc/init/brick-fencer.conf']);
});

/** A root with only a static busybox, the given recorders and /dev/null: no libc, no coreutils. */
async function scratchRoot(name: string, recorders: Record<string, string>, extra: (dir: string) => void = () => {}): Promise<string> {
  const dir = join(work, name);
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'dev', 'tmp', 'etc', 'var/lib/rpm']) mkdirSync(join(dir, d), { recursive: true });
  await ok('mknod', ['-m', '666', join(dir, 'dev/null'), 'c', '1', '3']);
  copyFileSync('/bin/busybox', join(dir, 'bin/busybox'));
  for (const a of ['sh', 'grep', 'sed', 'cat', 'tr', 'sleep', 'rm', 'mkdir', 'ls']) symlinkSync('busybox', join(dir, 'bin', a));
  for (const [path, body] of Object.entries(recorders)) {
    writeFileSync(join(dir, path), `#!/bin/sh\necho "${path.split('/').pop()} $*" >> /record.log\n${body}\n`, { mode: 0o755 });
  }
  extra(dir);
  return dir;
}
function takeLog(dir: string): string[] {
  const p = join(dir, 'record.log');
  if (!existsSync(p)) return [];
  const lines = readFileSync(p, 'utf8').trim().split('\n').filter(Boolean);
  rmSync(p);
  return lines;
}
async function installedBinaryRuns(dir: string): Promise<void> {
  const v = await ok('/usr/sbin/chroot', [dir, '/usr/bin/brick', '--version'], { env: { PATH: '/nonexistent' } });
  assert.match(v, new RegExp(`^brick ${pkg.version.replace(/\./g, '\\.')}\nnode v24\\.`));
  // ok, with or without the packaged config's advisory warnings (e.g. no pool configured yet).
  assert.match(await ok('/usr/sbin/chroot', [dir, '/usr/bin/brick', 'check-config', '--config', '/etc/brick/brick.toml'], { env: { PATH: '/nonexistent' } }), /^\/etc\/brick\/brick\.toml: ok( \(\d+ warnings?\))?\n$/);
  // The only C library in the root is brick's own.
  const libcs = (await ok('find', [dir, '(', '-name', 'libc.so*', '-o', '-name', 'ld-linux*', ')'])).split('\n').filter(Boolean);
  assert.deepEqual(libcs.map((p) => p.slice(dir.length)).sort(), ['/usr/lib/brick/lib/ld-linux-x86-64.so.2', '/usr/lib/brick/lib/libc.so.6']);
}

async function rpmIn(dir: string, ...args: string[]): Promise<string> {
  const r = await run('rpm', ['--root', dir, '--nodeps', ...args], { timeoutMs: 600_000 });
  assert.equal(r.code, 0, r.stderr);
  return rpmNoise(r.stderr);
}

test('legacy RPM on EL7 (systemd): enable on install, try-restart on upgrade, disable --now on erase; the installed binary runs', { skip }, async () => {
  const dir = await scratchRoot('el7', { 'usr/bin/systemctl': '', 'usr/bin/systemd-tmpfiles': '' }, (d) => mkdirSync(join(d, 'run/systemd/system'), { recursive: true }));
  assert.equal(await rpmIn(dir, '-i', legacy), '');
  assert.deepEqual(takeLog(dir), ['systemd-tmpfiles --create /usr/lib/tmpfiles.d/brick.conf', 'systemctl daemon-reload', 'systemctl enable brick-agent.service brick-fencer.service']);
  await installedBinaryRuns(dir);
  // Upgrade (the same package again: %post $1=2, old %preun/%postun $1=1).
  await rpmIn(dir, '-U', '--replacepkgs', legacy);
  assert.deepEqual(takeLog(dir).filter((l) => l !== 'systemctl daemon-reload'), ['systemctl try-restart brick-agent.service', 'systemctl try-restart brick-fencer.service']);
  // The config the admin edited survives erase as .rpmsave; state stays.
  appendFileSync(join(dir, 'etc/brick/brick.toml'), '\n# site edit\n');
  writeFileSync(join(dir, 'var/lib/brick/fence-marker.json'), '{}\n');
  await rpmIn(dir, '-e', 'brick');
  assert.ok(takeLog(dir).includes('systemctl --no-reload disable --now brick-agent.service brick-fencer.service'));
  assert.ok(!existsSync(join(dir, 'usr/bin/brick')));
  assert.match(readFileSync(join(dir, 'etc/brick/brick.toml.rpmsave'), 'utf8'), /# site edit/);
  assert.ok(existsSync(join(dir, 'var/lib/brick/fence-marker.json')));
});

test('legacy RPM on OL6 (upstart 0.6.5): jobs in /etc/init start at boot, upgrade restarts running jobs, erase stops them', { skip }, async () => {
  const initctl = 'case "$1" in version) echo "init (upstart 0.6.5)";; status) echo "$2 start/running, process 4242";; esac';
  const dir = await scratchRoot('ol6', { 'sbin/initctl': initctl, 'sbin/chkconfig': '', 'sbin/telinit': '' });
  assert.equal(await rpmIn(dir, '-i', legacy), '');
  assert.deepEqual(takeLog(dir), ['initctl version'], 'install: nothing started, nothing registered');
  assert.match(readFileSync(join(dir, 'etc/init/brick-fencer.conf'), 'utf8'), /^respawn limit 0 0$/m);
  assert.equal(statSync(join(dir, 'var/run/brick')).isDirectory(), true);
  assert.match(readFileSync(join(dir, 'etc/brick/brick.toml'), 'utf8'), /^state_dir = "\/var\/run\/brick"$/m);
  await installedBinaryRuns(dir);
  await rpmIn(dir, '-U', '--replacepkgs', legacy);
  assert.deepEqual(takeLog(dir).filter((l) => !/^initctl (version|status)/.test(l)), ['initctl restart brick-agent', 'initctl restart brick-fencer']);
  await rpmIn(dir, '-e', 'brick');
  assert.deepEqual(takeLog(dir).filter((l) => l !== 'initctl version'), ['initctl stop brick-agent', 'initctl stop brick-fencer']);
});

test('legacy RPM on OL5 (SysV): chkconfig --add and an inittab respawn line on install; erase removes both and tells init', { skip }, async () => {
  const dir = await scratchRoot('ol5', { 'sbin/chkconfig': '', 'sbin/telinit': '' }, (d) => writeFileSync(join(d, 'etc/inittab'), 'id:3:initdefault:\n'));
  assert.equal(await rpmIn(dir, '-i', legacy), '');
  assert.deepEqual(takeLog(dir), ['chkconfig --add brick-agent']);
  const inittab = readFileSync(join(dir, 'etc/inittab'), 'utf8');
  assert.match(inittab, /^bkf:2345:respawn:\/usr\/lib\/brick\/bin\/chrt -R -r 50 \/usr\/bin\/brick fencer --config \/etc\/brick\/brick.toml/m);
  assert.match(inittab, /^id:3:initdefault:$/m);
  await installedBinaryRuns(dir);
  // Its own chrt (OL5's util-linux 2.13 has no -R) runs in the root too.
  assert.match(await ok('/usr/sbin/chroot', [dir, '/usr/lib/brick/bin/chrt', '--version']), /util-linux 2\.38/);
  await rpmIn(dir, '-U', '--replacepkgs', legacy);
  assert.equal(readFileSync(join(dir, 'etc/inittab'), 'utf8').match(/^bkf:/gm)?.length, 1, 'reinstall adds no second line');
  takeLog(dir);
  await rpmIn(dir, '-e', 'brick');
  assert.deepEqual(takeLog(dir), ['chkconfig --del brick-agent', 'telinit q']);
  assert.equal(readFileSync(join(dir, 'etc/inittab'), 'utf8'), 'id:3:initdefault:\n');
});

test('.deb: control, conffiles and maintainer scripts; lintian finds no error', { skip }, async () => {
  const info = await ok('dpkg-deb', ['-f', deb, 'Package', 'Version', 'Architecture', 'Depends', 'Pre-Depends']);
  assert.equal(info, `Package: brick\nVersion: ${pkg.version}-1\nArchitecture: amd64\n`);
  assert.equal(await ok('dpkg-deb', ['--ctrl-tarfile', deb]).then(() => 'ok'), 'ok');
  const ctrl = join(work, 'ctrl');
  await ok('dpkg-deb', ['-e', deb, ctrl]);
  assert.equal(readFileSync(join(ctrl, 'conffiles'), 'utf8'), '/etc/brick/brick.toml\n');
  for (const s of ['postinst', 'prerm', 'postrm']) assert.equal(statSync(join(ctrl, s)).mode & 0o777, 0o755, s);
  const files = (await ok('dpkg-deb', ['-c', deb])).split('\n').map((l) => l.split(/\s+/).slice(5).join(' ').replace(/^\./, ''));
  for (const f of ['/usr/bin/brick', '/lib/systemd/system/brick-fencer.service', '/usr/lib/brick/lib/libc.so.6', '/usr/share/doc/brick/copyright', '/usr/share/doc/brick/changelog.Debian.gz', '/usr/lib/brick/python/hooking.py'])
    assert.ok(files.includes(f), `${f} not in the .deb`);
  assert.ok(!files.some((f) => f.startsWith('/etc/init/') || f.startsWith('/etc/rc.d/') || f.startsWith('/var/run')), 'no upstart/SysV/var-run files in the .deb');
  const l = await run('lintian', ['--no-tag-display-limit', deb], { timeoutMs: 900_000 });
  const errors = l.stdout.split('\n').filter((x) => x.startsWith('E:'));
  assert.deepEqual(errors, [], l.stdout);
});

test('.deb in a scratch root: postinst enables (install) or try-restarts (upgrade), prerm disables --now, config kept; the installed binary runs', { skip }, async () => {
  const dir = await scratchRoot('deb', { 'usr/bin/systemctl': '', 'usr/bin/systemd-tmpfiles': '' }, (d) => mkdirSync(join(d, 'run/systemd/system'), { recursive: true }));
  await ok('dpkg-deb', ['-x', deb, dir]);
  const ctrl = join(dir, 'DEBIAN');
  await ok('dpkg-deb', ['-e', deb, ctrl]);
  const script = (name: string, ...args: string[]) => ok('/usr/sbin/chroot', [dir, '/bin/sh', `/DEBIAN/${name}`, ...args], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  await script('postinst', 'configure');
  assert.deepEqual(takeLog(dir), ['systemd-tmpfiles --create /usr/lib/tmpfiles.d/brick.conf', 'systemctl daemon-reload', 'systemctl enable brick-agent.service brick-fencer.service']);
  await installedBinaryRuns(dir);
  await script('postinst', 'configure', `${pkg.version}-1`);
  assert.deepEqual(takeLog(dir).filter((l) => l !== 'systemctl daemon-reload'), ['systemctl try-restart brick-agent.service', 'systemctl try-restart brick-fencer.service']);
  // A config the new binary rejects: the agent is restarted (it will say why), the fencer is left running.
  appendFileSync(join(dir, 'etc/brick/brick.toml'), '\n[fencer.typo]\n');
  const r = await run('/usr/sbin/chroot', [dir, '/bin/sh', '/DEBIAN/postinst', 'configure', `${pkg.version}-1`]);
  assert.equal(r.code, 0);
  assert.match(r.stderr, /brick-fencer keeps running the previous version/);
  assert.deepEqual(takeLog(dir).filter((l) => l !== 'systemctl daemon-reload'), ['systemctl try-restart brick-agent.service']);
  await script('prerm', 'remove');
  assert.deepEqual(takeLog(dir), ['systemctl --no-reload disable --now brick-agent.service brick-fencer.service']);
  await script('postrm', 'remove');
  assert.ok(existsSync(join(dir, 'etc/brick/brick.toml')), 'remove keeps the config');
  chmodSync(join(dir, 'var/lib/brick'), 0o700);
});

test('.deb with dpkg itself: removed (not purged) and installed again enables the units as a first install does; an upgrade only try-restarts', { skip }, async () => {
  // dpkg passes the last configured version to "postinst configure" also when the package was
  // removed and is installed again: postinst took that for an upgrade and only try-restarted the
  // units prerm remove had disabled, so after the next reboot no fencer ran.
  const dir = await scratchRoot('deb-dpkg', { 'usr/bin/systemctl': '', 'usr/bin/systemd-tmpfiles': '' }, (d) => {
    for (const s of ['run/systemd/system', 'var/lib/dpkg/updates', 'var/lib/dpkg/info', 'var/lib/dpkg/triggers']) mkdirSync(join(d, s), { recursive: true });
    writeFileSync(join(d, 'var/lib/dpkg/status'), '');
  });
  const dpkg = (...args: string[]) => ok('dpkg', [`--root=${dir}`, ...args], { timeoutMs: 300_000, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  const enable = ['systemd-tmpfiles --create /usr/lib/tmpfiles.d/brick.conf', 'systemctl daemon-reload', 'systemctl enable brick-agent.service brick-fencer.service'];
  await dpkg('-i', deb);
  assert.deepEqual(takeLog(dir), enable);
  await dpkg('-i', deb); // the same version again: an upgrade for the scripts
  assert.deepEqual(takeLog(dir).filter((l) => l !== 'systemctl daemon-reload'), ['systemctl try-restart brick-agent.service', 'systemctl try-restart brick-fencer.service']);
  await dpkg('-r', 'brick');
  assert.deepEqual(takeLog(dir), ['systemctl --no-reload disable --now brick-agent.service brick-fencer.service', 'systemctl daemon-reload']);
  await dpkg('-i', deb);
  assert.deepEqual(takeLog(dir), enable);
  assert.ok(!existsSync(join(dir, 'var/lib/brick/.deb-removed')));
  await dpkg('-i', deb);
  assert.deepEqual(takeLog(dir).filter((l) => l !== 'systemctl daemon-reload'), ['systemctl try-restart brick-agent.service', 'systemctl try-restart brick-fencer.service']);
  await dpkg('--purge', 'brick');
  assert.ok(!existsSync(join(dir, 'var/lib/brick')));
});
