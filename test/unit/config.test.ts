import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseConfigText, parseConfigText as parseConfigTextRaw, defaultConfig } from '../../src/config/load.js';
import { ConfigSchema } from '../../src/config/schema.js';

test('an empty config is valid and safe: the SPEC defaults, HTTPS with a generated certificate and password', () => {
  const r = parseConfigText('');
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.config, defaultConfig());
  const c = defaultConfig();
  assert.equal(c.server.listen, '0.0.0.0:8898');
  assert.equal(c.server.tls_cert, '/etc/brick/tls/cert.pem');
  assert.equal(c.server.tls_key, '/etc/brick/tls/key.pem');
  assert.equal(c.server.generate_credentials, true);
  assert.equal(c.server.allow_plain_http, false);
  assert.equal(c.server.user, 'oracle');
  assert.equal(c.server.password_file, '/etc/brick/password');
  assert.deepEqual(c.server.file_roots, ['/OVS/Repositories', '/opt/cloudstack', '/root/.ssh']);
  assert.equal(c.network.backend, 'linuxbridge');
  assert.equal(c.network.vlan_bridge_name, '{bridge}.{vlan}');
  assert.equal(c.domain.hooks_dir, '/etc/brick/hooks');
  assert.equal(c.domain.hook_timeout_s, 30);
  assert.deepEqual(c.domain.extraconfig_allow, ['memoryBacking', 'cpu', 'numatune']);
  assert.equal(c.fencer.action, 'reboot');
  assert.equal(c.fencer.probe_interval_s, 5);
  assert.equal(c.fencer.probe_timeout_s, 10);
  assert.equal(c.fencer.fence_after_s, 30);
  assert.equal(c.fencer.watchdog_device, '/dev/watchdog');
  assert.equal(c.fencer.watchdog_timeout_s, 20);
  assert.equal(c.fencer.sysrq_trigger, '/proc/sysrq-trigger');
  assert.equal(c.fencer.state_dir, '/run/brick');
  assert.deepEqual(c.fencer.pool, []);
});

test('the SPEC example config is valid (plain HTTP on 0.0.0.0 needs allow_plain_http only without TLS)', () => {
  const r = parseConfigText(`
[server]
listen = "0.0.0.0:8898"
tls_cert = "/etc/brick/tls/cert.pem"
tls_key  = "/etc/brick/tls/key.pem"
user = "oracle"
password_file = "/etc/brick/password"
vendor_agent_url = ""
file_roots = ["/OVS/Repositories", "/opt/cloudstack", "/root/.ssh"]
[network]
backend = "linuxbridge"
vlan_bridge_name = "{bridge}.{vlan}"
namespace = ""
[domain]
libvirt_uri = ""
hooks_dir = "/etc/brick/hooks"
hook_timeout_s = 30
extraconfig_allow = ["memoryBacking", "cpu", "numatune"]
[fencer]
action = "reboot"
command = ""
probe_interval_s = 5
probe_timeout_s = 10
fence_after_s = 30
watchdog_device = "/dev/watchdog"
watchdog_timeout_s = 20
sysrq_trigger = "/proc/sysrq-trigger"
state_dir = "/run/brick"
host_id = ""
[[fencer.pool]]
path = "/OVS/Repositories/0004fb0000030000aaaa"
heartbeat = "ovm"
fence_when = "in-use"
`);
  assert.deepEqual(r.problems, []);
  assert.equal(r.config?.fencer.pool[0].heartbeat, 'ovm');
});

test('three mistakes are reported at once, one line each, naming the key', () => {
  const r = parseConfigText(`
[server]
lisen = "0.0.0.0:8898"
allow_plain_http = true
[fencer]
probe_interval_s = "5"
action = "explode"
`);
  assert.equal(r.config, undefined);
  assert.deepEqual(r.problems.sort(), [
    'fencer.action: must be one of "reboot", "crash", "kill-vms", "log-only", "command"',
    'fencer.probe_interval_s: must be a number',
    'server.lisen: unknown key (did you mean listen?)',
  ]);
});

test('a wrong type is named in English: an array, a string (before: "must be a array")', () => {
  const r = parseConfigText('[fencer]\npool = "x"\n[server]\nlisten = 8898\nfile_roots = "/x"\n[network]\nnamespace = []\n');
  assert.deepEqual(r.problems.sort(), ['fencer.pool: must be an array', 'network.namespace: must be a string', 'server.file_roots: must be an array', 'server.listen: must be a string']);
});

