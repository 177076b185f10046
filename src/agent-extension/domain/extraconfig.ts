// extraconfig: CloudStack's per-VM extra domain XML (reference/cloudstack.md §6.3). The API value is
// URL-encoded; once decoded, a blank line separates sections, and a section whose first line is
// `title:` is named, otherwise numbered. CloudStack's agent appends the raw text to <domain>, so a
// second <memoryBacking> or <cpu> produces duplicates libvirt rejects, and its allow-list check is
// skipped whenever the text contains a colon. Here every section is parsed as XML, every top-level
// element must be in config.domain.extraconfig_allow, and each is MERGED: it replaces the domain's
// element of that name (duplicates removed) or is added at the end. No text reaches the XML unparsed.
import { BrickError } from '../../shared/errors.js';
import { childElements, childIndent, domainName, firstChild, insertElement, reindent, parseXmlStrict, removeElements, replaceElement, root, type Document, type Element } from './xml.js';

export interface ExtraconfigSection {
  /** "dpdk-hugepages" for a titled section, "1", "2", ... for an untitled one. */
  key: string;
  elements: Element[];
  /**
   * 'domain': merged into <domain>. 'vhostuser': a `dpdk-interface-TAG` section, which CloudStack's
   * DPDK support means "to be included on VMs interfaces definition": merged into every
   * <interface type='vhostuser'> (after the dpdk tweak made them), allow-listed by
   * domain.dpdk_interface_allow.
   */
  target: 'domain' | 'vhostuser';
}

/** The default of domain.dpdk_interface_allow: what a vhost-user NIC may take from extraconfig (not <source>: the dpdk tweak sets the socket). */
export const DPDK_INTERFACE_ALLOW_DEFAULT = ['model', 'driver', 'mtu', 'tune', 'rom', 'link'];
export const DPDK_INTERFACE_PREFIX = 'dpdk-interface-';

/** URL-decode as Java's URLDecoder does ('+' is a space). */
export function decodeExtraconfig(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    throw new BrickError('INVALID_PARAMS', 'extraconfig: not valid URL encoding (a % not followed by two hex digits, or bad UTF-8); pass the value as CloudStack\'s API stores it');
  }
}

/** Split and parse; throws INVALID_PARAMS naming the section for anything not allowed. */
export function parseExtraconfig(value: string, allow: readonly string[], interfaceAllow: readonly string[] = DPDK_INTERFACE_ALLOW_DEFAULT): ExtraconfigSection[] {
  const text = decodeExtraconfig(value).replace(/\r\n?/g, '\n');
  const domainAllowed = new Set(allow);
  const nicAllowed = new Set(interfaceAllow);
  const sections: ExtraconfigSection[] = [];
  let index = 0;
  for (const raw of text.split(/\n[ \t]*\n/)) {
    if (raw.trim() === '') continue;
    index++;
    let body = raw;
    let key = String(index);
    const lines = raw.replace(/^\n+/, '').split('\n');
    if (/^\S+:$/.test(lines[0].trim())) {
      key = lines[0].trim().slice(0, -1);
      body = lines.slice(1).join('\n');
    }
    const what = `extraconfig section "${key}"`;
    const target = key.startsWith(DPDK_INTERFACE_PREFIX) && key.length > DPDK_INTERFACE_PREFIX.length ? 'vhostuser' : 'domain';
    const allowed = target === 'vhostuser' ? nicAllowed : domainAllowed;
    const allowKey = target === 'vhostuser' ? 'domain.dpdk_interface_allow' : 'domain.extraconfig_allow';
    if (body.trim() === '') throw new BrickError('INVALID_PARAMS', `${what} is empty`);
    const frag = parseXmlStrict(`<config>${body}</config>`, what, 'INVALID_PARAMS');
    const elements: Element[] = [];
    for (let n = frag.documentElement!.firstChild; n; n = n.nextSibling) {
      if (n.nodeType === 1) {
        const el = n as Element;
        const name = el.tagName;
        if (!allowed.has(name)) {
          throw new BrickError(
            'INVALID_PARAMS',
            `${what}: <${name}> is not in ${allowKey} (${[...allowed].join(', ') || 'empty'}); ask the host admin to allow it or drop it`,
          );
        }
        // libvirt's elements are in no namespace: <cpu xmlns="urn:x"> is no <cpu> to libvirt (it
        // drops it, or refuses it under --validate), and merging it would remove the domain's own.
        if (el.namespaceURI) {
          throw new BrickError(
            'INVALID_PARAMS',
            `${what}: <${name}> is in namespace ${el.namespaceURI}, so it is not libvirt's <${el.localName}> (libvirt would ignore it); send it without xmlns`,
          );
        }
        elements.push(el);
      } else if (n.nodeType === 3 || n.nodeType === 4) {
        if (/\S/.test(n.nodeValue ?? '')) {
          throw new BrickError('INVALID_PARAMS', `${what}: text outside an element ("${(n.nodeValue ?? '').trim().slice(0, 40)}"); only whole elements can be merged`);
        }
      } else if (n.nodeType === 7) {
        throw new BrickError('INVALID_PARAMS', `${what}: processing instructions are not allowed`);
      }
      // comments are dropped
    }
    if (!elements.length) throw new BrickError('INVALID_PARAMS', `${what} has no element`);
    sections.push({ key, elements, target });
  }
  return sections;
}

export function applyExtraconfig(doc: Document, sections: readonly ExtraconfigSection[]): void {
  const dom = root(doc);
  for (const s of sections) {
    if (s.target !== 'domain') continue;
    for (const el of s.elements) {
      const mine = doc.importNode(el, true) as Element;
      const existing = childElements(dom, el.tagName);
      const prev = existing[0]?.previousSibling;
      const at = prev && prev.nodeType === 3 ? /\n([ \t]*)$/.exec(prev.nodeValue ?? '')?.[1] : undefined;
      reindent(mine, at ?? childIndent(dom) ?? '');
      if (existing.length) {
        replaceElement(existing[0], mine);
        removeElements(existing.slice(1));
      } else {
        insertElement(dom, mine);
      }
    }
  }
}

/**
 * The dpdk-interface-TAG sections: each element replaces the child of that name in every
 * <interface type='vhostuser'> (duplicates removed), or is added. Runs after the dpdk tweak. No
 * vhost-user NIC to apply them to is NOT_FOUND naming the section: silently dropping what the
 * offering asks for (queues, an MTU) would start a VM that is not what was ordered.
 */
export function applyDpdkInterfaceConfig(doc: Document, sections: readonly ExtraconfigSection[]): void {
  const mine = sections.filter((s) => s.target === 'vhostuser');
  if (!mine.length) return;
  const devs = firstChild(root(doc), 'devices');
  const nics = devs ? childElements(devs, 'interface').filter((n) => n.getAttribute('type') === 'vhostuser') : [];
  if (!nics.length) {
    throw new BrickError(
      'NOT_FOUND',
      `extraconfig section "${mine[0].key}": no <interface type='vhostuser'> in domain "${domainName(doc)}" to apply it to; dpdk-interface sections are for vhost-user NICs (add the dpdk tweak for them, or drop the section)`,
    );
  }
  for (const nic of nics) {
    for (const s of mine) {
      for (const el of s.elements) {
        const fresh = doc.importNode(el, true) as Element;
        const existing = childElements(nic, el.tagName);
        if (existing.length) {
          replaceElement(existing[0], fresh);
          removeElements(existing.slice(1));
        } else insertElement(nic, fresh);
      }
    }
  }
}
