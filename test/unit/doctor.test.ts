// brick doctor: the judging is pure (facts in, ok/warn/fail lines out) and tested on facts; the
// command itself runs on this machine for its exit codes 4 (a pool that is not there), 3 (only
// warnings) and 1 (a bad config), and on gathered facts made all-good for 0.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { EXIT } from '../../src/cli/commands.js';
import { parseConfigText } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import {
  dirChecks,
  dirModeChecks,
  doctorExit,
  formatDoctor,
  gatherFacts,
  judge,
  poolChecks,
  sysrqChecks,
  toolChecks,
  unitDirChecks,
  watchdogChecks,
  type DoctorFacts,
} from '../../src/cli/doctor.js';
import type { Runner } from '../../src/shared/run.js';
import { mountOf, parseMountinfo } from '../../src/fencer/kill-vms/proc-parse.js';
import { runtimePoolsDirApart } from '../../src/shared/dir-mode.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'brick-doctor-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function cfg(text: string): Config {
  const r = parseConfigText(text);
  assert.deepEqual(r.problems, []);
  return r.config!;
}

async function doctor(...args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(['doctor', ...args], { out: (s) => void (stdout += s), err: (s) => void (stderr += s) });
  return { code, stdout, stderr };
}

const MOUNTINFO = [
  '21 1 0:20 / / rw,relatime - ext4 /dev/sda1 rw',
  '30 21 0:40 / /OVS/Repositories/aaa rw,relatime shared:5 - nfs 10.0.0.9:/export/aaa rw,vers=3,hard,proto=tcp,timeo=600,retrans=2',
  '31 21 0:41 / /mnt/soft rw,relatime - nfs4 10.0.0.9:/soft rw,vers=4.2,soft,timeo=100',
  '32 21 0:42 / /mnt/ro ro,relatime - nfs 10.0.0.9:/ro ro,vers=3,hard',
  '33 21 0:43 / /mnt/with\\040space rw - ocfs2 /dev/sdb rw',
].join('\n');

test('mountinfo: parsed with escapes; a path belongs to its longest mount point', () => {
  const m = parseMountinfo(MOUNTINFO);
  assert.equal(m.length, 5);
  assert.equal(m[4].mountPoint, '/mnt/with space');
  assert.equal(mountOf('/OVS/Repositories/aaa/sub', m)?.fstype, 'nfs');
  assert.equal(mountOf('/OVS/Repositories/aaab', m)?.mountPoint, '/', 'a prefix that is not a path component is not under it');
  assert.equal(mountOf('/mnt/soft', m)?.fstype, 'nfs4');
});

test('pools: the mount\'s own options count with the superblock\'s: an NFS pool bind-mounted read-only fails', () => {
  // `mount -o remount,bind,ro`: the mount is ro, its superblock rw; no heartbeat can be written.
  const text = [
    '21 1 0:20 / / rw,relatime - ext4 /dev/sda1 rw',
    '40 21 0:44 / /mnt/bound ro,relatime shared:7 - nfs 10.0.0.9:/b rw,vers=3,hard,timeo=600,retrans=2,addr=10.0.0.9',
  ].join('\n');
  const [, m] = parseMountinfo(text);
  assert.deepEqual([m.mountOptions, m.superOptions], ['ro,relatime', 'rw,vers=3,hard,timeo=600,retrans=2,addr=10.0.0.9']);
  const c = cfg('[[fencer.pool]]\npath = "/x"\n');
  const [line] = poolChecks(c, [{ pool: { path: '/mnt/bound', heartbeat: 'ovm', fence_when: 'in-use', require_mount: true }, real: '/mnt/bound', mount: mountOf('/mnt/bound', parseMountinfo(text)) }]);
  assert.equal(line.level, 'fail');
  assert.match(line.what, /^NFS 10\.0\.0\.9:\/b mounted read-only \(hard,vers=3,timeo=600,retrans=2,ro\)/);
});

