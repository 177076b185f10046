// vdsm-style hooks (reference/vdsm.md §1.3-1.6), so hook scripts written for vdsm run unchanged:
//   <hooks_dir>/before_device_create/  once per NIC, in document order, with that NIC's <interface>
//                                      XML in the file; the VM's custom properties and that NIC's own
//                                      (nic_custom) in the environment, the VM's winning a clash as
//                                      in vdsm; the NIC the chain leaves replaces the original in place
//   <hooks_dir>/before_vm_start/       once, with the whole domain XML, after the device hooks
// In each directory the executables run one after another in name order (dotfiles and
// non-executables skipped), each editing the same temp file whose path is in $_hook_domxml.
// Exit codes as vdsm's before_* hook points: 0 ok; any other code fails the start once the chain has
// run (its stderr is in the HOOK_FAILED fault); 2 also stops the chain. An exec failure (126/127: a
// missing interpreter such as #!/usr/bin/python2 on a host without it) fails it too.
// Environment: a fixed PATH and LANG, the custom properties, vmId, vmName, _hook_domxml, and
// PYTHONPATH = [custom PYTHONPATH:]<domain.hooking_dir>, where brick's own `hooking` module (vdsm's
// hook API) lives. Loader and interpreter variables (LD_*, PYTHONHOME, PERL5LIB, NODE_OPTIONS, …) are
// refused as custom property names.
// Unlike vdsm, every hook has a deadline (config.domain.hook_timeout_s): coreutils timeout(1) runs it
// in its own process group and kills the group at the deadline; when the hook ends in time, what it
// left in that group is killed too (killGroupOnExit), so a background child cannot hold the pipes open
// or outlive the hook. The hook is exec'd directly (argv [path]), never through a shell.
import { makeTempDir } from '../../shared/temp-dirs.js';
import { readdir, rm, stat, access, writeFile, open } from 'node:fs/promises';
import { constants as FS } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BrickError, isBrickError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { Runner } from '../../shared/run.js';
import { firstChild, parseDomainXml, parseXmlStrict, root } from './xml.js';

export const HOOK_POINT = 'before_vm_start';
export const DEVICE_HOOK_POINT = 'before_device_create';
/** Extra time timeout(1) gives a hook between SIGTERM and SIGKILL. */
const KILL_AFTER_S = 2;
const STDERR_MAX = 2000;

/** Custom property names become environment variables: identifiers only, none the hook relies on. */
export const CUSTOM_NAME_RE = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
// SHELLOPTS and BASHOPTS are read by bash at start (SHELLOPTS=noexec makes a bash hook run nothing
// and exit 0), PS4 is expanded, command substitutions included, under xtrace (bash imports it when not root).
const RESERVED_ENV = new Set(['PATH', 'HOME', 'LANG', 'LC_ALL', 'SHELL', 'IFS', 'ENV', 'BASH_ENV', 'SHELLOPTS', 'BASHOPTS', 'PS4', 'TMPDIR', 'PWD', 'vmId', 'vmName', 'GCONV_PATH', 'LOCPATH', 'NLSPATH', 'HOSTALIASES', 'TCLLIBPATH']);
/**
 * The dynamic loader's and the interpreters' own variables: they change which code a hook runs, not
 * what it is told. PYTHONPATH alone is allowed (vdsm passes it on; brick appends hooking_dir to it).
 */
const RESERVED_PREFIX = /^(LD_|BASH_|_hook|LC_|PYTHON(?!PATH$)|PERL|RUBY|NODE_|LUA_|GEM_|JAVA_TOOL_OPTIONS$|_JAVA_OPTIONS$|JDK_JAVA_OPTIONS$|CLASSPATH$|MALLOC_|GLIBC_TUNABLES$)/;

export function checkCustomName(name: string, where = 'custom'): string | undefined {
  if (!CUSTOM_NAME_RE.test(name)) return `${where}: property name "${name}" must be a letter then letters, digits or _ (at most 64)`;
  if (RESERVED_ENV.has(name) || RESERVED_PREFIX.test(name))
    return `${where}: property name "${name}" is reserved (a loader or interpreter variable: it would change which code the hook runs)`;
  return undefined;
}

export interface HookOptions {
  hooksDir: string;
  /** Directory of brick's hooking module, put on the hooks' PYTHONPATH. */
  hookingDir: string;
  timeoutS: number;
  custom: Readonly<Record<string, string>>;
  run: Runner;
  log: Logger;
  /** The call's signal: when it aborts the running hook is killed (with its group) and no other starts. */
  signal?: AbortSignal;
}