test('an unknown section and an unknown pool key are errors', () => {
  const r = parseConfigText(`
[server]
listen = "127.0.0.1:8898"
[fencr]
x = 1
[[fencer.pool]]
path = "/p"
heartbeet = "kvm"
`);
  assert.deepEqual(r.problems.sort(), ['fencer.pool[0].heartbeet: unknown key (did you mean heartbeat?)', 'fencr: unknown key (did you mean fencer?)']);
});

test('timing rules: fence_after_s must exceed probe_timeout_s, and beat the orchestrator window', () => {
  const parseConfigText = (t: string) => parseConfigTextRaw('[server]\nlisten = "127.0.0.1:8898"\n' + t);
  let r = parseConfigText(`[fencer]\nprobe_timeout_s = 10\nfence_after_s = 10\n`);
  assert.ok(r.problems.some((p) => p.startsWith('fencer.fence_after_s: must be a number of seconds > probe_timeout_s')), r.problems.join('\n'));
  r = parseConfigText(`[fencer]\nfence_after_s = 40\n`); // 40 + 20 + 5 = 65 ≥ 60
  assert.equal(r.problems.length, 1);
  assert.match(r.problems[0], /^fencer\.fence_after_s: .*65 s must be below the orchestrator's dead-host window/);
  r = parseConfigText(`[fencer]\nfence_after_s = 40\nallow_unsafe_timing = true\n`);
  assert.deepEqual(r.problems, []);
  r = parseConfigText(`[fencer]\nfence_after_s = 34\n`); // 34 + 20 + 5 = 59 < 60
  assert.deepEqual(r.problems, []);
  // startup_window_s must give the first probe its deadline (probe_timeout_s 10): −ε refused, = and +ε accepted.
  r = parseConfigText(`[fencer]\nstartup_window_s = 9.999\n`);
  assert.deepEqual(r.problems, ['fencer.startup_window_s: must be ≥ probe_timeout_s (10), got 9.999']);
  for (const w of [10, 10.001]) assert.deepEqual(parseConfigText(`[fencer]\nstartup_window_s = ${w}\n`).problems, [], `${w}`);
  assert.equal(defaultConfig().fencer.startup_window_s, 120);
});

test('timing rules at their boundaries (−ε, =, +ε): the worst reset time strictly below dead_host_window_s; probe_interval_s ≤ probe_timeout_s; fence_after_s > probe_timeout_s', () => {
  const problems = (t: string) => parseConfigText('[server]\nlisten = "127.0.0.1:8898"\n[fencer]\n' + t).problems;
  const window = /^fencer\.fence_after_s: .*must be below the orchestrator's dead-host window/;
  // fence_after_s + watchdog_timeout_s (20) + 5 s < dead_host_window_s (60): 34.999 accepted, 35 (= 60) and 35.001 refused.
  assert.deepEqual(problems('fence_after_s = 34.999\n'), []);
  for (const f of [35, 35.001]) assert.ok(problems(`fence_after_s = ${f}\n`).some((p) => window.test(p)), `${f}`);
  // kill-vms adds kill_timeout_s (10): 24.999 accepted, 25 refused.
  assert.deepEqual(problems('action = "kill-vms"\nfence_after_s = 24.999\n'), []);
  assert.ok(problems('action = "kill-vms"\nfence_after_s = 25\n').some((p) => /fence_after_s \+ kill_timeout_s \+ watchdog_timeout_s \+ 5 s slack = 60 s must be below/.test(p)));
  // No watchdog: the window counts fence_after_s + 5 s only: 54.999 accepted, 55 refused.
  assert.deepEqual(problems('watchdog_device = ""\nfence_after_s = 54.999\n'), []);
  assert.ok(problems('watchdog_device = ""\nfence_after_s = 55\n').some((p) => window.test(p)));
  // probe_interval_s ≤ probe_timeout_s (10): 9.999 and 10 accepted, 10.001 refused.
  for (const i of [9.999, 10]) assert.deepEqual(problems(`probe_interval_s = ${i}\n`), [], `${i}`);
  assert.deepEqual(problems('probe_interval_s = 10.001\n'), ['fencer.probe_interval_s: must be ≤ probe_timeout_s (10), got 10.001']);
  // fence_after_s > probe_timeout_s: 9.999 and 10 refused by this rule (=: a probe's deadline is no fence), 10.001 by the healthy-age floor instead.
  const above = /^fencer\.fence_after_s: must be a number of seconds > probe_timeout_s \(10\)/;
  for (const f of [9.999, 10]) assert.ok(problems(`fence_after_s = ${f}\n`).some((p) => above.test(p)), `${f}`);
  assert.ok(!problems('fence_after_s = 10.001\n').some((p) => above.test(p)));
});

test('cross-field rules on server, network and fencer', () => {
  const r = parseConfigText(`
[server]
listen = "10.0.0.1:8898"
tls_cert = "/c.pem"
tls_key = ""
[network]
vlan_bridge_name = "br{pif}"
[fencer]
action = "command"
[[fencer.pool]]
path = "relative/dir"
`);
  assert.deepEqual(r.problems.sort(), [
    'fencer.command: required with action = "command"',
    'fencer.pool[0].path: must be an absolute path, got "relative/dir"',
    'network.vlan_bridge_name: must contain {vlan}',
    'server.tls_key: tls_cert and tls_key must be set together (both: HTTPS; neither: HTTP)',
  ]);
});

test('plain HTTP off loopback needs allow_plain_http, and is a warning even then', () => {
  const plain = '[server]\nlisten = "10.1.2.3:8898"\ntls_cert = ""\ntls_key = ""\n';
  assert.match(parseConfigText(plain).problems[0], /^server\.allow_plain_http:/);
  const r = parseConfigText(plain + 'allow_plain_http = true\n');
  assert.deepEqual(r.problems, []);
  assert.ok(r.warnings?.some((w) => w.startsWith('server.tls_cert: "" = plain HTTP on 10.1.2.3')), String(r.warnings));
  assert.deepEqual(parseConfigText('[server]\nlisten = "127.0.0.1:8898"\ntls_cert = ""\ntls_key = ""\n').problems, []);
  assert.deepEqual(parseConfigText('[server]\nlisten = "10.1.2.3:8898"\n').problems, [], 'the default TLS needs no allow_plain_http');
});

test('a fencer-only config is valid: the [server] defaults need nothing', () => {
  const r = parseConfigText('[fencer]\nhost_id = "h1"\n[[fencer.pool]]\npath = "/mnt/pool"\n');
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.warnings, []);
});

