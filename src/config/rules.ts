// Rules that span keys. Each returns lines `key: what is expected`. The fencer's timing rules
// follow reference/fencing.md §7: the host must be reset (software path at fence_after_s, hardware
// watchdog at fence_after_s + watchdog_timeout_s at the latest) before the orchestrator may declare
// it dead and restart its VMs elsewhere, with 5 s of clock slack.
import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import type { Config } from './schema.js';

export const CLOCK_SLACK_S = 5;

export function parseListen(listen: string): { host: string; port: number } | undefined {
  const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(listen);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 0 || port > 65535) return undefined;
  const host = m[1];
  if (host !== 'localhost' && !isIP(host)) return undefined;
  return { host, port };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export function fenceCommandArgv(command: string | string[]): string[] {
  return Array.isArray(command) ? command : command.split(/\s+/).filter(Boolean);
}

// The string form is split on whitespace with no shell, so quoting, redirection, variables or globs
// in it would reach the program as literal words and fail only at fence time.
const SHELL_CHARS = /["'`$\\;&|<>(){}*?[\]~!#\n]/;

/** Why a string fence command cannot be split safely, or undefined when it can. */
export function fenceCommandStringProblem(command: string | string[]): string | undefined {
  if (Array.isArray(command)) return undefined;
  const m = SHELL_CHARS.exec(command);
  if (!m) return undefined;
  return (
    `fencer.command: the string form is split on spaces and run without a shell, so ${JSON.stringify(m[0])} and other quotes or shell ` +
    `characters cannot work there; use the array form, e.g. command = ["/bin/sh", "-c", "echo fenced > /var/tmp/f"]`
  );
}

/** Actions that take the host down (or its VMs): with no pool they never fire. */
const RESETTING_ACTIONS = new Set(['reboot', 'crash', 'command', 'kill-vms']);

/**
 * A valid config that still protects nothing, or less than it seems: one line each, `key: what`.
 * check-config prints them as warnings (exit 0); doctor and status repeat the important ones.
 */
export function configWarnings(c: Config): string[] {
  const w: string[] = [];
  const f = c.fencer;
  if (!f.pool.length && RESETTING_ACTIONS.has(f.action))
    w.push(
      `fencer.pool: no [[fencer.pool]] is configured, so the fencer guards no pool until the orchestrator adds one at run time ` +
        `(heartbeat_add_pool, check_dom0_storage_health_check; kept in ${f.runtime_pools_file}), and action = "${f.action}" fires for nothing until then; ` +
        'add the primary storage pools this host always uses as [[fencer.pool]]',
    );
  if (f.pool.length && f.action === 'log-only')
    w.push('fencer.action: "log-only" never resets this host: a host that loses its storage keeps its VMs running (test setups only)');
  if (f.pool.length && RESETTING_ACTIONS.has(f.action) && !f.watchdog_device)
    w.push('fencer.watchdog_device: "" = no hardware watchdog: a wedged or frozen fencer cannot reset this host');
  if (f.allow_unsafe_timing) {
    const worst = f.fence_after_s + (f.watchdog_device ? f.watchdog_timeout_s : 0) + CLOCK_SLACK_S;
    if (!(worst < f.dead_host_window_s))
      w.push(`fencer.allow_unsafe_timing: the host may be reset only after ${worst} s, not before the orchestrator's ${f.dead_host_window_s} s: a peer may restart its VMs first`);
  }
  const s = c.server;
  const listen = parseListen(s.listen);
  if (listen && !s.tls_cert && !isLoopback(listen.host))
    w.push(`server.tls_cert: "" = plain HTTP on ${listen.host}: the password and every call cross the network in clear text (only for CloudStack's Ovm3 client, on a management network)`);
  return w;
}

export function crossFieldProblems(c: Config): string[] {
  const p: string[] = [];
  const s = c.server;
  const listen = parseListen(s.listen);
  if (!listen) p.push(`server.listen: must be host:port with an IP address (or localhost) and a port 0-65535, got "${s.listen}"`);
  if (Boolean(s.tls_cert) !== Boolean(s.tls_key)) p.push('server.tls_key: tls_cert and tls_key must be set together (both: HTTPS; neither: HTTP)');
  if (listen && !s.tls_cert && !isLoopback(listen.host) && !s.allow_plain_http)
    p.push(`server.allow_plain_http: plain HTTP on ${listen.host} needs allow_plain_http = true (or set tls_cert and tls_key)`);
  if (!s.password && !s.password_file) p.push('server.password_file: set password_file (or password) for HTTP Basic auth');
  if (s.vendor_agent_url && !/^https?:\/\/[^\s]+$/.test(s.vendor_agent_url))
    p.push(`server.vendor_agent_url: must be an http:// or https:// URL, got "${s.vendor_agent_url}"`);
  s.file_roots.forEach((r, i) => {
    if (!isAbsolute(r) || r.split('/').includes('..')) p.push(`server.file_roots[${i}]: must be an absolute path without .., got "${r}"`);
  });

  c.ovm3.domr_networks.forEach((n, i) => {
    const m = /^([^/]+)\/(\d{1,3})$/.exec(n);
    const ok = m && isIP(m[1]) && Number(m[2]) <= (isIP(m[1]) === 4 ? 32 : 128);
    if (!ok) p.push(`ovm3.domr_networks[${i}]: must be a CIDR like 169.254.0.0/16, got "${n}"`);
  });

  const n = c.network;
  if (!n.vlan_bridge_name.includes('{vlan}')) p.push('network.vlan_bridge_name: must contain {vlan}');
  const unknownVars = n.vlan_bridge_name.match(/\{[^}]*\}/g)?.filter((v) => !['{bridge}', '{pif}', '{vlan}'].includes(v)) ?? [];
  if (unknownVars.length) p.push(`network.vlan_bridge_name: unknown placeholder ${unknownVars[0]} (use {bridge}, {pif}, {vlan})`);
  if (n.namespace && !/^[A-Za-z0-9_.-]{1,64}$/.test(n.namespace)) p.push('network.namespace: must be 1-64 letters, digits, _ . -');

  const d = c.domain;
  if (!isAbsolute(d.hooks_dir)) p.push('domain.hooks_dir: must be an absolute path');
  d.extraconfig_allow.forEach((e, i) => {
    if (!/^[A-Za-z][\w.-]*$/.test(e)) p.push(`domain.extraconfig_allow[${i}]: must be an XML element name, got "${e}"`);
  });

  const f = c.fencer;
  if (!(f.fence_after_s > f.probe_timeout_s))
    p.push(`fencer.fence_after_s: must be a number of seconds > probe_timeout_s (${f.probe_timeout_s}), got ${f.fence_after_s}`);
  // The age a healthy pool can reach: a verified probe that took almost probe_timeout_s, then the
  // next one starts only at the tick after it ended and may take almost probe_timeout_s too before
  // it verifies (its age is counted from the previous one's start): 2 × probe_timeout_s + one tick,
  // plus process spawn and loop latency (SPAWN_SLACK_S). Below that, slow storage that still
  // answers within its deadline would be fenced (issue 17 item 7: 8 fences in 90 s at 2 × T).
  const floor = healthyAgeMaxS(f.probe_interval_s, f.probe_timeout_s, f.watchdog_timeout_s);
  if (f.fence_after_s > f.probe_timeout_s && f.fence_after_s < floor)
    p.push(
      `fencer.fence_after_s: must be ≥ 2 × probe_timeout_s + the loop tick (${fencerTickMs(f.probe_interval_s, f.watchdog_timeout_s) / 1000} s) + ${SPAWN_SLACK_S} s = ${floor} s, ` +
        `the age a slow but healthy pool can reach; got ${f.fence_after_s}`,
    );
  // The window must let the first probe reach its deadline (rule 9: never judged before a fair chance).
  if (f.startup_window_s < f.probe_timeout_s)
    p.push(`fencer.startup_window_s: must be ≥ probe_timeout_s (${f.probe_timeout_s}), got ${f.startup_window_s}`);
  if (f.probe_interval_s > f.probe_timeout_s)
    p.push(`fencer.probe_interval_s: must be ≤ probe_timeout_s (${f.probe_timeout_s}), got ${f.probe_interval_s}`);
  // kill-vms resets at most kill_timeout_s after the expiry, and the watchdog (still petted while it
  // kills) backs that up watchdog_timeout_s later.
  const kill = f.action === 'kill-vms' ? f.kill_timeout_s : 0;
  const worst = f.fence_after_s + kill + (f.watchdog_device ? f.watchdog_timeout_s : 0) + CLOCK_SLACK_S;
  if (!(worst < f.dead_host_window_s) && !f.allow_unsafe_timing)
    p.push(
      `fencer.fence_after_s: fence_after_s${kill ? ' + kill_timeout_s' : ''} + watchdog_timeout_s + ${CLOCK_SLACK_S} s slack = ${worst} s must be below the orchestrator's ` +
        `dead-host window dead_host_window_s (${f.dead_host_window_s} s), or a peer may restart VMs before this host is reset ` +
        '(set allow_unsafe_timing = true to override)',
    );
  if (f.action === 'command' && fenceCommandArgv(f.command).length === 0) p.push('fencer.command: required with action = "command"');
  const stringProblem = fenceCommandStringProblem(f.command);
  if (stringProblem) p.push(stringProblem);
  else if (f.action === 'command' && fenceCommandArgv(f.command).length && !isAbsolute(fenceCommandArgv(f.command)[0]))
    p.push('fencer.command: the program must be an absolute path (no PATH lookup at fence time)');
  for (const k of ['state_dir', 'marker_dir', 'runtime_pools_file', 'sysrq_trigger'] as const)
    if (!isAbsolute(f[k])) p.push(`fencer.${k}: must be an absolute path`);
  if (f.watchdog_device && !isAbsolute(f.watchdog_device)) p.push('fencer.watchdog_device: must be an absolute path or ""');
  if (f.host_id && !/^[A-Za-z0-9_.:-]{1,128}$/.test(f.host_id)) p.push('fencer.host_id: must be letters, digits, _ . : - (it names a file on the pool)');
  const seen = new Set<string>();
  f.pool.forEach((pool, i) => {
    if (!isAbsolute(pool.path)) p.push(`fencer.pool[${i}].path: must be an absolute path, got "${pool.path}"`);
    // One directory however it is spelled: "/a", "/a/", "//a", "/a/." ("..": realpath's business).
    const norm = pool.path.replace(/\/(\.\/)+/g, '/').replace(/\/+/g, '/').replace(/(\/\.)+$/, '').replace(/\/+$/, '');
    if (seen.has(norm)) p.push(`fencer.pool[${i}].path: "${pool.path}" is listed twice`);
    seen.add(norm);
  });
  return p;
}

/** Process spawn and loop latency allowed on top of the probe arithmetic. */
export const SPAWN_SLACK_S = 0.5;

/** The fencer's main-loop period: often enough to fence within ~0.25 s of an expiry and pet ≥ 4× per watchdog timeout. */
export function fencerTickMs(probeIntervalS: number, watchdogTimeoutS: number): number {
  return Math.max(20, Math.min(250, (probeIntervalS * 1000) / 2, (watchdogTimeoutS * 1000) / 4));
}

/** The largest age of the last verified heartbeat of a pool whose every probe succeeds just within its deadline. */
export function healthyAgeMaxS(probeIntervalS: number, probeTimeoutS: number, watchdogTimeoutS: number): number {
  return Math.round((2 * probeTimeoutS + fencerTickMs(probeIntervalS, watchdogTimeoutS) / 1000 + SPAWN_SLACK_S) * 1000) / 1000;
}