test('pools: hard NFS ok; soft warn; read-only fail; on the root filesystem fail (warn with require_mount = false); missing fail', () => {
  const mounts = parseMountinfo(MOUNTINFO);
  const c = cfg('[[fencer.pool]]\npath = "/x"\n');
  const p = (path: string, require_mount = true, exists = true) => ({
    pool: { path, heartbeat: 'ovm' as const, fence_when: 'in-use' as const, require_mount },
    ...(exists ? { real: path, mount: mountOf(path, mounts) } : { error: 'ENOENT' }),
  });
  const lines = poolChecks(c, [p('/OVS/Repositories/aaa'), p('/mnt/soft'), p('/mnt/ro'), p('/var/pool'), p('/var/pool-local', false), p('/gone', true, false), p('/mnt/with space')]);
  assert.deepEqual(
    lines.map((l) => l.level),
    ['ok', 'warn', 'fail', 'fail', 'warn', 'fail', 'warn'],
  );
  assert.match(lines[0].what, /^NFS 10\.0\.0\.9:\/export\/aaa on \/OVS\/Repositories\/aaa \(hard,vers=3,timeo=600,retrans=2,rw\)/);
  assert.match(lines[1].fix!, /hard/);
  assert.match(lines[3].what, /not mounted/);
  assert.match(lines[5].fix!, /mount the primary storage/);
  assert.match(lines[6].what, /ocfs2 .*not NFS/);
  assert.equal(poolChecks(cfg(''), [])[0].level, 'warn', 'no pool with action reboot');
  assert.equal(poolChecks(cfg('[fencer]\naction = "log-only"\n'), [])[0].level, 'ok');
});

test('watchdog: missing device fail, softdog warn, max_timeout below watchdog_timeout_s fail, nowayout warn, none warn with a resetting action', () => {
  const c = cfg('');
  assert.equal(watchdogChecks(c, { device: '/dev/watchdog', exists: false })[0].level, 'fail');
  assert.equal(watchdogChecks(c, { device: '/dev/watchdog', exists: true, isCharDevice: true, sysfs: { name: 'watchdog0', identity: 'iTCO_wdt', timeout: 30, nowayout: '0' } })[0].level, 'ok');
  assert.equal(watchdogChecks(c, { device: '/dev/watchdog', exists: true, isCharDevice: true, sysfs: { name: 'watchdog0', identity: 'Software Watchdog', timeout: 60, nowayout: '0' } })[0].level, 'warn');
  assert.equal(watchdogChecks(c, { device: '/dev/watchdog', exists: true, isCharDevice: true, sysfs: { name: 'watchdog0', identity: 'x', timeout: 10, max_timeout: 15 } })[0].level, 'fail');
  const nw = watchdogChecks(c, { device: '/dev/watchdog', exists: true, isCharDevice: true, sysfs: { name: 'watchdog0', identity: 'iTCO_wdt', nowayout: '1' } });
  assert.deepEqual(nw.map((l) => l.level), ['ok', 'warn']);
  assert.match(nw[1].what, /nowayout = 1/);
  assert.equal(watchdogChecks(cfg('[fencer]\nwatchdog_device = ""\n'), { device: '', exists: false })[0].level, 'warn');
  assert.equal(watchdogChecks(cfg('[fencer]\nwatchdog_device = ""\naction = "log-only"\n'), { device: '', exists: false })[0].level, 'ok');
});

// A typical host's table: /dev is devtmpfs (nosuid, no nodev), /run tmpfs (nodev), /proc nodev.
const HOST_MOUNTS = [
  '21 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw',
  '22 21 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw,size=8111964k,nr_inodes=2027991,mode=755',
  '23 21 0:22 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw',
  '24 21 0:24 / /run rw,nosuid,nodev - tmpfs tmpfs rw,size=1628004k,mode=755',
  '25 21 0:40 / /var/lib rw,relatime - nfs 10.0.0.9:/varlib rw,vers=3,hard',
  '26 21 0:41 / /mnt/ro ro,relatime - ext4 /dev/sdb1 ro',
  '27 21 0:42 / /var/tmp rw,nosuid,nodev,noexec - tmpfs tmpfs rw',
  '28 21 0:43 / /srv/wd rw,nosuid,nodev - tmpfs tmpfs rw',
  '29 21 0:44 / /mnt/fuse rw - fuse.sshfs host:/x rw',
].join('\n');