test('configs that protect nothing are warnings: no pool with a resetting action, log-only, no watchdog', () => {
  for (const action of ['reboot', 'crash']) {
    const r = parseConfigText(`[fencer]\naction = "${action}"\n`);
    assert.deepEqual(r.problems, []);
    assert.equal(r.warnings?.length, 1);
    assert.match(r.warnings![0], new RegExp(`^fencer\\.pool: no \\[\\[fencer\\.pool\\]\\] is configured, so the fencer guards no pool until the orchestrator adds one at run time .*action = "${action}" fires for nothing until then`));
  }
  assert.deepEqual(parseConfigText('[fencer]\naction = "log-only"\n').warnings, [], 'no pool and log-only: nothing is pretended');
  const pool = '[[fencer.pool]]\npath = "/mnt/p"\n';
  assert.match(parseConfigText(`[fencer]\naction = "log-only"\n${pool}`).warnings![0], /^fencer\.action: "log-only" never resets this host/);
  assert.match(parseConfigText(`[fencer]\nwatchdog_device = ""\n${pool}`).warnings![0], /^fencer\.watchdog_device: "" = no hardware watchdog/);
});

test('server.user = "" is refused: HTTP Basic without a user', () => {
  assert.deepEqual(parseConfigText('[server]\nuser = ""\n').problems, ['server.user: must not be empty']);
});

