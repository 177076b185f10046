// qemu_cmdline (vdsm qemucmdline): extra QEMU arguments as <qemu:commandline><qemu:arg value=.../>.
// libvirt hands them to QEMU as argv entries (no shell), so no quoting is needed, but they only mean
// something to QEMU: a Xen domain is refused. The qemu namespace is declared on <domain> when missing;
// an existing <qemu:commandline> gets the new arguments after its own.
import { BrickError } from '../../shared/errors.js';
import { domainName, domainType, insertElement, QEMU_NS, root, type Document, type Element } from './xml.js';

export function applyQemuCmdline(doc: Document, args: readonly string[]): void {
  if (domainType(doc) === 'xen') {
    throw new BrickError('UNSUPPORTED', `qemu_cmdline: domain "${domainName(doc)}" is a Xen domain; QEMU command-line arguments are KVM only`);
  }
  if (!args.length) return;
  const dom = root(doc);
  // The prefix bound to libvirt's qemu namespace, if any.
  let prefix: string | undefined;
  for (const a of Array.from(dom.attributes)) {
    if (a.name.startsWith('xmlns:') && a.value === QEMU_NS) prefix = a.name.slice(6);
  }
  if (!prefix) {
    const bound = dom.getAttribute('xmlns:qemu');
    if (bound) throw new BrickError('CONFLICT', `qemu_cmdline: the prefix qemu is bound to ${bound}, not ${QEMU_NS}`);
    dom.setAttribute('xmlns:qemu', QEMU_NS);
    prefix = 'qemu';
  }
  let cmd: Element | undefined;
  for (let n = dom.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as Element).namespaceURI === QEMU_NS && (n as Element).localName === 'commandline') cmd = n as Element;
  }
  if (!cmd) cmd = insertElement(dom, doc.createElementNS(QEMU_NS, `${prefix}:commandline`));
  // qemu:arg must come before qemu:env in the schema.
  let ref: Element | null = null;
  for (let n = cmd.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as Element).localName !== 'arg') {
      ref = n as Element;
      break;
    }
  }
  for (const a of args) {
    const arg = doc.createElementNS(QEMU_NS, `${prefix}:arg`);
    arg.setAttribute('value', a);
    insertElement(cmd, arg, ref);
  }
}
