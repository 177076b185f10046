// The init files of the legacy RPM, checked against what the old inits know: the EL7 units against
// the list of directives systemd 219 has (not "nothing newer than X"), the OL6 jobs against upstart
// 0.6.5's stanzas, the OL5 SysV scripts for chkconfig headers and sh syntax, and the fencer script's
// inittab switch run for real on a scratch inittab.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from '../fixtures/scratch.js';

const pkg = (p: string) => new URL(`../../packaging/${p}`, import.meta.url);

/**
 * A copy of the shipped SysV fencer script in `d` that edits `inittab` instead of /etc/inittab: the
 * shipped script reads no variable a caller could set to point it elsewhere (no test hook in a
 * shipped file), so the test changes its copy, and only that one line.
 */
function sysvScriptFor(d: string, inittab: string): string {
  const text = readFileSync(pkg('sysv/brick-fencer'), 'utf8');
  const lines = text.split('\n').filter((l) => l === 'INITTAB=/etc/inittab');
  assert.equal(lines.length, 1, 'the script names /etc/inittab on one line of its own');
  const copy = join(d, 'brick-fencer');
  writeFileSync(copy, text.replace('\nINITTAB=/etc/inittab\n', `\nINITTAB=${inittab}\n`));
  return copy;
}

// systemd 219 (EL7): every directive of systemd.unit(5), systemd.service(5), systemd.exec(5),
// systemd.kill(5), systemd.resource-control(5) and [Install] as of v219, by section.
const UNIT_219 = new Set(
  ('Description Documentation Requires RequiresOverridable Requisite RequisiteOverridable Wants BindsTo PartOf Conflicts Before After ' +
    'OnFailure PropagatesReloadTo ReloadPropagatedFrom JoinsNamespaceOf RequiresMountsFor OnFailureJobMode IgnoreOnIsolate IgnoreOnSnapshot ' +
    'StopWhenUnneeded RefuseManualStart RefuseManualStop AllowIsolate DefaultDependencies JobTimeoutSec JobTimeoutAction JobTimeoutRebootArgument ' +
    'ConditionArchitecture ConditionVirtualization ConditionHost ConditionKernelCommandLine ConditionSecurity ConditionCapability ConditionACPower ' +
    'ConditionNeedsUpdate ConditionFirstBoot ConditionPathExists ConditionPathExistsGlob ConditionPathIsDirectory ConditionPathIsSymbolicLink ' +
    'ConditionPathIsMountPoint ConditionPathIsReadWrite ConditionDirectoryNotEmpty ConditionFileNotEmpty ConditionFileIsExecutable SourcePath').split(' '),
);
const EXEC_219 =
  'WorkingDirectory RootDirectory User Group SupplementaryGroups Nice OOMScoreAdjust IOSchedulingClass IOSchedulingPriority CPUSchedulingPolicy ' +
  'CPUSchedulingPriority CPUSchedulingResetOnFork CPUAffinity UMask Environment EnvironmentFile StandardInput StandardOutput StandardError TTYPath ' +
  'TTYReset TTYVHangup TTYVTDisallocate SyslogIdentifier SyslogFacility SyslogLevel SyslogLevelPrefix TimerSlackNSec LimitCPU LimitFSIZE LimitDATA ' +
  'LimitSTACK LimitCORE LimitRSS LimitNOFILE LimitAS LimitNPROC LimitMEMLOCK LimitLOCKS LimitSIGPENDING LimitMSGQUEUE LimitNICE LimitRTPRIO ' +
  'LimitRTTIME PAMName CapabilityBoundingSet SecureBits Capabilities ReadWriteDirectories ReadOnlyDirectories InaccessibleDirectories PrivateTmp ' +
  'PrivateDevices PrivateNetwork ProtectSystem ProtectHome MountFlags UtmpIdentifier UtmpMode SELinuxContext AppArmorProfile SmackProcessLabel ' +
  'IgnoreSIGPIPE NoNewPrivileges SystemCallFilter SystemCallErrorNumber SystemCallArchitectures RestrictAddressFamilies Personality ' +
  'RuntimeDirectory RuntimeDirectoryMode KillMode KillSignal SendSIGKILL SendSIGHUP CPUAccounting CPUShares StartupCPUShares CPUQuota ' +
  'MemoryAccounting MemoryLimit BlockIOAccounting BlockIOWeight StartupBlockIOWeight BlockIODeviceWeight BlockIOReadBandwidth ' +
  'BlockIOWriteBandwidth DeviceAllow DevicePolicy Slice Delegate';
const SERVICE_219 = new Set(
  ('Type RemainAfterExit GuessMainPID PIDFile BusName BusPolicy ExecStart ExecStartPre ExecStartPost ExecReload ExecStop ExecStopPost RestartSec ' +
    'TimeoutStartSec TimeoutStopSec TimeoutSec WatchdogSec Restart SuccessExitStatus RestartPreventExitStatus RestartForceExitStatus ' +
    'PermissionsStartOnly RootDirectoryStartOnly NonBlocking NotifyAccess Sockets StartLimitInterval StartLimitBurst StartLimitAction ' +
    'FailureAction RebootArgument FileDescriptorStoreMax ' +
    EXEC_219).split(' '),
);
const INSTALL_219 = new Set(['Alias', 'WantedBy', 'RequiredBy', 'Also', 'DefaultInstance']);
const SECTIONS_219: Record<string, Set<string>> = { Unit: UNIT_219, Service: SERVICE_219, Install: INSTALL_219 };