test('a string fence command with quotes or shell characters is refused, pointing to the array form', () => {
  const cmd = (c: string) => parseConfigText(`[fencer]\naction = "command"\ncommand = ${c}\n[[fencer.pool]]\npath = "/mnt/p"\n`).problems;
  const p = cmd(`"/bin/sh -c 'echo x > f'"`);
  assert.equal(p.length, 1, p.join('\n'));
  assert.match(p[0], /^fencer\.command: the string form is split on spaces and run without a shell, so "'" .* use the array form, e\.g\. command = \["\/bin\/sh", "-c", /);
  for (const bad of ['"/usr/bin/logger fenced; reboot"', '"/usr/bin/logger $HOST"', '"/usr/bin/logger a|b"', "'/usr/bin/logger \"x\"'", '"/usr/bin/x *"', '"/usr/bin/x `id`"'])
    assert.equal(cmd(bad).length, 1, bad);
  assert.deepEqual(cmd('"/usr/local/sbin/fence-me --now -v"'), [], 'plain words stay fine');
  assert.deepEqual(cmd(`["/bin/sh", "-c", "echo x > f"]`), [], 'the array form takes anything');
});

test('broken TOML names the line', () => {
  const r = parseConfigText('[server\nlisten = 1', '/etc/brick/brick.toml');
  assert.equal(r.problems.length, 1);
  assert.match(r.problems[0], /^\/etc\/brick\/brick\.toml:1:\d+: not valid TOML/);
});

test('examples/sandbox.toml is valid', () => {
  const r = parseConfigText(readFileSync(new URL('../../examples/sandbox.toml', import.meta.url), 'utf8'));
  assert.deepEqual(r.problems, []);
});

test('schema problems and cross-field problems are reported in the same run', () => {
  const r = parseConfigText(`
[server]
listen = "127.0.0.1:8898"
usr = "oracle"
[fencer]
probe_timeout_s = 10
fence_after_s = 10
action = "command"
watchdog_timeout_s = "20"
`);
  assert.deepEqual(r.problems.sort(), [
    'fencer.command: required with action = "command"',
    'fencer.fence_after_s: must be a number of seconds > probe_timeout_s (10), got 10',
    'fencer.watchdog_timeout_s: must be a number',
    'server.usr: unknown key (did you mean user?)',
  ].sort());
});

test('every duration is at most 1000000 s: a longer one would be a Node timer that fires after 1 ms', () => {
  // server.call_timeout_s = 3000000 was accepted, and every call passed to the vendor agent then
  // failed at once ("no reply within 3000000000 ms", TimeoutOverflowWarning).
  const base = '[server]\nlisten = "127.0.0.1:8898"\n';
  const at = (section: string, key: string, v: number) => parseConfigText(`${base}${section === 'server' ? '' : `[${section}]\n`}${key} = ${v}\n`).problems;
  assert.deepEqual(at('server', 'call_timeout_s', 3_000_000), ['server.call_timeout_s: must be a number <= 1000000']);
  assert.deepEqual(at('server', 'call_timeout_s', 1_000_000.001), ['server.call_timeout_s: must be a number <= 1000000']);
  assert.deepEqual(at('server', 'call_timeout_s', 1_000_000), []);
  assert.deepEqual(at('network', 'gc_interval_s', 2_200_000), ['network.gc_interval_s: must be a number <= 1000000']);
  assert.deepEqual(at('domain', 'hook_timeout_s', 1e9), ['domain.hook_timeout_s: must be a number <= 1000000']);
  assert.deepEqual(parseConfigText(`${base}[fencer]\nvm_query_timeout_s = inf\n`).problems, ['fencer.vm_query_timeout_s: must be a number <= 1000000']);
  // Every seconds key of the schema has the bound.
  const unbounded: string[] = [];
  for (const [section, schema] of Object.entries(ConfigSchema.properties))
    for (const [key, s] of Object.entries((schema as { properties: Record<string, { 'x-unit'?: string; maximum?: number }> }).properties))
      if (s['x-unit'] === 'seconds' && !(typeof s.maximum === 'number' && s.maximum <= 1_000_000)) unbounded.push(`${section}.${key}`);
  assert.deepEqual(unbounded, []);
});

test('a pool listed twice is refused however its path is spelled: "/a" and "/a/", "//a", "/a/." or "/x/./a"', () => {
  // Before: only a trailing "/" was seen; "//a" and "/a/." passed check-config, and their probes
  // raced on one heartbeat file until the healthy pool expired and fenced.
  const pools = (...paths: string[]) => parseConfigText(`[server]\nlisten = "127.0.0.1:8898"\n${paths.map((p) => `[[fencer.pool]]\npath = "${p}"\n`).join('')}`).problems;
  for (const twin of ['/OVS/Repositories/r1/', '//OVS/Repositories/r1', '/OVS//Repositories/r1', '/OVS/Repositories/r1/.', '/OVS/./Repositories/r1', '/OVS/Repositories/./r1/./'])
    assert.deepEqual(pools('/OVS/Repositories/r1', twin), [`fencer.pool[1].path: "${twin}" is listed twice`], twin);
  assert.deepEqual(pools('/OVS/Repositories/r1', '/OVS/Repositories/r10', '/OVS/Repositories/.r1'), []);
});
