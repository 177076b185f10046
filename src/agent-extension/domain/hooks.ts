// before_vm_start hooks, vdsm-style (reference/vdsm.md §1.3-1.5): the executables in
// <hooks_dir>/before_vm_start/ run one after another in name order, each editing the same temp file
// whose path is in $_hook_domxml. Custom properties arrive as environment variables. Exit 0: ok, the
// file is read back and must still be a well-formed <domain>; exit 1 (or >2): a warning, the chain goes
// on (a hook that left garbage behind is undone); exit 2: stop, that hook's stderr is the fault.
// Unlike vdsm, every hook has a deadline (config.domain.hook_timeout_s): coreutils timeout(1) runs
// it in its own process group and kills the group, so a child the hook left behind cannot hold the
// pipes open. The hook is exec'd directly (argv [path]), never through a shell, and sees only the
// environment built here.
import { mkdtemp, readdir, readFile, rm, stat, access, writeFile } from 'node:fs/promises';
import { constants as FS } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BrickError, isBrickError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { Runner } from '../../shared/run.js';
import { firstChild, parseDomainXml, root } from './xml.js';

export const HOOK_POINT = 'before_vm_start';
/** Extra time timeout(1) gives a hook between SIGTERM and SIGKILL. */
const KILL_AFTER_S = 2;
const STDERR_MAX = 2000;

/** Custom property names become environment variables: identifiers only, none the hook relies on. */
export const CUSTOM_NAME_RE = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const RESERVED_ENV = new Set(['PATH', 'HOME', 'LANG', 'LC_ALL', 'SHELL', 'IFS', 'ENV', 'BASH_ENV', 'TMPDIR', 'PWD', 'vmId', 'vmName']);

export function checkCustomName(name: string): string | undefined {
  if (!CUSTOM_NAME_RE.test(name)) return `custom: property name "${name}" must be a letter then letters, digits or _ (at most 64)`;
  if (RESERVED_ENV.has(name) || /^(LD_|BASH_|_hook)/.test(name) || /^LC_/.test(name))
    return `custom: property name "${name}" is reserved (it would change how the hook runs)`;
  return undefined;
}

export interface HookOptions {
  hooksDir: string;
  timeoutS: number;
  custom: Readonly<Record<string, string>>;
  run: Runner;
  log: Logger;
}

export interface HookRun {
  hook: string;
  rc: number;
  ms: number;
}

/** Executables in the hook directory, in name order; others are reported and skipped. */
export async function discoverHooks(dir: string, log: Logger): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      log.info({ dir }, 'no before_vm_start hook directory; no hooks to run');
      return [];
    }
    throw new BrickError('HOOK_FAILED', `cannot read the hook directory ${dir}: ${(e as Error).message}`);
  }
  // Plain byte order, as vdsm's sort(): 10_a before 50_b before a.
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const out: string[] = [];
  for (const n of names) {
    if (n.startsWith('.')) continue;
    const p = join(dir, n);
    try {
      const st = await stat(p); // follows symlinks, like vdsm
      if (!st.isFile()) continue;
      await access(p, FS.X_OK);
      out.push(p);
    } catch {
      log.warn({ hook: p }, 'hook is not an executable file; skipped (chmod +x it to run it)');
    }
  }
  return out;
}

function tailOf(s: string): string {
  const t = s.trim();
  return t.length > STDERR_MAX ? '…' + t.slice(-STDERR_MAX) : t;
}

/** Run the before_vm_start hooks on `xml`; returns the XML the last hook left. */
export async function runBeforeVmStart(xml: string, opts: HookOptions): Promise<{ xml: string; runs: HookRun[] }> {
  const dir = join(opts.hooksDir, HOOK_POINT);
  const hooks = await discoverHooks(dir, opts.log);
  if (!hooks.length) return { xml, runs: [] };
  const doc = parseDomainXml(xml);
  const uuid = firstChild(root(doc), 'uuid')?.textContent?.trim() ?? '';
  const name = firstChild(root(doc), 'name')?.textContent?.trim() ?? '';

  const tmp = await mkdtemp(join(tmpdir(), 'brick-hook-'));
  const file = join(tmp, 'domxml');
  const runs: HookRun[] = [];
  try {
    await writeFile(file, xml, { mode: 0o600 });
    const env: NodeJS.ProcessEnv = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      LANG: 'C.UTF-8',
      ...opts.custom,
      vmId: uuid,
      vmName: name,
      _hook_domxml: file,
    };
    let good = xml;
    for (const hook of hooks) {
      const t0 = performance.now();
      let code: number;
      let stderr: string;
      try {
        const r = await opts.run('timeout', ['--kill-after', `${KILL_AFTER_S}s`, `${opts.timeoutS}s`, hook], {
          timeoutMs: (opts.timeoutS + KILL_AFTER_S + 5) * 1000,
          env,
          cwd: tmp,
          allowFailure: true,
        });
        code = r.code;
        stderr = r.stderr;
      } catch (e) {
        // timeout(1) killed its whole group with SIGKILL (itself included), or our own backstop fired.
        if (isBrickError(e) && (e.fault === 'TIMEOUT' || /SIGKILL/.test(e.message))) code = 137;
        else throw new BrickError('HOOK_FAILED', `hook ${hook} could not be run: ${(e as Error).message}`, { hook });
        stderr = '';
      }
      const ms = Math.round(performance.now() - t0);
      runs.push({ hook, rc: code, ms });
      const timedOut = (code === 124 || code === 137) && ms >= opts.timeoutS * 1000 - 50;
      if (timedOut) {
        opts.log.error({ hook, timeout_s: opts.timeoutS }, 'hook passed its deadline; killed');
        throw new BrickError('HOOK_FAILED', `hook ${hook} did not finish within domain.hook_timeout_s (${opts.timeoutS} s); killed`, { hook, timeout: true });
      }
      if (code === 2) {
        opts.log.error({ hook, rc: code, err: tailOf(stderr) }, 'hook stopped the start');
        throw new BrickError('HOOK_FAILED', `hook ${hook} stopped the start (exit 2): ${tailOf(stderr) || 'no message on stderr'}`, { hook, rc: 2 });
      }
      const text = await readFile(file, 'utf8');
      let ok = true;
      let why = '';
      try {
        parseDomainXml(text, `the XML hook ${hook} wrote`, 'HOOK_FAILED');
      } catch (e) {
        ok = false;
        why = (e as Error).message;
      }
      if (code === 0) {
        if (!ok) throw new BrickError('HOOK_FAILED', `hook ${hook} exited 0 but left XML that is not a libvirt domain: ${why}`, { hook });
        opts.log.info({ hook, rc: 0, ms }, 'hook ok');
        good = text;
        continue;
      }
      // 1 (or an unexpected code): warn and go on from the last good XML.
      opts.log.warn({ hook, rc: code, err: tailOf(stderr), ms }, code === 1 ? 'hook failed; going on' : 'hook returned an unexpected code; going on');
      if (ok) good = text;
      else {
        opts.log.warn({ hook, why }, 'hook left garbage XML; its changes are dropped');
        await writeFile(file, good, { mode: 0o600 });
      }
    }
    return { xml: good, runs };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