test('watchdog: a device node on a nodev mount fails (it cannot be opened); /dev on devtmpfs is fine', () => {
  const c = cfg('');
  const mounts = parseMountinfo(HOST_MOUNTS);
  const sysfs = { name: 'watchdog0', identity: 'iTCO_wdt', timeout: 30, nowayout: '0' };
  assert.equal(watchdogChecks(c, { device: '/dev/watchdog', exists: true, isCharDevice: true, mount: mountOf('/dev/watchdog', mounts), sysfs })[0].level, 'ok');
  // Before: ok, and the fencer then failed to open it (EACCES).
  const l = watchdogChecks(c, { device: '/srv/wd/watchdog', exists: true, isCharDevice: true, mount: mountOf('/srv/wd/watchdog', mounts), sysfs });
  assert.deepEqual(l.map((x) => x.level), ['fail']);
  assert.equal(l[0].what, '/srv/wd/watchdog is on tmpfs /srv/wd, mounted nodev: opening it fails (EACCES), so the fencer cannot start its watchdog');
  assert.match(l[0].fix!, /remount \/srv\/wd without nodev/);
});

test('local dirs: state_dir and marker_dir must be local and writable, the marker\'s persistent; hooks_dir must allow exec; nodev does not matter to them', () => {
  const mounts = parseMountinfo(HOST_MOUNTS);
  const d = (key: 'state_dir' | 'marker_dir' | 'hooks_dir', path: string, exists = true) => ({ key, path, exists, mount: mountOf(path, mounts) });
  const lines = dirChecks([
    d('state_dir', '/run/brick'), // tmpfs, nodev: fine for state
    d('marker_dir', '/var/lib/brick'), // NFS
    d('marker_dir', '/run/brick-marker'), // tmpfs: lost in the reset
    d('state_dir', '/mnt/ro/brick', false), // read-only parent
    d('marker_dir', '/srv/brick'), // root ext4
    d('hooks_dir', '/var/tmp/hooks'), // noexec
    d('hooks_dir', '/etc/brick/hooks', false),
    d('state_dir', '/mnt/fuse/state'), // FUSE
    d('hooks_dir', '/run/hooks'), // nodev, exec: fine
  ]);
  assert.deepEqual(lines.map((l) => l.level), ['ok', 'fail', 'fail', 'fail', 'ok', 'warn', 'ok', 'fail', 'ok']);
  assert.equal(lines[0].what, 'on tmpfs tmpfs (/run)');
  assert.match(lines[1].what, /^on nfs 10\.0\.0\.9:\/varlib \(\/var\/lib\): the fence marker and the lease would be written over the network, and hang when storage is lost/);
  assert.match(lines[1].fix!, /\/var\/lib\/brick/);
  assert.match(lines[2].what, /in memory: the fence marker would not survive the reset/);
  assert.match(lines[3].what, /\(to be made; its parent is on ext4 \/dev\/sdb1 \(\/mnt\/ro\)\) is mounted read-only/);
  assert.match(lines[5].what, /noexec: no hook there can run \(exit 126\)/);
  assert.equal(lines[6].what, 'not there: no vdsm-style hooks');
  assert.match(lines[7].what, /^on fuse\.sshfs/);
});

