// exec_domr, check_domr_ssh and ovs_domr_upload_file: OpenSSH to the system VMs over the control
// network. The host runs no shell: ssh and scp get argument arrays, the configured key, port and a
// deadline, and only reach addresses inside ovm3.domr_networks.
//
// exec_domr's cmd is, by the module's contract, a command line for the system VM's shell; it goes to
// ssh as ONE argument. brick still refuses shell control syntax in it (; & | ` $( ${ < > \ and
// control characters, newlines included): CloudStack only sends "/opt/cloud/bin/<script> <args>",
// so a cmd that chains, substitutes or redirects is not CloudStack's and is refused before ssh runs.
import { makeTempDir } from '../../shared/temp-dirs.js';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BrickError } from '../../shared/errors.js';
import { XmlRpcI8 } from '../../rpc/values.js';
import type { Config } from '../../config/schema.js';
import type { CallContext } from '../../rpc/catalogue.js';
import { T } from '../../rpc/schema.js';
import { Invalid, refine } from '../../rpc/params.js';
import { plainText } from '../../rpc/formats.js';
import { domrAddress } from './args.js';

export const MAX_CMD_BYTES = 64 * 1024;
/** ssh's own failures (cannot connect, auth refused) exit 255. */
export const SSH_FAILED = 255;

type Ovm3 = Config['ovm3'];

/** Options shared by ssh and scp: no config files, no prompts (BatchMode), no host-key bookkeeping. Old-OpenSSH safe. */
export function sshOptions(o: Ovm3, connectTimeoutS: number): string[] {
  return [
    '-F', '/dev/null',
    '-i', o.ssh_key,
    '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'LogLevel=ERROR',
    '-o', `ConnectTimeout=${Math.max(1, Math.ceil(connectTimeoutS))}`,
  ];
}

/** argv for running cmd on a system VM (pure). */
export function sshArgv(o: Ovm3, host: string, cmd: string, port: number, connectTimeoutS: number): string[] {
  return [...sshOptions(o, connectTimeoutS), '-T', '-p', String(port), '-l', o.ssh_user, '--', host, cmd];
}

/**
 * argv for copying a local file to path/file on a system VM (pure). No -s/-O: old OpenSSH (OVM3's
 * dom0) has neither; RemoteDir and RemoteFileName keep the remote path free of anything a remote shell
 * would interpret, so legacy scp and SFTP mode copy to the same place.
 */
export function scpArgv(o: Ovm3, local: string, host: string, remotePath: string, connectTimeoutS: number): string[] {
  const h = host.includes(':') ? `[${host}]` : host;
  return [...sshOptions(o, connectTimeoutS), '-q', '-P', String(o.ssh_port), '--', local, `${o.ssh_user}@${h}:${remotePath}`];
}

/** A remote directory for ovs_domr_upload_file: absolute, conservative characters, no "..". */
export const RemoteDir = refine(T.String({ description: 'absolute directory on the system VM' }), (v): string => {
  const s = plainText(v, 1024);
  if (!/^\/[A-Za-z0-9_.,+@%=:/-]*$/.test(s) || s.split('/').includes('..'))
    throw new Invalid(`must be an absolute path of letters, digits and _ . , + @ % = : / - without "..", got "${s}"`);
  return s.replace(/\/+$/, '') || '/';
});

/**
 * A file name for ovs_domr_upload_file: the same conservative characters as RemoteDir, because old
 * OpenSSH's scp (OVM3's dom0, and scp -O) hands the remote path to the system VM's shell, which would
 * expand $VAR, globs, quotes and spaces in it.
 */
export const RemoteFileName = refine(T.String({ description: 'a file name on the system VM' }), (v): string => {
  const s = plainText(v, 255);
  if (!/^[A-Za-z0-9_.,+@%=:-]+$/.test(s) || s === '.' || s === '..')
    throw new Invalid(`must be a file name of letters, digits and _ . , + @ % = : - (a remote shell would interpret anything else), got "${s}"`);
  return s;
});

/** How long an ssh call may take: the caller's timeout, else ovm3.ssh_timeout_s, never past the call's deadline. */
function budgetMs(ctx: CallContext, timeoutS?: number): number {
  const want = (timeoutS ?? ctx.config.ovm3.ssh_timeout_s) * 1000;
  return Math.max(1, Math.min(want, ctx.remainingMs() - 50));
}

export interface ExecResult {
  rc: number;
  out: string;
  err: string;
}

async function sshExec(ctx: CallContext, host: string, cmd: string, port: number, timeoutS?: number): Promise<ExecResult> {
  const ms = budgetMs(ctx, timeoutS);
  const o = ctx.config.ovm3;
  const r = await ctx.run('ssh', sshArgv(o, host, cmd, port, Math.min(10, ms / 1000)), { timeoutMs: ms, allowFailure: true });
  return { rc: r.code, out: r.stdout, err: r.stderr };
}

