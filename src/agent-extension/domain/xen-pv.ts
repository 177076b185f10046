// xen_pv: turn a KVM-style domain (as CloudStack's KVM generator or libvirt's test data write it) into
// one libvirt's libxl driver starts. The rule: whatever cannot be converted into something libxl
// starts is refused with UNSUPPORTED naming the element; the output is never XML a Xen host refuses.
// Checked against libvirt 9.0.0's own libxl driver code (test/host/xen-libxl.test.ts, a corpus of
// CloudStack and libvirt-test-data domains, PV and HVM).
//
// Converted:
// - disks: virtio (and in PV every emulated bus: ide, sata, scsi, usb, fdc) → bus xen, xvd* names;
//   PCI/drive addresses and per-device boot order go (PV boots through pygrub); an empty cdrom
//   written <source file=''/> becomes a real empty cdrom.
// - NICs: in PV every NIC is netfront (libxl: "only model 'netfront' is supported for Xen PV(H)");
//   in HVM the two models Xen's device model emulates, e1000 and rtl8139, stay, every other model
//   becomes netfront (a PV NIC: the guest needs Xen's PV drivers, as it needed virtio's before).
//   virtio-only <driver> settings go.
// - balloon: always Xen's (libxl cannot run a domain without it, so model='none' — CloudStack's
//   vm.memballoon.disable — becomes xen too: on Xen the host takes memory back only when
//   <currentMemory> is below <memory>); autodeflate, freePageReporting and statistics go.
// - timers: KVM's clocks (kvmclock, hypervclock, rtc, pit, platform) go; tsc stays, hpet stays in HVM.
// - channels: a virtio channel becomes a Xen channel (<target type='xen'>) with the same name and
//   source: the guest reads it as a Xen PV console named NAME instead of /dev/virtio-ports/NAME.
//   virtio-serial controllers go.
// - USB controllers of KVM models (ich9-*, piix*, *xhci, ehci, …) go: libxl makes the HVM USB bus
//   itself for a USB tablet or mouse. PCI controllers other than the root, and SCSI controllers with
//   no SCSI disk left, go.
// - video: one adapter; in HVM qxl/virtio/bochs/ramfb become vga (Xen's device model has no QXL).
// - inputs: PV → Xen's framebuffer mouse and keyboard; HVM keeps the USB tablet/mouse and PS/2.
// - KVM-only devices and features (virtio RNG, vsock, panic, watchdog, <kvm>, pmu, vmport, smm) go.
// Refused (UNSUPPORTED, naming the element): qcow2 and LUKS-encrypted disks (libxl opens raw only and
// does not decrypt: the guest would read ciphertext), <qemu:*> elements (arguments for KVM's QEMU:
// libxl would drop them silently, and which of them matter only the one who wrote them knows),
// NIC types libxl has no backend for (vhostuser, direct, user, …), guestfwd and non-socket/pty
// channels, USB redirection (<redirdev>), clock offsets libxl lacks (timezone, absolute).
import { BrickError } from '../../shared/errors.js';
import {
  childElements,
  createElement,
  devices,
  domainName,
  firstChild,
  insertElement,
  QEMU_NS,
  removeElements,
  root,
  type Document,
  type Element,
} from './xml.js';

export interface XenPvOptions {
  /** Boot as an HVM guest (xenfv) instead of paravirtualized (xenpv). */
  hvm: boolean;
}

/** Buses that PV mode moves onto the Xen bus: a PV guest has no emulated controllers. */
const PV_MOVED_BUSES = new Set(['virtio', 'ide', 'sata', 'scsi', 'usb', 'fdc']);
/** NIC types libxl has a backend for. */
const XEN_NIC_TYPES = new Set(['bridge', 'network', 'ethernet', 'hostdev']);
/** NIC models Xen's HVM device model emulates (xl-network-configuration(5)). */
const HVM_EMULATED_NICS = new Set(['e1000', 'rtl8139']);
/** Timers libxl accepts; everything else is KVM's. */
const PV_TIMERS = new Set(['tsc']);
const HVM_TIMERS = new Set(['tsc', 'hpet']);
/** USB controller models libxl knows (Xen's PV USB); KVM's emulated ones go. */
const XEN_USB_MODELS = new Set(['qusb1', 'qusb2', 'none']);
/** Video models Xen's HVM device model has. */
const HVM_VIDEO_MODELS = new Set(['vga', 'cirrus', 'xen']);
/** Devices only QEMU/KVM offers (virtio transports, KVM paravirt devices). */
const KVM_ONLY_DEVICES = ['rng', 'vsock', 'panic', 'watchdog', 'iommu', 'shmem'];
/** <features> children that only mean something to KVM. */
const KVM_ONLY_FEATURES = ['kvm', 'pmu', 'vmport', 'smm', 'ioapic', 'hpt', 'vmcoreinfo', 'htm', 'nested-hv', 'ccf-assist', 'cfpc', 'sbbc', 'ibs', 'async-teardown', 'tcg', 'ps2'];
const CHANNEL_TYPES = new Set(['unix', 'pty']);

