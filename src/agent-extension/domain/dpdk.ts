// dpdk: put chosen NICs on an OVS-DPDK vhost-user port made by dpdk_add_port. The NIC becomes
// <interface type='vhostuser'> with <source type='unix' path=SOCKET mode=MODE/> and a virtio model
// (as CloudStack's LibvirtVMDef writes it). What only a tap device has (target dev, virtualport,
// nwfilter, script, bandwidth) goes. vhost-user needs the guest's memory shared with OVS: the domain
// gets <memoryBacking><hugepages/><access mode='shared'/></memoryBacking>, and every NUMA cell
// memAccess='shared' (one cell covering all vCPUs and memory is added when there is none).
import { BrickError } from '../../shared/errors.js';
import {
  childElements,
  createElement,
  domainName,
  domainType,
  ensureChild,
  firstChild,
  insertElement,
  nicsFor,
  removeElements,
  replaceElement,
  root,
  type Document,
} from './xml.js';

export interface DpdkPort {
  socket: string;
  mode: 'server' | 'client';
}

/** Only what a vhost-user socket path needs; the path lands in an XML attribute and libvirt's argv. */
export const SOCKET_PATH_RE = /^\/[A-Za-z0-9_.+@:\/-]{1,250}$/;

const TAP_ONLY = ['target', 'virtualport', 'filterref', 'script', 'bandwidth', 'source'];

const UNIT_KIB: Record<string, number> = {
  b: 1 / 1024, bytes: 1 / 1024, k: 1, kib: 1, kb: 1000 / 1024, m: 1024, mib: 1024, mb: 1e6 / 1024,
  g: 1024 ** 2, gib: 1024 ** 2, gb: 1e9 / 1024, t: 1024 ** 3, tib: 1024 ** 3, tb: 1e12 / 1024,
};

function memoryKiB(doc: Document): number {
  const m = firstChild(root(doc), 'memory');
  const n = Number(m?.textContent?.trim());
  const unit = (m?.getAttribute('unit') || 'KiB').toLowerCase();
  if (!m || !Number.isFinite(n) || n <= 0 || !(unit in UNIT_KIB)) {
    throw new BrickError('BAD_XML', `dpdk: domain "${domainName(doc)}" has no usable <memory>; a NUMA cell needs the memory size`);
  }
  return Math.floor(n * UNIT_KIB[unit]);
}

function vcpuCount(doc: Document): number {
  const n = Number(firstChild(root(doc), 'vcpu')?.textContent?.trim() ?? '1');
  return Number.isInteger(n) && n > 0 ? n : 1;
}

export function applyDpdk(doc: Document, ports: ReadonlyMap<string, DpdkPort>): void {
  if (domainType(doc) === 'xen') {
    throw new BrickError('UNSUPPORTED', `dpdk: domain "${domainName(doc)}" is a Xen domain; vhost-user NICs need QEMU/KVM`);
  }
  const plan = nicsFor(doc, [...ports.keys()], 'dpdk');
  for (const { el, key } of plan) {
    const port = ports.get(key)!;
    el.setAttribute('type', 'vhostuser');
    const src = createElement(doc, 'source', { type: 'unix', path: port.socket, mode: port.mode });
    const oldSrc = firstChild(el, 'source');
    if (oldSrc) replaceElement(oldSrc, src);
    else insertElement(el, src, firstChild(el, 'mac')?.nextSibling ?? null);
    removeElements(TAP_ONLY.flatMap((name) => childElements(el, name)).filter((c) => c !== src));
    // driver name= picks vhost-net or QEMU's userspace net for a tap; vhost-user replaces both (queues stay).
    for (const drv of childElements(el, 'driver')) drv.removeAttribute('name');
    const model = firstChild(el, 'model');
    if (model) model.setAttribute('type', 'virtio');
    else insertElement(el, createElement(doc, 'model', { type: 'virtio' }), src.nextSibling);
  }
  if (!plan.length) return;

  const dom = root(doc);
  const mb = ensureChild(dom, 'memoryBacking', {}, firstChild(dom, 'vcpu') ?? firstChild(dom, 'os') ?? null);
  ensureChild(mb, 'hugepages');
  const access = ensureChild(mb, 'access', { mode: 'shared' });
  access.setAttribute('mode', 'shared');

  const cpu = ensureChild(dom, 'cpu', {}, firstChild(dom, 'clock') ?? firstChild(dom, 'on_poweroff') ?? firstChild(dom, 'devices') ?? null);
  const numa = firstChild(cpu, 'numa');
  const cells = numa ? childElements(numa, 'cell') : [];
  if (cells.length) {
    for (const c of cells) c.setAttribute('memAccess', 'shared');
  } else {
    const n = numa ?? insertElement(cpu, createElement(doc, 'numa'));
    const v = vcpuCount(doc);
    insertElement(
      n,
      createElement(doc, 'cell', { id: '0', cpus: v === 1 ? '0' : `0-${v - 1}`, memory: String(memoryKiB(doc)), unit: 'KiB', memAccess: 'shared' }),
    );
  }
}
