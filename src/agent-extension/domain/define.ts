// domain_define's edge: hand the tweaked XML to libvirt with `virsh define --validate` and read back
// what libvirt stored (`dumpxml`), so the caller sees the UUID and defaults libvirt filled in.
// libvirt's test driver (test:///default, used by the tests) keeps its domains in the memory of one
// virsh process, so for test: URIs both commands run in ONE virsh invocation, as one command string
// that virsh's own parser splits at ";" (no shell is involved). The only caller text in that string is
// the domain name, quoted with virshQuote() so that ; ' " \ and spaces stay inside one argument. For
// every other URI the two commands run as separate virsh invocations with plain argument arrays.
import { makeTempDir } from '../../shared/temp-dirs.js';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BrickError, isBrickError } from '../../shared/errors.js';
import type { Runner } from '../../shared/run.js';
import { domainName, firstChild, LIBVIRT_XML_LIMITS, parseDomainXml, root } from './xml.js';

export function defaultLibvirtUri(procXen = '/proc/xen'): string {
  return existsSync(procXen) ? 'xen:///system' : 'qemu:///system';
}

export function libvirtUri(configured: string): string {
  return configured || defaultLibvirtUri();
}

/** Quote one argument for virsh's command-string parser (single quotes; ' becomes '\''). */
export function virshQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The virsh argv that defines `file` and dumps domain `name` in one process (test: URIs). */
export function virshBatchArgs(uri: string, file: string, name: string): string[] {
  return ['-q', '-c', uri, `define --validate --file ${virshQuote(file)} ; dumpxml --domain ${virshQuote(name)}`];
}

export interface Defined {
  name: string;
  uuid: string;
  xml: string;
}

function definedFrom(stdout: string, uri: string): Defined {
  const at = stdout.indexOf('<domain');
  if (at < 0) throw new BrickError('COMMAND_FAILED', `virsh -c ${uri} dumpxml printed no domain XML`);
  const xml = stdout.slice(at).trimEnd() + '\n';
  const doc = parseDomainXml(xml, `the XML libvirt (${uri}) returned`, 'COMMAND_FAILED', LIBVIRT_XML_LIMITS);
  return { name: domainName(doc), uuid: firstChild(root(doc), 'uuid')?.textContent?.trim() ?? '', xml };
}

/**
 * Define `xml` and read back what libvirt stored, both within `timeoutMs` in all: the read-back gets
 * what the define left of it (a call must not run up to twice its deadline). `now`: a monotonic clock
 * in ms (performance.now; tests hand their own).
 */
export async function defineDomain(xml: string, opts: { uri: string; run: Runner; timeoutMs: number; signal?: AbortSignal; now?: () => number }): Promise<Defined> {
  const now = opts.now ?? (() => performance.now());
  const until = now() + opts.timeoutMs;
  const left = () => Math.max(1, Math.floor(until - now()));
  const doc = parseDomainXml(xml);
  const name = domainName(doc);
  if (!name) throw new BrickError('BAD_XML', 'the domain XML has no <name>; libvirt needs one to define a domain');
  if (/[\x00-\x1f]/.test(name)) throw new BrickError('BAD_XML', 'the domain <name> contains a control character');
  const dir = await makeTempDir('define');
  const file = join(dir, 'domain.xml');
  const { uri, run, signal } = opts;
  const refused = (e: unknown): never => {
    if (isBrickError(e) && e.fault === 'COMMAND_FAILED') {
      const why = String(e.detail?.stderr ?? e.message).replace(/^error: /gm, '').trim();
      throw new BrickError('COMMAND_FAILED', `libvirt (${uri}) did not define domain "${name}": ${why}`, e.detail);
    }
    throw e;
  };
  // libvirt took the definition; only reading it back failed: the fault says the definition is in place.
  const unread = (e: unknown): never => {
    if (isBrickError(e) && (e.fault === 'COMMAND_FAILED' || e.fault === 'TIMEOUT')) {
      const why = String(e.detail?.stderr ?? e.message).replace(/^error: /gm, '').trim();
      throw new BrickError(e.fault, `libvirt (${uri}) defined domain "${name}" (the new definition is in place), but reading it back with virsh dumpxml failed: ${why}`, e.detail);
    }
    throw e;
  };
  try {
    await writeFile(file, xml, { mode: 0o600 });
    if (uri.startsWith('test:')) {
      const r = await run('virsh', virshBatchArgs(uri, file, name), { timeoutMs: left(), signal }).catch(refused);
      // virsh runs every command of the string and exits with the last one's status: a refused
      // define followed by a dumpxml that finds a domain of that name (the driver's own "test") exits 0.
      if (/^error: /m.test(r.stderr)) refused(new BrickError('COMMAND_FAILED', `virsh: ${r.stderr.trim()}`, { stderr: r.stderr }));
      return definedFrom(r.stdout, uri);
    }
    await run('virsh', ['-q', '-c', uri, 'define', '--validate', '--file', file], { timeoutMs: left(), signal }).catch(refused);
    const r = await run('virsh', ['-q', '-c', uri, 'dumpxml', '--domain', name], { timeoutMs: left() }).catch(unread);
    return definedFrom(r.stdout, uri);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