function refuse(doc: Document, what: string, why: string): never {
  throw new BrickError('UNSUPPORTED', `xen_pv: ${what} in domain "${domainName(doc)}": ${why}`);
}

function dropAddress(el: Element): void {
  removeElements(childElements(el, 'address'));
}

function removeAll(parent: Element, name: string): void {
  removeElements(childElements(parent, name));
}

function diskWhere(d: Element): string {
  const src = firstChild(d, 'source');
  return src?.getAttribute('file') || src?.getAttribute('dev') || src?.getAttribute('name') || firstChild(d, 'target')?.getAttribute('dev') || '?';
}

/** vda → xvda, hdc → xvdc, sdb → xvdb; a name already taken gets the next free xvd letter. */
function xenDiskName(dev: string, used: Set<string>): string {
  const m = /^(?:vd|hd|sd|xvd|fd)([a-z]+)$/.exec(dev);
  let name = m && !dev.startsWith('fd') ? `xvd${m[1]}` : '';
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

/** Everything xen_pv refuses, checked before anything changes: a refused call changes nothing. */
function refuseUnconvertible(doc: Document, devs: Element | undefined): void {
  const dom = root(doc);
  const clock = firstChild(dom, 'clock');
  const offset = clock?.getAttribute('offset') ?? 'utc';
  if (offset === 'timezone' || offset === 'absolute') {
    refuse(doc, `<clock offset='${offset}'>`, 'libxl keeps guest time only as utc, localtime or variable; use one of those');
  }
  const devList = devs ? childElements(devs) : [];
  for (const d of devList.filter((e) => e.localName === 'disk')) {
    const fmt = firstChild(d, 'driver')?.getAttribute('type') ?? '';
    if (fmt === 'qcow2') {
      refuse(doc, `disk ${diskWhere(d)}`, 'it is qcow2, which libxl cannot open; convert it to raw (qemu-img convert -O raw) first');
    }
    const src = firstChild(d, 'source');
    const enc = firstChild(d, 'encryption') ?? (src ? firstChild(src, 'encryption') : undefined);
    if (enc) {
      refuse(
        doc,
        `disk ${diskWhere(d)} <encryption format='${enc.getAttribute('format') ?? ''}'>`,
        'libxl does not decrypt disks, so the guest would read ciphertext; decrypt the volume first, or run this VM on KVM',
      );
    }
  }
  for (const nic of devList.filter((e) => e.localName === 'interface')) {
    const type = nic.getAttribute('type') ?? '';
    if (!XEN_NIC_TYPES.has(type)) {
      const mac = firstChild(nic, 'mac')?.getAttribute('address') ?? '(no mac)';
      refuse(doc, `NIC ${mac} <interface type='${type}'>`, `libxl has no backend for this interface type (it has ${[...XEN_NIC_TYPES].join(', ')}); ${type === 'vhostuser' ? 'vhost-user NICs need QEMU/KVM' : 'attach it to a bridge instead'}`);
    }
  }
  for (const ch of devList.filter((e) => e.localName === 'channel')) {
    const t = firstChild(ch, 'target')?.getAttribute('type') ?? '';
    if (t === 'guestfwd') refuse(doc, "<channel> with <target type='guestfwd'>", "it forwards through QEMU's user-mode network, which Xen does not have");
    const type = ch.getAttribute('type') ?? '';
    if (!CHANNEL_TYPES.has(type)) refuse(doc, `<channel type='${type}'>`, 'Xen channels are unix sockets or ptys only');
    if (type === 'unix' && !firstChild(ch, 'source')?.getAttribute('path')) {
      refuse(doc, `<channel type='unix'> named ${firstChild(ch, 'target')?.getAttribute('name') ?? '?'}`, 'it has no <source path>: Xen does not choose one itself; give the socket path');
    }
  }
  const redir = devList.find((e) => e.localName === 'redirdev');
  if (redir) {
    refuse(
      doc,
      `<redirdev bus='${redir.getAttribute('bus') ?? ''}' type='${redir.getAttribute('type') ?? ''}'>`,
      "USB redirection rides on QEMU's emulated USB controller, which a Xen domain does not have (libxl refuses it: \"USB is disabled for this domain\"); remove it, or run this VM on KVM",
    );
  }
  for (const el of childElements(dom)) {
    if (el.namespaceURI === QEMU_NS) {
      refuse(
        doc,
        `<${el.tagName}>`,
        "it carries arguments for KVM's QEMU, which libxl ignores (they would be dropped silently, and only the one who wrote them knows whether the guest needs them); remove it, or run this VM on KVM",
      );
    }
  }
}

export function applyXenPv(doc: Document, opts: XenPvOptions): void {
  const dom = root(doc);
  const devs = devices(doc);
  refuseUnconvertible(doc, devs);

  dom.setAttribute('type', 'xen');
  convertOs(doc, dom, opts);
  convertFeaturesAndClock(dom, opts);
  if (!devs) return;
  // KVM's emulator binary is not Xen's device model; libxl picks its own.
  removeAll(devs, 'emulator');
  for (const name of KVM_ONLY_DEVICES) removeAll(devs, name);
  convertDisks(devs, opts);
  convertNics(doc, devs, opts);
  convertControllers(devs, opts);
  convertChannelsAndConsoles(devs, opts);
  convertInputs(devs, opts);
  convertVideo(devs, opts);
  convertBalloon(doc, devs);
}

function convertOs(doc: Document, dom: Element, opts: XenPvOptions): void {
  // <os>: PV boots through a bootloader (pygrub, resolved by libxl) unless a kernel is given; HVM
  // uses Xen's own device model (xenfv), so KVM machine types do not apply.
  const os = firstChild(dom, 'os');
  if (!os) return;
  const type = firstChild(os, 'type');
  if (type) {
    type.textContent = opts.hvm ? 'hvm' : 'xen';
    type.setAttribute('machine', opts.hvm ? 'xenfv' : 'xenpv');
  }
  if (opts.hvm) {
    // A KVM firmware path (OVMF_CODE.fd, pflash) means nothing to Xen: libxl has its own OVMF.
    const loader = firstChild(os, 'loader');
    if (loader || os.getAttribute('firmware') === 'efi') {
      removeElements(childElements(os, 'loader'));
      removeAll(os, 'nvram');
      os.setAttribute('firmware', 'efi');
    }
    return;
  }
  for (const name of ['boot', 'loader', 'nvram', 'bootmenu', 'smbios', 'bios']) removeAll(os, name);
  os.removeAttribute('firmware');
  if (!firstChild(os, 'kernel') && !firstChild(dom, 'bootloader')) {
    const bl = createElement(doc, 'bootloader');
    bl.textContent = 'pygrub';
    insertElement(dom, bl, os);
  }
}

function convertFeaturesAndClock(dom: Element, opts: XenPvOptions): void {
  const features = firstChild(dom, 'features');
  if (features) {
    for (const name of KVM_ONLY_FEATURES) removeAll(features, name);
    if (!opts.hvm) removeAll(features, 'hyperv');
  }
  const clock = firstChild(dom, 'clock');
  if (clock) {
    const keep = opts.hvm ? HVM_TIMERS : PV_TIMERS;
    removeElements(childElements(clock, 'timer').filter((t) => !keep.has(t.getAttribute('name') ?? '')));
  }
}

function convertDisks(devs: Element, opts: XenPvOptions): void {
  const disks = childElements(devs, 'disk');
  // Target names first collected so renames cannot collide with untouched disks.
  const used = new Set<string>();
  const moved = new Set<Element>();
  for (const d of disks) {
    const target = firstChild(d, 'target');
    const bus = target?.getAttribute('bus') ?? '';
    if (target && (bus === 'virtio' || (!opts.hvm && PV_MOVED_BUSES.has(bus)))) moved.add(d);
    else if (target?.getAttribute('dev')) used.add(target.getAttribute('dev')!);
  }
  const dropped: Element[] = [];
  for (const d of disks) {
    // An empty cdrom: <source file=''/> → no <source>.
    if (d.getAttribute('device') === 'cdrom' || d.getAttribute('device') === 'floppy') {
      removeElements(
        childElements(d, 'source').filter((s) => {
          const attrs = ['file', 'dev', 'name', 'dir', 'volume', 'pool'].filter((a) => s.hasAttribute(a));
          return attrs.every((a) => (s.getAttribute(a) ?? '').trim() === '');
        }),
      );
    }
    if (!opts.hvm) removeAll(d, 'boot');
    if (!moved.has(d)) continue;
    // A PV guest has no floppy drive; an empty one holds nothing worth a Xen disk.
    if (d.getAttribute('device') === 'floppy' && !firstChild(d, 'source')) {
      dropped.push(d);
      continue;
    }
    const target = firstChild(d, 'target')!;
    target.setAttribute('bus', 'xen');
    target.setAttribute('dev', xenDiskName(target.getAttribute('dev') ?? '', used));
    // A floppy has no place on the Xen bus: it becomes a plain disk there.
    if (d.getAttribute('device') === 'floppy') d.setAttribute('device', 'disk');
    dropAddress(d);
  }
  removeElements(dropped);
}

function convertNics(doc: Document, devs: Element, opts: XenPvOptions): void {
  for (const nic of childElements(devs, 'interface')) {
    const model = firstChild(nic, 'model');
    const m = model?.getAttribute('type') ?? '';
    const keep = m === 'netfront' || (opts.hvm && HVM_EMULATED_NICS.has(m));
    if (!keep) {
      if (model) model.setAttribute('type', 'netfront');
      else insertElement(nic, createElement(doc, 'model', { type: 'netfront' }));
      // vhost, queues, offloads: virtio-net's.
      removeAll(nic, 'driver');
    }
    removeAll(nic, 'rom');
    dropAddress(nic);
  }
}

function convertControllers(devs: Element, opts: XenPvOptions): void {
  const busesLeft = new Set(childElements(devs, 'disk').map((d) => firstChild(d, 'target')?.getAttribute('bus') ?? ''));
  const dropped: Element[] = [];
  for (const c of childElements(devs, 'controller')) {
    const type = c.getAttribute('type') ?? '';
    const model = c.getAttribute('model') ?? '';
    const drop =
      type === 'virtio-serial' ||
      (type === 'usb' && !XEN_USB_MODELS.has(model)) ||
      (type === 'pci' && model !== 'pci-root') ||
      (type === 'pci' && !opts.hvm) ||
      ((type === 'scsi' || type === 'sata' || type === 'ide' || type === 'fdc') && !busesLeft.has(type === 'fdc' ? 'fdc' : type));
    if (drop) dropped.push(c);
    else dropAddress(c);
  }
  removeElements(dropped);
}

function convertChannelsAndConsoles(devs: Element, opts: XenPvOptions): void {
  for (const ch of childElements(devs, 'channel')) {
    const t = firstChild(ch, 'target');
    if (t && t.getAttribute('type') === 'virtio') {
      t.setAttribute('type', 'xen');
      t.removeAttribute('state');
    }
    dropAddress(ch);
  }
  for (const con of childElements(devs, 'console')) {
    const t = firstChild(con, 'target');
    if (t && (t.getAttribute('type') === 'virtio' || (!opts.hvm && (t.getAttribute('type') ?? 'serial') === 'serial'))) t.setAttribute('type', 'xen');
  }
  for (const s of childElements(devs, 'serial')) {
    const t = firstChild(s, 'target');
    // isa-serial / pci-serial models are QEMU's device names.
    if (t) {
      t.removeAttribute('type');
      removeAll(t, 'model');
    }
    dropAddress(s);
  }
}

function convertInputs(devs: Element, opts: XenPvOptions): void {
  const dropped: Element[] = [];
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
      if (seen.has(k)) dropped.push(inp);
      seen.add(k);
    }
    removeElements(dropped);
    return;
  }
  // HVM: Xen's device model has PS/2 mouse and keyboard always, and a USB tablet or mouse on request.
  for (const inp of childElements(devs, 'input')) {
    const bus = inp.getAttribute('bus') ?? 'ps2';
    const type = inp.getAttribute('type') ?? '';
    if (bus === 'usb' && (type === 'tablet' || type === 'mouse')) dropAddress(inp);
    else if (bus !== 'ps2') dropped.push(inp);
  }
  removeElements(dropped);
}

function convertVideo(devs: Element, opts: XenPvOptions): void {
  const videos = childElements(devs, 'video');
  // libxl drives one display adapter.
  removeElements(videos.slice(1));
  const v = videos[0];
  if (!v) return;
  dropAddress(v);
  const model = firstChild(v, 'model');
  if (!model) return;
  model.removeAttribute('primary');
  removeElements(childElements(model));
  const type = model.getAttribute('type') ?? '';
  if (opts.hvm && !HVM_VIDEO_MODELS.has(type)) {
    model.setAttribute('type', 'vga');
    for (const a of ['ram', 'vgamem', 'vram64']) model.removeAttribute(a);
    model.setAttribute('vram', '16384');
    model.setAttribute('heads', '1');
  }
}

function convertBalloon(doc: Document, devs: Element): void {
  const balloons = childElements(devs, 'memballoon');
  removeElements(balloons.slice(1));
  const b = balloons[0];
  if (!b) return;
  b.setAttribute('model', 'xen');
  for (const a of ['autodeflate', 'freePageReporting']) b.removeAttribute(a);
  removeElements(childElements(b));
  // An element left with only whitespace inside is written empty again.
  if (!childElements(b).length) while (b.firstChild) b.removeChild(b.firstChild);
  void doc;
}
