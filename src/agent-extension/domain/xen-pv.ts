// xen_pv: turn a KVM-style domain (virtio everything, as CloudStack's generator writes it) into one
// libxl accepts. libxl has no virtio: disks go on the Xen PV bus (xvd* names), NICs use netfront,
// the balloon is Xen's, virtio-serial controllers and channels go (no virtio-serial under Xen).
// Xen devices carry no PCI address, so the converted devices lose theirs; devices that never had
// an alias or address are handled the same way. libxl cannot open qcow2, so a qcow2 disk is refused
// before anything reaches libvirt. An empty cdrom written as <source file=''/> (which crashed
// libvirt's Xen driver) becomes a real empty cdrom: no <source> at all.
import { BrickError } from '../../shared/errors.js';
import {
  childElements,
  createElement,
  devices,
  domainName,
  firstChild,
  insertElement,
  removeElement,
  root,
  type Document,
  type Element,
} from './xml.js';

export interface XenPvOptions {
  /** Boot as an HVM guest (xenfv) instead of paravirtualized (xenpv). */
  hvm: boolean;
}

/** Buses that PV mode moves onto the Xen bus: a PV guest has no emulated IDE/SATA/SCSI controller. */
const PV_MOVED_BUSES = new Set(['virtio', 'ide', 'sata', 'scsi']);

function dropAddress(el: Element): void {
  for (const a of childElements(el, 'address')) removeElement(a);
}

/** vda → xvda, hdc → xvdc, sdb → xvdb; a name already taken gets the next free xvd letter. */
function xenDiskName(dev: string, used: Set<string>): string {
  const m = /^(?:vd|hd|sd|xvd)([a-z]+)$/.exec(dev);
  let name = m ? `xvd${m[1]}` : '';
  if (!name || used.has(name)) {
    for (let i = 0; i < 26 * 27; i++) {
      const suffix = i < 26 ? String.fromCharCode(97 + i) : String.fromCharCode(96 + Math.floor(i / 26)) + String.fromCharCode(97 + (i % 26));
      if (!used.has(`xvd${suffix}`)) {
        name = `xvd${suffix}`;
        break;
      }
    }
  }
  used.add(name);
  return name;
}

export function applyXenPv(doc: Document, opts: XenPvOptions): void {
  const dom = root(doc);
  const name = domainName(doc);
  const devs = devices(doc);
  const disks = devs ? childElements(devs, 'disk') : [];

  // Refuse first, change after: a refused call changes nothing.
  for (const d of disks) {
    const fmt = firstChild(d, 'driver')?.getAttribute('type') ?? '';
    if (fmt === 'qcow2') {
      const where = firstChild(d, 'source')?.getAttribute('file') || firstChild(d, 'source')?.getAttribute('dev') || firstChild(d, 'target')?.getAttribute('dev') || '?';
      throw new BrickError(
        'UNSUPPORTED',
        `xen_pv: disk ${where} in domain "${name}" is qcow2, which libxl cannot open; convert it to raw (qemu-img convert -O raw) first`,
      );
    }
  }

  dom.setAttribute('type', 'xen');

  // <os>: PV boots through a bootloader (pygrub, resolved by libxl) unless a kernel is given; HVM
  // uses Xen's own device model, so KVM machine types do not apply.
  const os = firstChild(dom, 'os');
  if (os) {
    const type = firstChild(os, 'type');
    if (type) {
      type.textContent = opts.hvm ? 'hvm' : 'xen';
      type.setAttribute('machine', opts.hvm ? 'xenfv' : 'xenpv');
    }
    if (!opts.hvm) {
      for (const b of childElements(os, 'boot')) removeElement(b);
      for (const l of childElements(os, 'loader')) removeElement(l);
      if (!firstChild(os, 'kernel') && !firstChild(dom, 'bootloader')) {
        const bl = createElement(doc, 'bootloader');
        bl.textContent = 'pygrub';
        insertElement(dom, bl, os);
      }
    }
  }

  if (!devs) return;
  // KVM's emulator binary is not Xen's device model; libxl picks its own.
  for (const e of childElements(devs, 'emulator')) removeElement(e);

  // Disks: target names first collected so renames cannot collide with untouched disks.
  const used = new Set<string>();
  const moved: Element[] = [];
  for (const d of disks) {
    const target = firstChild(d, 'target');
    const bus = target?.getAttribute('bus') ?? '';
    if (target && (bus === 'virtio' || (!opts.hvm && PV_MOVED_BUSES.has(bus)))) moved.push(d);
    else if (target?.getAttribute('dev')) used.add(target.getAttribute('dev')!);
  }
  for (const d of disks) {
    // An empty cdrom: <source file=''/> → no <source>.
    if (d.getAttribute('device') === 'cdrom' || d.getAttribute('device') === 'floppy') {
      for (const s of childElements(d, 'source')) {
        const attrs = ['file', 'dev', 'name', 'dir', 'volume', 'pool'].filter((a) => s.hasAttribute(a));
        if (attrs.every((a) => (s.getAttribute(a) ?? '').trim() === '')) removeElement(s);
      }
    }
    if (!moved.includes(d)) continue;
    const target = firstChild(d, 'target')!;
    target.setAttribute('bus', 'xen');
    target.setAttribute('dev', xenDiskName(target.getAttribute('dev') ?? '', used));
    dropAddress(d);
  }

  for (const nic of childElements(devs, 'interface')) {
    const model = firstChild(nic, 'model');
    if (!model || model.getAttribute('type') === 'virtio') {
      if (model) model.setAttribute('type', 'netfront');
      else insertElement(nic, createElement(doc, 'model', { type: 'netfront' }));
      // vhost/queues belong to virtio-net.
      for (const drv of childElements(nic, 'driver')) removeElement(drv);
      dropAddress(nic);
    }
  }

  for (const c of childElements(devs, 'controller')) {
    if (c.getAttribute('type') === 'virtio-serial') removeElement(c);
  }
  for (const ch of childElements(devs, 'channel')) {
    const t = firstChild(ch, 'target')?.getAttribute('type');
    if (t === 'virtio' || t === 'guestfwd') removeElement(ch);
  }
  for (const con of childElements(devs, 'console')) {
    const t = firstChild(con, 'target');
    if (t && (t.getAttribute('type') === 'virtio' || (!opts.hvm && (t.getAttribute('type') ?? 'serial') === 'serial'))) t.setAttribute('type', 'xen');
  }
  if (!opts.hvm) {
    // A PV guest has no USB or PS/2: pointer and keyboard go through Xen's own framebuffer channel,
    // which offers a mouse (no tablet).
    const seen = new Set<string>();
    for (const inp of childElements(devs, 'input')) {
      if (inp.getAttribute('bus') !== 'xen') {
        if (inp.getAttribute('type') !== 'keyboard') inp.setAttribute('type', 'mouse');
        inp.setAttribute('bus', 'xen');
        dropAddress(inp);
      }
      const k = inp.getAttribute('type') ?? '';
      if (seen.has(k)) removeElement(inp);
      seen.add(k);
    }
  }
  for (const b of childElements(devs, 'memballoon')) {
    if (b.getAttribute('model') === 'virtio' || b.getAttribute('model') === 'virtio-transitional' || b.getAttribute('model') === 'virtio-non-transitional') {
      b.setAttribute('model', 'xen');
      dropAddress(b);
    }
  }
}