/** Directives of a unit that systemd 219 does not know, as "Section.Key". */
function unknownTo219(text: string): string[] {
  const bad: string[] = [];
  let section = '';
  for (const line of text.split('\n')) {
    const h = /^\[(\w+)\]$/.exec(line);
    if (h) section = h[1];
    const m = /^(\w+)=/.exec(line);
    if (m && !SECTIONS_219[section]?.has(m[1])) bad.push(`${section}.${m[1]}`);
  }
  return bad;
}

test('the EL7 units use only directives systemd 219 has, in the section 219 reads them from', () => {
  for (const unit of ['brick-agent.service', 'brick-fencer.service']) {
    const text = readFileSync(pkg(`systemd-219/${unit}`), 'utf8');
    assert.deepEqual(unknownTo219(text), [], unit);
  }
  // The list is a real check: the EL8+ units (239) fail it, with exactly the directives 219 lacks.
  assert.deepEqual(unknownTo219(readFileSync(pkg('systemd/brick-fencer.service'), 'utf8')).sort(), [
    'Service.LockPersonality',
    'Service.ProtectControlGroups',
    'Service.RuntimeDirectoryPreserve',
    'Service.StateDirectory',
    'Service.StateDirectoryMode',
    'Unit.StartLimitIntervalSec',
  ]);
});