test('local dirs: a state_dir on disk, not in memory, is a warning: the fencer\'s loop writes it itself on every tick, and a disk that hangs there stops the loop', () => {
  // Before: ok. The fencer rewrites its state four times a second on its own thread.
  const mounts = parseMountinfo(HOST_MOUNTS);
  const d = (key: 'state_dir' | 'marker_dir', path: string, exists = true) => ({ key, path, exists, mount: mountOf(path, mounts) });
  const lines = dirChecks([d('state_dir', '/srv/brick-state'), d('state_dir', '/srv/brick-state-new', false), d('state_dir', '/run/brick'), d('marker_dir', '/srv/brick')]);
  assert.deepEqual(lines.map((l) => l.level), ['warn', 'warn', 'ok', 'ok']);
  assert.match(lines[0].what, /^on ext4 .*, not in memory: the fencer's loop writes its state there itself on every tick, so a disk there that hangs stops the loop and the watchdog resets this host$/);
  assert.equal(lines[0].fix, 'set fencer.state_dir to a directory on tmpfs (the default /run/brick is)');
  assert.match(lines[1].what, /\(to be made; its parent is on ext4 /);
});

test('local dirs: a state_dir or marker_dir others can write (group, every user, a sticky bit too, or another owner) is a warning with its chmod; root\'s 0755/0700 are fine', () => {
  const d = (key: 'state_dir' | 'marker_dir' | 'hooks_dir', path: string, mode?: number, uid?: number) => ({ key, path, exists: mode !== undefined, ...(mode === undefined ? {} : { mode: 0o040000 | mode, uid }) });
  const lines = dirModeChecks(
    [
      d('state_dir', '/run/brick', 0o755, 0), // as packaged
      d('marker_dir', '/var/lib/brick', 0o700, 0), // as packaged
      d('marker_dir', '/srv/marker', 0o755, 0), // readable: nothing there is a secret
      d('state_dir', '/srv/state', 0o777, 0),
      d('marker_dir', '/srv/m2', 0o1733, 0), // sticky: others still create names brick has not made yet
      d('state_dir', '/srv/s2', 0o775, 0),
      d('marker_dir', '/home/bob/m', 0o700, 1000), // another user's: he can chmod it
      d('state_dir', '/srv/mine', 0o700, 990), // the user doctor (brick) runs as
      d('state_dir', '/run/not-yet'), // to be made: brick makes it 0755
      d('hooks_dir', '/etc/brick/hooks', 0o777, 0), // not brick's files
    ],
    990,
  );
  assert.deepEqual(
    lines.map((l) => [l.level, l.what, l.fix]),
    [
      ['warn', "has mode 0777: its group and every user can write it: they can replace the fencer's state that brick status and the agent read, and its lock", 'chown root /srv/state && chmod 755 /srv/state (as the packages make /run/brick 0755)'],
      ['warn', 'has mode 1733: its group and every user can write it: they can remove or replace the fence marker and the lease (and the runtime pools file, when it is there: which pools the fencer guards)', 'chown root /srv/m2 && chmod 700 /srv/m2 (as the packages make /var/lib/brick 0700)'],
      ['warn', "has mode 0775: its group can write it: they can replace the fencer's state that brick status and the agent read, and its lock", 'chown root /srv/s2 && chmod 755 /srv/s2 (as the packages make /run/brick 0755)'],
      ['warn', 'is owned by uid 1000, who can change its mode and write it: they can remove or replace the fence marker and the lease (and the runtime pools file, when it is there: which pools the fencer guards)', 'chown root /home/bob/m && chmod 700 /home/bob/m (as the packages make /var/lib/brick 0700)'],
    ],
  );
  assert.deepEqual(lines.map((l) => l.check), ['state_dir /srv/state', 'marker_dir /srv/m2', 'state_dir /srv/s2', 'marker_dir /home/bob/m']);
});

test('sysrq: the trigger must exist and be writable for reboot/crash; kernel.sysrq is reported, not required', () => {
  const c = cfg('');
  assert.equal(sysrqChecks(c, { trigger: '/proc/sysrq-trigger', exists: false, writable: false })[0].level, 'fail');
  assert.equal(sysrqChecks(c, { trigger: '/proc/sysrq-trigger', exists: true, writable: false })[0].level, 'fail');
  const l = sysrqChecks(c, { trigger: '/proc/sysrq-trigger', exists: true, writable: true, kernelSysrq: '0' })[0];
  assert.equal(l.level, 'ok');
  assert.match(l.what, /kernel\.sysrq = 0 \(it limits only the keyboard/);
  assert.equal(sysrqChecks(cfg('[fencer]\naction = "log-only"\n'), { trigger: 'x', exists: false, writable: false })[0].level, 'ok');
});

test('tools: judged by what the config needs: missing and needed fail, missing and optional ok, too old warn', () => {
  const t = (name: string, source: 'host' | 'missing' | 'host-too-old', note = '') => ({ name, package: name, path: source === 'missing' ? '' : `/usr/bin/${name}`, source, version: '1', min_version: '2', missing_flags: [], note });
  const c = cfg('[network]\nbackend = "openvswitch"\n');
  const lines = toolChecks(c, [t('ip', 'host'), t('ovs-vsctl', 'missing'), t('xl', 'missing', 'not installed (normal on KVM hosts)'), t('ssh', 'host-too-old')]);
  assert.deepEqual(lines.map((l) => l.level), ['ok', 'fail', 'ok', 'warn']);
  assert.equal(toolChecks(cfg(''), [t('ovs-vsctl', 'missing')])[0].level, 'ok', 'not needed with linuxbridge');
});

/** HOST_MOUNTS without the NFS /var/lib: /var/lib/brick on the local root filesystem. */
const LOCAL = parseMountinfo(HOST_MOUNTS).filter((m) => m.mountPoint !== '/var/lib');

function goodFacts(): DoctorFacts {
  return {
    pools: [],
    watchdog: { device: '/dev/watchdog', exists: true, isCharDevice: true, sysfs: { name: 'watchdog0', identity: 'iTCO_wdt', timeout: 20, max_timeout: 600, nowayout: '0' } },
    sysrq: { trigger: '/proc/sysrq-trigger', exists: true, writable: true, kernelSysrq: '1' },
    dirs: [
      { key: 'state_dir', path: '/run/brick', exists: true, mount: mountOf('/run/brick', LOCAL) },
      { key: 'marker_dir', path: '/var/lib/brick', exists: true, mount: mountOf('/var/lib/brick', LOCAL) },
      { key: 'hooks_dir', path: '/etc/brick/hooks', exists: false, mount: mountOf('/etc/brick/hooks', LOCAL) },
    ],
    tools: [{ name: 'ip', package: 'iproute2', path: '/usr/sbin/ip', source: 'host', version: '6.1.0', min_version: '4.0', missing_flags: [], note: '' }],
    vmQuery: { command: 'virsh list --name', ok: true, out: 'vm1\nvm2' },
    clock: { command: 'timedatectl', ok: true, out: 'yes' },
    agent: { listen: '0.0.0.0:8898', url: 'https://127.0.0.1:8898/', reachable: true, answer: 'ok', ms: 3 },
  };
}

test('doctor exit 0 when every check is ok; each finding moves it to 3 or 4', () => {
  const mounts = parseMountinfo(MOUNTINFO);
  const c = cfg('[fencer]\nhost_id = "h1"\n[[fencer.pool]]\npath = "/OVS/Repositories/aaa"\n');
  const f = goodFacts();
  f.pools = [{ pool: c.fencer.pool[0], real: '/OVS/Repositories/aaa', mount: mountOf('/OVS/Repositories/aaa', mounts) }];
  const lines = judge(c, f);
  assert.deepEqual(lines.filter((l) => l.level !== 'ok'), []);
  assert.equal(doctorExit(lines), EXIT.OK);
  assert.match(formatDoctor(lines), /\n\d+ ok, 0 warn, 0 fail\n$/);
  assert.equal(doctorExit(judge(c, { ...f, clock: { command: 'timedatectl', ok: true, out: 'no' } })), EXIT.DEGRADED);
  assert.equal(doctorExit(judge(c, { ...f, agent: { ...f.agent, reachable: false, answer: 'unreachable', detail: 'ECONNREFUSED' } })), EXIT.DEGRADED);
  assert.equal(doctorExit(judge(c, { ...f, agent: { ...f.agent, reachable: false, answer: 'unauthorized' } })), EXIT.NOT_PROTECTED);
  assert.equal(doctorExit(judge(c, { ...f, sysrq: { ...f.sysrq, writable: false } })), EXIT.NOT_PROTECTED);
  assert.equal(doctorExit(judge(c, { ...f, watchdog: { ...f.watchdog, mount: parseMountinfo(HOST_MOUNTS)[7] } })), EXIT.NOT_PROTECTED);
  assert.equal(doctorExit(judge(c, { ...f, dirs: [{ ...f.dirs[1], mount: parseMountinfo(HOST_MOUNTS)[4] }] })), EXIT.NOT_PROTECTED);
  assert.equal(doctorExit(judge(c, { ...f, vmQuery: { command: 'virsh list', ok: false, out: 'failed to connect' } })), EXIT.DEGRADED);
  const unsafe = cfg('[fencer]\nfence_after_s = 40\nallow_unsafe_timing = true\n[[fencer.pool]]\npath = "/OVS/Repositories/aaa"\n');
  const timing = judge(unsafe, f).find((l) => l.check === 'timing')!;
  assert.equal(timing.level, 'fail');
  assert.match(timing.what, /fence_after_s 40 s \+ watchdog_timeout_s 20 s \+ 5 s = 65 s is not below dead_host_window_s 60 s/);
});

test('doctor on this machine: exit 4 for a pool that is not there, 3 when only warnings, 1 for a bad config; every line has a level and fixes', async () => {
  const state = join(dir, 'run');
  const base = `[server]\nlisten = "127.0.0.1:1"\ntls_cert = ""\ntls_key = ""\npassword = "x"\n[fencer]\naction = "log-only"\nwatchdog_device = ""\nvm_query = "none"\nstate_dir = "${state}"\n`;
  const missing = join(dir, 'missing.toml');
  writeFileSync(missing, base + `[[fencer.pool]]\npath = "${dir}/no-such-pool"\n`);
  let r = await doctor('--config', missing);
  assert.equal(r.code, EXIT.NOT_PROTECTED, r.stdout);
  assert.match(r.stdout, new RegExp(`^fail {2}pool ${dir}/no-such-pool +cannot be read: ENOENT\\n +fix: mount the primary storage there`, 'm'));
  for (const l of r.stdout.split('\n').filter((x) => /^(ok|warn|fail) /.test(x))) assert.match(l, /^(ok {2}|warn|fail) {2}\S/);

  const local = join(dir, 'pool');
  mkdirSync(local);
  const warnOnly = join(dir, 'local.toml');
  writeFileSync(warnOnly, base + `[[fencer.pool]]\npath = "${local}"\nrequire_mount = false\n`);
  r = await doctor('--config', warnOnly);
  assert.equal(r.code, EXIT.DEGRADED, r.stdout);
  assert.match(r.stdout, new RegExp(`^warn {2}pool ${local} +a local directory \\(require_mount = false\\)`, 'm'));
  assert.match(r.stdout, /^warn {2}agent +not answering: /m);
  const j = JSON.parse((await doctor('--config', warnOnly, '--json')).stdout);
  assert.ok(j.checks.every((l: { level: string; fix?: string }) => l.level === 'ok' || l.fix), 'every warn and fail has a fix');

  const bad = join(dir, 'bad.toml');
  writeFileSync(bad, '[fencer]\nacton = "reboot"\n');
  r = await doctor('--config', bad);
  assert.equal(r.code, EXIT.USER);
  assert.match(r.stderr, /^fencer\.acton: unknown key \(did you mean action\?\)/);
});

test('gathering reads the real mount table and tools; a local directory is found on its real mount', async () => {
  const c = cfg(`[fencer]\nvm_query = "none"\nwatchdog_device = ""\naction = "log-only"\n[[fencer.pool]]\npath = "${dir}"\nrequire_mount = false\n`);
  const f = await gatherFacts(c);
  assert.equal(f.pools[0].real, dir);
  assert.ok(f.pools[0].mount, 'some mount holds it');
  assert.ok(f.tools.some((t) => t.name === 'ip' && t.source !== 'missing'), 'ip is installed here');
  // state_dir, marker_dir (not made yet) and hooks_dir are each found on a real mount of this machine.
  assert.deepEqual(f.dirs.map((x) => x.key), ['state_dir', 'marker_dir', 'hooks_dir']);
  for (const x of f.dirs) assert.ok(x.mount, `${x.key} ${x.path} is on some mount`);
});

test('gathering: a real state_dir every user can write is a warning in the judged lines; the same one at 0755 is not', async () => {
  const state = join(dir, 'loose-state');
  mkdirSync(state);
  chmodSync(state, 0o777);
  const c = cfg(`[fencer]\nvm_query = "none"\nwatchdog_device = ""\naction = "log-only"\nstate_dir = "${state}"\nmarker_dir = "${join(dir, 'not-yet')}"\n`);
  const loose = judge(c, await gatherFacts(c)).filter((l) => l.check === `state_dir ${state}` && l.level === 'warn' && /mode/.test(l.what));
  assert.equal(loose.length, 1);
  assert.match(loose[0].what, /^has mode 0777: its group and every user can write it/);
  chmodSync(state, 0o755);
  assert.deepEqual(judge(c, await gatherFacts(c)).filter((l) => /has mode/.test(l.what)), []);
});

test('gathering: fencer.runtime_pools_file outside marker_dir: its directory is checked on its own; one every user can write is a warning saying a pool taken out of the file is no longer guarded', async () => {
  // Before: only state_dir and marker_dir were looked at, and the runtime pools file (which pools
  // the fencer guards) may be set anywhere.
  const rt = join(dir, 'rt-pools');
  mkdirSync(rt);
  chmodSync(rt, 0o777);
  const c = cfg(`[fencer]\nvm_query = "none"\nwatchdog_device = ""\naction = "log-only"\nmarker_dir = "${join(dir, 'marker-not-yet')}"\nruntime_pools_file = "${join(rt, 'pools.json')}"\n`);
  const f = await gatherFacts(c);
  assert.deepEqual(f.dirs.map((x) => x.key), ['state_dir', 'marker_dir', 'runtime_pools_dir', 'hooks_dir']);
  const lines = judge(c, f).filter((l) => l.check.includes(rt));
  assert.deepEqual(lines.map((l) => [l.level, l.check]), [['ok', `runtime_pools_dir ${rt}`], ['warn', `runtime_pools_file's directory ${rt}`]]);
  assert.match(lines[1].what, /^has mode 0777: its group and every user can write it: they can replace the runtime pools file, which says which pools the fencer guards: a pool taken out of it is no longer guarded, and a host that loses it is not fenced$/);
  assert.equal(lines[1].fix, `chown root ${rt} && chmod 700 ${rt} (as the packages make the default /var/lib/brick 0700)`);
  chmodSync(rt, 0o700);
  assert.deepEqual(judge(c, await gatherFacts(c)).filter((l) => /has mode/.test(l.what)), []);
  // in marker_dir (the default place): not a directory of its own
  const same = cfg(`[fencer]\nvm_query = "none"\nwatchdog_device = ""\nmarker_dir = "${rt}/"\nruntime_pools_file = "${join(rt, 'pools.json')}"\n`);
  assert.deepEqual((await gatherFacts(same)).dirs.map((x) => x.key), ['state_dir', 'marker_dir', 'hooks_dir']);
});

test('runtimePoolsDirApart: the runtime pools file\'s directory unless it is marker_dir (trailing slashes and dots aside)', () => {
  assert.equal(runtimePoolsDirApart('/var/lib/brick/runtime-pools.json', '/var/lib/brick'), undefined);
  assert.equal(runtimePoolsDirApart('/var/lib/brick/runtime-pools.json', '/var/lib/brick/'), undefined);
  assert.equal(runtimePoolsDirApart('/var/lib/./brick/p.json', '/var/lib/brick'), undefined);
  assert.equal(runtimePoolsDirApart('/etc/brick/p.json', '/var/lib/brick'), '/etc/brick');
  assert.equal(runtimePoolsDirApart('/p.json', '/var/lib/brick'), '/');
});

test('pools: a second [[fencer.pool]] for the directory of an earlier one (a symlink to it) fails: the fencer refuses to start', () => {
  // Before: both were "ok", and `brick fencer` then refused the config (exit 1).
  const mounts = parseMountinfo(MOUNTINFO);
  const c = cfg('[[fencer.pool]]\npath = "/x"\n');
  const p = (path: string, real: string, heartbeat: 'ovm' | 'kvm' = 'ovm') => ({ pool: { path, heartbeat, fence_when: 'in-use' as const, require_mount: true }, real, mount: mountOf(real, mounts) });
  const lines = poolChecks(c, [p('/OVS/Repositories/aaa', '/OVS/Repositories/aaa'), p('/nfs/aaa', '/OVS/Repositories/aaa'), p('/nfs/aaa-kvm', '/OVS/Repositories/aaa', 'kvm')]);
  assert.deepEqual(lines.map((l) => l.level), ['ok', 'fail', 'ok']);
  assert.equal(lines[1].what, 'the directory of pool /OVS/Repositories/aaa (both resolve to /OVS/Repositories/aaa): the fencer refuses to start');
  assert.equal(lines[1].fix, 'list each pool directory once in [[fencer.pool]]');
});

test('fencer unit: state_dir or marker_dir under a path brick-fencer.service makes read-only (or private) fails, naming the path and the setting; the shipped unit and the defaults are fine', () => {
  const shipped = { source: '/lib/systemd/system/brick-fencer.service', text: readFileSync(join(process.cwd(), 'packaging/systemd/brick-fencer.service'), 'utf8') };
  const d = (key: 'state_dir' | 'marker_dir' | 'hooks_dir', path: string, real?: string) => ({ key, path, exists: true, real: real ?? path });
  const good = unitDirChecks([d('state_dir', '/run/brick'), d('marker_dir', '/var/lib/brick'), d('hooks_dir', '/usr/lib/hooks')], shipped);
  assert.deepEqual(good, [{ check: 'brick-fencer.service', level: 'ok', what: 'state_dir /run/brick, marker_dir /var/lib/brick: writable under the unit\'s sandbox (from /lib/systemd/system/brick-fencer.service)' }]);
  // Under /usr with the shipped ProtectSystem=true; found by its real path (a symlink into /usr).
  const bad = unitDirChecks([d('state_dir', '/opt/brick-state', '/usr/local/brick/state'), d('marker_dir', '/var/lib/brick')], shipped);
  assert.deepEqual(bad.map((l) => [l.check, l.level]), [['brick-fencer.service state_dir', 'fail'], ['brick-fencer.service', 'ok']]);
  assert.equal(bad[0].what, '/opt/brick-state (/usr/local/brick/state) is read-only for the fencer (ProtectSystem=yes, from /lib/systemd/system/brick-fencer.service): it cannot write its lock, state and expiry there');
  assert.match(bad[0].fix!, /^set fencer\.state_dir to a directory the unit can write \(the default is \/run\/brick\), or allow it in a drop-in \(systemctl edit brick-fencer: ReadWritePaths=\/opt\/brick-state\)$/);
  // An admin's drop-in (as systemctl show reports it): strict, the marker outside the unit's own directories.
  const strict = { source: 'systemctl show brick-fencer.service', text: 'LoadState=loaded\nProtectSystem=strict\nPrivateTmp=yes\nStateDirectory=brick\nRuntimeDirectory=brick\n' };
  const s = unitDirChecks([d('state_dir', '/tmp/brick'), d('marker_dir', '/srv/marker')], strict);
  assert.deepEqual(s.map((l) => l.level), ['fail', 'fail']);
  assert.match(s[0].what, /^\/tmp\/brick: the unit gives the fencer a private copy of it \(PrivateTmp=yes, from systemctl show brick-fencer\.service\), emptied whenever the unit stops: its lock, state and expiry would not survive a restart$/);
  assert.equal(s[1].what, '/srv/marker is read-only for the fencer (ProtectSystem=strict, from systemctl show brick-fencer.service): it cannot write the fence marker and the lease there');
  // No unit (OL5/OL6, or not installed): nothing to say.
  assert.deepEqual(unitDirChecks([d('state_dir', '/usr/x')], undefined), []);
});

test('fencer unit in doctor: judged with the other checks (exit 4), and gathered from systemctl show through the runner', async () => {
  const c = cfg('[fencer]\nhost_id = "h1"\n[[fencer.pool]]\npath = "/OVS/Repositories/aaa"\n');
  const f = goodFacts();
  f.pools = [{ pool: c.fencer.pool[0], real: '/OVS/Repositories/aaa', mount: mountOf('/OVS/Repositories/aaa', parseMountinfo(MOUNTINFO)) }];
  assert.equal(doctorExit(judge(c, f)), EXIT.OK);
  const ro = { source: 'systemctl show brick-fencer.service', text: 'LoadState=loaded\nReadOnlyPaths=/var/lib\n' };
  const lines = judge(c, { ...f, fencerUnit: ro });
  assert.deepEqual(lines.filter((l) => l.check.startsWith('brick-fencer.service')).map((l) => `${l.level} ${l.check}: ${l.what}`), [
    'fail brick-fencer.service marker_dir: /var/lib/brick is read-only for the fencer (ReadOnlyPaths=/var/lib, from systemctl show brick-fencer.service): it cannot write the fence marker and the lease there',
    'ok brick-fencer.service: state_dir /run/brick: writable under the unit\'s sandbox (from systemctl show brick-fencer.service)',
  ]);
  assert.equal(doctorExit(lines), EXIT.NOT_PROTECTED);

  const state = join(dir, 'unit-state');
  const c2 = cfg(`[fencer]\nvm_query = "none"\nwatchdog_device = ""\naction = "log-only"\nstate_dir = "${state}"\n`);
  const calls: string[][] = [];
  const fake: Runner = async (cmd, args) => {
    calls.push([cmd, ...args]);
    if (cmd === 'systemctl' && args[0] === 'show') return { code: 0, stdout: `LoadState=loaded\nProtectSystem=strict\nReadWritePaths=\nRuntimeDirectory=brick\nStateDirectory=brick\n`, stderr: '' };
    return { code: 1, stdout: '', stderr: 'not here' };
  };
  const g = await gatherFacts(c2, fake);
  const show = calls.find((a) => a[0] === 'systemctl')!;
  assert.deepEqual(show.slice(0, 3), ['systemctl', 'show', 'brick-fencer.service']);
  assert.ok(show.includes('ReadWritePaths') && show.includes('ReadOnlyDirectories'), show.join(' '));
  assert.equal(g.fencerUnit?.source, 'systemctl show brick-fencer.service');
  const line = judge(c2, g).find((l) => l.check === 'brick-fencer.service state_dir')!;
  assert.equal(line.level, 'fail');
  assert.match(line.what, new RegExp(`^${state}( \\(.*\\))? is read-only for the fencer \\(ProtectSystem=strict, from systemctl show brick-fencer\\.service\\)`));
});