export interface HookRun {
  point: string;
  hook: string;
  rc: number;
  ms: number;
  /** For before_device_create: the NIC's MAC. */
  mac?: string;
}

/** Executables in the hook directory, in name order; others are reported and skipped. */
export async function discoverHooks(dir: string, log: Logger): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      log.debug({ dir }, 'no hook directory; no hooks to run');
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

/** The interpreter a script names in its #! line, for the message when it cannot be executed. */
async function shebang(hook: string): Promise<string | undefined> {
  try {
    const fh = await open(hook, 'r');
    try {
      const buf = Buffer.alloc(256);
      const { bytesRead } = await fh.read(buf, 0, 256, 0);
      const first = buf.subarray(0, bytesRead).toString('utf8').split('\n')[0];
      return first.startsWith('#!') ? first.slice(2).trim() : undefined;
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
}

export function hookEnv(opts: Pick<HookOptions, 'custom' | 'hookingDir'>, extra: Record<string, string>, file: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
    // No __pycache__ written into hooking_dir (a package-owned directory) by hooks running as root.
    PYTHONDONTWRITEBYTECODE: '1',
    ...extra,
    ...opts.custom,
  };
  // As vdsm: the caller's PYTHONPATH first, the hook library's directory after it.
  env.PYTHONPATH = [opts.custom.PYTHONPATH, opts.hookingDir].filter(Boolean).join(':');
  env._hook_domxml = file;
  return env;
}

/**
 * The file a hook chain edits, as the last hook left it. A hook may have replaced it (sed -i renames
 * a new file over it), removed it, or put something that is no file there: O_NONBLOCK, so a FIFO
 * cannot block the read, and only a regular file counts.
 */
async function readHookFile(file: string): Promise<string> {
  let fh;
  try {
    fh = await open(file, FS.O_RDONLY | FS.O_NONBLOCK);
  } catch (e) {
    throw new Error(`$_hook_domxml (${file}) cannot be opened: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; a hook must leave the file in place`);
  }
  try {
    if (!(await fh.stat()).isFile()) throw new Error(`$_hook_domxml (${file}) is no longer a regular file`);
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

interface Failure {
  hook: string;
  rc: number;
  why: string;
}

interface ChainInput {
  point: string;
  /** What the scripts edit ("the domain XML", "NIC 02:00:…"), for messages. */
  what: string;
  text: string;
  env: Record<string, string>;
  /** Throws when the text a hook left (exit 0) is not what this hook point needs. */
  check: (text: string, hook: string) => void;
  mac?: string;
}

/**
 * Run one hook point's chain on `input.text`. Returns the text the chain left; throws HOOK_FAILED
 * when any hook exited non-zero (after the chain, or at once for exit 2 and timeouts).
 */
async function runChain(hooks: readonly string[], input: ChainInput, opts: HookOptions, runs: HookRun[]): Promise<string> {
  const tmp = await makeTempDir('hook');
  const file = join(tmp, input.point === DEVICE_HOOK_POINT ? 'devxml' : 'domxml');
  const failures: Failure[] = [];
  try {
    await writeFile(file, input.text, { mode: 0o600 });
    const env = hookEnv(opts, input.env, file);
    let text = input.text;
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
          killGroupOnExit: true,
          signal: opts.signal,
        });
        code = r.code;
        stderr = r.stderr;
      } catch (e) {
        if (opts.signal?.aborted) throw e; // the call was stopped: no further hook, no failure of this one
        // timeout(1) killed its whole group with SIGKILL (itself included), or our own backstop fired.
        if (isBrickError(e) && (e.fault === 'TIMEOUT' || /SIGKILL/.test(e.message))) code = 137;
        else throw new BrickError('HOOK_FAILED', `${input.point} hook ${hook} could not be run: ${(e as Error).message}`, { hook });
        stderr = '';
      }
      const ms = Math.round(performance.now() - t0);
      runs.push({ point: input.point, hook, rc: code, ms, ...(input.mac ? { mac: input.mac } : {}) });
      const timedOut = (code === 124 || code === 137) && ms >= opts.timeoutS * 1000 - 50;
      if (timedOut) {
        opts.log.error({ hook, point: input.point, timeout_s: opts.timeoutS }, 'hook passed its deadline; killed');
        throw new BrickError('HOOK_FAILED', `${input.point} hook ${hook} did not finish within domain.hook_timeout_s (${opts.timeoutS} s); killed`, { hook, timeout: true });
      }
      if (code === 0) {
        let out: string;
        try {
          out = await readHookFile(file);
          input.check(out, hook);
        } catch (e) {
          throw new BrickError('HOOK_FAILED', `${input.point} hook ${hook} exited 0 but left XML brick cannot use for ${input.what}: ${(e as Error).message}`, { hook });
        }
        opts.log.info({ hook, point: input.point, rc: 0, ms, ...(input.mac ? { mac: input.mac } : {}) }, 'hook ok');
        text = out;
        continue;
      }
      let why = tailOf(stderr) || 'no message on stderr';
      if (code === 126 || code === 127) {
        const interp = await shebang(hook);
        why = `it could not be executed (exit ${code}${interp ? `: its interpreter ${interp} is missing or not executable on this host` : ''})${stderr.trim() ? `: ${tailOf(stderr)}` : ''}`;
      }
      failures.push({ hook, rc: code, why });
      opts.log.error({ hook, point: input.point, rc: code, err: tailOf(stderr), ms }, code === 2 ? 'hook failed and stopped the chain' : 'hook failed; the start will fail after the chain');
      if (code === 2) break;
    }
    if (failures.length) {
      const list = failures.map((f) => `${f.hook} exited ${f.rc}: ${f.why}`).join('; ');
      throw new BrickError('HOOK_FAILED', `${input.point} hooks failed for ${input.what}, so the start fails: ${list}`, {
        hooks: failures.map((f) => ({ hook: f.hook, rc: f.rc })),
      });
    }
    return text;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

function vmIdentity(xml: string): Record<string, string> {
  const doc = parseDomainXml(xml);
  return {
    vmId: firstChild(root(doc), 'uuid')?.textContent?.trim() ?? '',
    vmName: firstChild(root(doc), 'name')?.textContent?.trim() ?? '',
  };
}

/** Run the before_vm_start hooks on `xml`; returns the XML the chain left. */
export async function runBeforeVmStart(xml: string, opts: HookOptions, runs: HookRun[] = []): Promise<{ xml: string; runs: HookRun[] }> {
  const hooks = await discoverHooks(join(opts.hooksDir, HOOK_POINT), opts.log);
  if (!hooks.length) return { xml, runs };
  const out = await runChain(
    hooks,
    {
      point: HOOK_POINT,
      what: 'the domain XML',
      text: xml,
      env: vmIdentity(xml),
      check: (text, hook) => {
        parseDomainXml(text, `the XML hook ${hook} wrote`, 'HOOK_FAILED');
      },
    },
    opts,
    runs,
  );
  return { xml: out, runs };
}

export interface NicHookInput {
  mac: string;
  /** The NIC's <interface> element, serialized on its own. */
  xml: string;
  /** That NIC's own custom properties (nic_custom). */
  custom: Readonly<Record<string, string>>;
}

/**
 * Run the before_device_create hooks once per NIC, in the order given (document order). Each NIC's
 * environment: its own properties, then the VM's (the VM's win a clash, as in vdsm). Returns the
 * <interface> XML each chain left, in the same order.
 */
export async function runBeforeDeviceCreate(
  domainXml: string,
  nics: readonly NicHookInput[],
  opts: HookOptions,
  runs: HookRun[] = [],
): Promise<string[] | undefined> {
  const hooks = await discoverHooks(join(opts.hooksDir, DEVICE_HOOK_POINT), opts.log);
  if (!hooks.length || !nics.length) return undefined;
  const id = vmIdentity(domainXml);
  const out: string[] = [];
  for (const nic of nics) {
    out.push(
      await runChain(
        hooks,
        {
          point: DEVICE_HOOK_POINT,
          what: `NIC ${nic.mac || '(no mac)'}`,
          text: nic.xml,
          env: id,
          mac: nic.mac,
          check: (text, hook) => {
            const doc = parseXmlStrict(text, `the XML hook ${hook} wrote`, 'HOOK_FAILED');
            const el = doc.documentElement!;
            if (el.localName !== 'interface' || el.namespaceURI) throw new Error(`its root is <${el.tagName}>; a NIC hook must leave one <interface> element`);
          },
        },
        { ...opts, custom: { ...nic.custom, ...opts.custom } },
        runs,
      ),
    );
  }
  return out;
}