/** exec_domr's reply: rc is written as <i8> (CloudStack's own fixture; every client revision casts it to Long). */
export interface ExecDomrReply {
  rc: XmlRpcI8;
  out: string;
  err: string;
}

/** ssh's words when ConnectTimeout fired (before the banner, or during it). */
const CONNECT_TIMED_OUT = /Connection timed out|timed out during banner exchange|Operation timed out/i;

/** The longest whole-command limit exec_domr may be configured with, plus the connect; its catalogue backstop. */
export const EXEC_DOMR_MAX_MS = (3600 + 120) * 1000;

/**
 * exec_domr(host, cmd[, timeout]) → {rc: <i8>, out, err}. Two limits, as the module has: `timeout`
 * (default ovm3.domr_connect_timeout_s) bounds the SSH connect only; the whole command has
 * ovm3.domr_command_timeout_s. Either firing is a TIMEOUT fault that names it. rc 255 is ssh's own failure.
 */
export async function execDomr([ip, cmd, timeout]: [string, string, number?], ctx: CallContext): Promise<ExecDomrReply> {
  const o = ctx.config.ovm3;
  const host = domrAddress('host', ip, o.domr_networks);
  if (!cmd.trim()) throw new BrickError('INVALID_PARAMS', 'cmd: must not be empty');
  const connectS = timeout ?? o.domr_connect_timeout_s;
  const limitMs = o.domr_command_timeout_s * 1000;
  const ms = Math.max(1, Math.min(limitMs, ctx.remainingMs() - 50));
  const limitName = ms < limitMs ? `the call's deadline (${Math.round(ms / 1000)} s left)` : `ovm3.domr_command_timeout_s (${o.domr_command_timeout_s} s)`;
  const t0 = performance.now();
  let r;
  try {
    // ConnectTimeout is the connect limit alone: when the command limit is shorter, its kill comes first and names itself.
    r = await ctx.run('ssh', sshArgv(o, host, cmd, o.ssh_port, connectS), { timeoutMs: ms, allowFailure: true });
  } catch (e) {
    if (e instanceof BrickError && e.fault === 'TIMEOUT') {
      throw new BrickError('TIMEOUT', `exec_domr: the command on ${host} did not finish within ${limitName}, the whole-command limit; ssh was killed`, { host, limit: 'command' });
    }
    throw e;
  }
  if (r.code === SSH_FAILED && CONNECT_TIMED_OUT.test(r.stderr) && performance.now() - t0 >= connectS * 1000 - 100) {
    throw new BrickError(
      'TIMEOUT',
      `exec_domr: could not connect to ${host} port ${o.ssh_port} within ${connectS} s, the connect timeout (exec_domr's timeout argument, default ovm3.domr_connect_timeout_s): ${r.stderr.trim().slice(-300)}`,
      { host, limit: 'connect' },
    );
  }
  if (r.code === SSH_FAILED) ctx.log.warn({ host, err: r.stderr.trim().slice(0, 500) }, 'exec_domr: ssh could not run the command');
  return { rc: new XmlRpcI8(r.code), out: r.stdout, err: r.stderr };
}

/** check_domr_ssh(ip[, port, timeout]) → true when ssh logs in and runs `true`. */
export async function checkDomrSsh([ip, givenPort, timeoutS = 10]: [string, number?, number?], ctx: CallContext): Promise<boolean> {
  const port = givenPort ?? ctx.config.ovm3.ssh_port;
  const host = domrAddress('ip', ip, ctx.config.ovm3.domr_networks);
  try {
    return (await sshExec(ctx, host, 'true', port, timeoutS)).rc === 0;
  } catch (e) {
    if (e instanceof BrickError && e.fault === 'TIMEOUT') return false;
    throw e;
  }
}

/** ovs_domr_upload_file(domr, path, file, content) → true; a failed copy is a fault naming scp's error. */
export async function domrUploadFile([domr, dir, name, data]: [string, string, string, string | Buffer], ctx: CallContext): Promise<true> {
  const host = domrAddress('domr', domr, ctx.config.ovm3.domr_networks);
  const tmp = await makeTempDir('domr');
  try {
    const local = join(tmp, name);
    await writeFile(local, data, { mode: 0o600 });
    const ms = budgetMs(ctx);
    const remote = dir === '/' ? `/${name}` : `${dir}/${name}`;
    const r = await ctx.run('scp', scpArgv(ctx.config.ovm3, local, host, remote, Math.min(10, ms / 1000)), { timeoutMs: ms, allowFailure: true });
    if (r.code !== 0)
      throw new BrickError('COMMAND_FAILED', `scp to ${host}:${remote} failed (exit ${r.code}): ${r.stderr.trim().slice(-500) || 'no output'}`);
    return true;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