test('the EL7 units keep what the fencer and agent need: forever restart, realtime fencer with normal children, no OOM kill', () => {
  const f = readFileSync(pkg('systemd-219/brick-fencer.service'), 'utf8');
  for (const l of ['Restart=always', 'StartLimitInterval=0', 'OOMScoreAdjust=-1000', 'CPUSchedulingPolicy=rr', 'CPUSchedulingResetOnFork=yes', 'ExecStart=/usr/bin/brick fencer --config /etc/brick/brick.toml'])
    assert.match(f, new RegExp(`^${l.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'), l);
  const a = readFileSync(pkg('systemd-219/brick-agent.service'), 'utf8');
  assert.doesNotMatch(a, /CAP_SYS_BOOT/);
  assert.match(a, /^RestartPreventExitStatus=1$/m);
});

// upstart 0.6.5 (OL6) job stanzas (init(5) of 0.6.5).
const UPSTART_065 = new Set([
  'description', 'author', 'version', 'emits', 'start on', 'stop on', 'task', 'respawn', 'respawn limit', 'instance', 'kill timeout',
  'normal exit', 'console', 'umask', 'nice', 'oom', 'chroot', 'chdir', 'limit', 'env', 'export', 'expect', 'exec', 'script',
  'pre-start exec', 'post-start exec', 'pre-stop exec', 'post-stop exec', 'pre-start script', 'post-start script', 'pre-stop script', 'post-stop script',
]);

test('the OL6 upstart jobs use only upstart 0.6.5 stanzas; the fencer respawns without limit, oom never, realtime only for itself', () => {
  for (const job of ['brick-agent.conf', 'brick-fencer.conf']) {
    const text = readFileSync(pkg(`upstart/${job}`), 'utf8');
    for (const line of text.split('\n')) {
      if (!line.trim() || line.startsWith('#')) continue;
      const two = line.split(/\s+/).slice(0, 2).join(' ');
      const one = line.split(/\s+/)[0];
      assert.ok(UPSTART_065.has(two) || UPSTART_065.has(one), `${job}: "${line}" is not an upstart 0.6.5 stanza`);
    }
  }
  const f = readFileSync(pkg('upstart/brick-fencer.conf'), 'utf8');
  assert.match(f, /^respawn$/m);
  assert.match(f, /^respawn limit 0 0$/m);
  assert.match(f, /^oom never$/m);
  // chrt -R = SCHED_RESET_ON_FORK: the probes brick runs go back to SCHED_OTHER.
  assert.match(f, /^exec \/usr\/lib\/brick\/bin\/chrt -R -r 50 \/usr\/bin\/brick fencer /m);
  assert.doesNotMatch(readFileSync(pkg('upstart/brick-agent.conf'), 'utf8'), /chrt|oom never/);
});

test('the OL5 SysV scripts have chkconfig headers and parse with sh -n; the inittab line respawns the fencer', () => {
  for (const s of ['brick-agent', 'brick-fencer']) {
    const text = readFileSync(pkg(`sysv/${s}`), 'utf8');
    assert.match(text, /^# chkconfig: 2345 \d+ \d+$/m, s);
    assert.match(text, /^# description: /m, s);
    execFileSync('/bin/sh', ['-n', new URL(pkg(`sysv/${s}`)).pathname]);
  }
  assert.match(readFileSync(pkg('sysv/inittab.line'), 'utf8'), /^bkf:2345:respawn:\/usr\/lib\/brick\/bin\/chrt -R -r 50 \/usr\/bin\/brick fencer --config \/etc\/brick\/brick.toml/);
});

test('brick-fencer stop/start switch the inittab line between off and respawn and tell init (telinit q)', () => {
  const d = scratchDir('brick-sysv-');
  const inittab = join(d, 'inittab');
  const line = readFileSync(pkg('sysv/inittab.line'), 'utf8');
  writeFileSync(inittab, `id:3:initdefault:\n${line}x:5:respawn:/etc/X11/prefdm -nodaemon\n`);
  writeFileSync(join(d, 'telinit'), `#!/bin/sh\necho "telinit $*" >>${d}/record\n`);
  chmodSync(join(d, 'telinit'), 0o755);
  const script = sysvScriptFor(d, inittab);
  const env = { PATH: `${d}:/usr/bin:/bin` };
  execFileSync('/bin/sh', [script, 'stop'], { env });
  assert.match(readFileSync(inittab, 'utf8'), /^bkf:2345:off:\/usr\/lib\/brick\/bin\/chrt /m);
  assert.match(readFileSync(inittab, 'utf8'), /^x:5:respawn:/m); // other lines untouched
  assert.equal(readFileSync(join(d, 'record'), 'utf8'), 'telinit q\n');
});

test('brick-fencer try-restart with no fencer running succeeds and touches nothing (an upgrade would report a failed restart)', () => {
  const d = scratchDir('brick-sysv-');
  const inittab = join(d, 'inittab');
  const line = readFileSync(pkg('sysv/inittab.line'), 'utf8');
  writeFileSync(inittab, `id:3:initdefault:\n${line}`);
  writeFileSync(join(d, 'telinit'), `#!/bin/sh\necho "telinit $*" >>${d}/record\n`);
  chmodSync(join(d, 'telinit'), 0o755);
  const script = sysvScriptFor(d, inittab);
  const env = { PATH: `${d}:/usr/bin:/bin` };
  for (const a of ['try-restart', 'condrestart', 'restart']) execFileSync('/bin/sh', [script, a], { env }); // throws on a non-zero exit
  assert.equal(readFileSync(inittab, 'utf8'), `id:3:initdefault:\n${line}`);
  assert.ok(!existsSync(join(d, 'record')), 'init was told something');
});

test('the init files and scripts the packages ship read no BRICK_* variable: nothing in the environment points them elsewhere', async () => {
  // @ts-expect-error: a plain .mjs module without types
  const { MANIFEST } = (await import('../../packaging/manifest.mjs')) as { MANIFEST: Array<{ src?: string }> };
  const shipped = MANIFEST.map((e) => e.src)
    .filter((p): p is string => !!p && p.startsWith('packaging/') && !p.endsWith('.gz'))
    .concat(readdirSync(new URL(pkg('rpm/'))).filter((f) => f.endsWith('.sh') && f !== 'build-rpm.sh').map((f) => `packaging/rpm/${f}`));
  assert.ok(shipped.includes('packaging/sysv/brick-fencer') && shipped.includes('packaging/upstart/brick-fencer.conf'), shipped.join(' '));
  for (const p of shipped) {
    const text = readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');
    assert.doesNotMatch(text, /\$\{?BRICK_\w*/, `${p} reads a BRICK_ variable`);
  }
});

test('packaging/manifest.mjs: the legacy RPM and the .deb ship every file the EL8/EL9 RPM ships (brick.spec %files)', async () => {
  // @ts-expect-error: a plain .mjs module without types
  const { MANIFEST, UNITDIR } = (await import('../../packaging/manifest.mjs')) as {
    MANIFEST: Array<{ src?: string; tree?: string; dir?: string; dest?: string; only?: string[] }>;
    UNITDIR: Record<string, string>;
  };
  const spec = readFileSync(pkg('rpm/brick.spec'), 'utf8');
  const files = spec
    .slice(spec.indexOf('\n%files\n'), spec.indexOf('\n%post\n'))
    .split('\n')
    .map((l) => /(\/\S+|%\{\w+\}\S*)$/.exec(l)?.[1])
    .filter((p): p is string => !!p && !p.startsWith('/run/'));
  assert.ok(files.length > 10);
  for (const format of ['legacy', 'deb']) {
    const dests = new Set(
      MANIFEST.filter((e) => !e.only || e.only.includes(format)).map((e) => (e.dir ?? e.dest)!.replace('{unitdir}', UNITDIR[format])),
    );
    for (const f of files) {
      const want = f.replace('%{unitdir}', UNITDIR[format]).replace('%{tmpfilesdir}', '/usr/lib/tmpfiles.d').replace(/brick\.8$/, 'brick.8.gz');
      assert.ok(dests.has(want), `${format}: ${want} (from brick.spec) is not in packaging/manifest.mjs`);
    }
  }
});
