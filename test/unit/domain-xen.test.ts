// xen_pv's conversions, one by one, on the corpus (test/golden/domain/corpus); that libxl accepts the
// results is test/host/xen-libxl.test.ts. Here: what each conversion keeps (channel names and sockets,
// MACs, disk sources) and what it refuses (naming the element, changing nothing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tweakDomainXml } from '../../src/agent-extension/domain/tweaks.js';
import { childElements, devices, firstChild, parseDomainXml, root, type Element } from '../../src/agent-extension/domain/xml.js';
import { defaultConfig } from '../../src/config/load.js';
import { throwsFault } from '../fixtures/faults.js';

const corpus = (f: string) => readFileSync(join(import.meta.dirname, '../golden/domain/corpus', f), 'utf8');
const cfg = defaultConfig();
const PV = { xen_pv: true };
const HVM = { xen_pv: { hvm: true } };

function convert(f: string, tweaks: Record<string, unknown>) {
  const doc = parseDomainXml(tweakDomainXml(corpus(f), tweaks, cfg));
  const devs = devices(doc)!;
  return { doc, devs, all: (name: string) => childElements(devs, name) };
}

const fault = throwsFault;

test('virtio channels become Xen channels with the same name and socket (the system VM patch channel and the guest agent); virtio-serial controllers go', () => {
  for (const t of [PV, HVM]) {
    const { all } = convert('cs-ssvm.xml', t);
    const chans = all('channel').map((c) => ({
      type: c.getAttribute('type'),
      path: firstChild(c, 'source')?.getAttribute('path'),
      mode: firstChild(c, 'source')?.getAttribute('mode'),
      target: firstChild(c, 'target')?.getAttribute('type'),
      name: firstChild(c, 'target')?.getAttribute('name'),
    }));
    assert.deepEqual(chans, [
      { type: 'unix', path: '/var/lib/libvirt/qemu/s-1-VM.agent', mode: 'bind', target: 'xen', name: 's-1-VM.vport' },
      { type: 'unix', path: '/var/lib/libvirt/qemu/s-1-VM.org.qemu.guest_agent.0', mode: 'bind', target: 'xen', name: 'org.qemu.guest_agent.0' },
    ]);
  }
  const { all } = convert('lv-channels-consoles.xml', PV);
  assert.deepEqual(all('controller').filter((c) => c.getAttribute('type') === 'virtio-serial'), []);
  assert.deepEqual(all('channel').map((c) => [c.getAttribute('type'), firstChild(c, 'target')?.getAttribute('type'), firstChild(c, 'target')?.getAttribute('name'), firstChild(c, 'target')?.hasAttribute('state'), firstChild(c, 'address')]), [
    ['unix', 'xen', 'org.qemu.guest_agent.0', false, undefined],
    ['pty', 'xen', 'org.linux-kvm.port.1', false, undefined],
  ]);
});

test('NIC models: every NIC is netfront in PV; in HVM e1000 and rtl8139 stay, the rest become netfront; MACs and bridges kept', () => {
  const macsOf = (nics: Element[]) => nics.map((n) => firstChild(n, 'mac')?.getAttribute('address'));
  const input = parseDomainXml(corpus('lv-nic-models.xml'));
  const pv = convert('lv-nic-models.xml', PV).all('interface');
  assert.deepEqual(macsOf(pv), macsOf(childElements(devices(input)!, 'interface')));
  assert.deepEqual(pv.map((n) => firstChild(n, 'model')?.getAttribute('type')), Array(11).fill('netfront'));
  assert.equal(pv.filter((n) => firstChild(n, 'driver')).length, 0, 'virtio-net <driver> settings go');
  const hvm = convert('lv-nic-models.xml', HVM).all('interface');
  assert.deepEqual(hvm.map((n) => firstChild(n, 'model')?.getAttribute('type')), [
    'netfront', 'e1000', 'netfront', 'rtl8139', 'netfront', 'netfront', 'netfront', 'netfront', 'netfront', 'netfront', 'netfront',
  ]);
  const user = convert('cs-user-multi.xml', HVM).all('interface');
  assert.deepEqual(user.map((n) => firstChild(n, 'source')?.getAttribute('bridge')), ['brbond0-1050', 'brbond0-1051', 'brbond0-1052']);
});

test("balloon: model='none' (vm.memballoon.disable) and virtio become xen; autodeflate, freePageReporting and stats go", () => {
  for (const t of [PV, HVM]) {
    const b = convert('cs-vrouter.xml', t).all('memballoon');
    assert.deepEqual(b.map((x) => [x.getAttribute('model'), x.attributes.length, childElements(x).length]), [['xen', 1, 0]]);
    const u = convert('cs-user-multi.xml', t).all('memballoon');
    assert.deepEqual(u.map((x) => [x.getAttribute('model'), x.hasAttribute('autodeflate'), x.hasAttribute('freePageReporting'), childElements(x).length]), [['xen', false, false, 0]]);
  }
});

test('timers: KVM clocks go; tsc stays, hpet stays in HVM only; the clock offset is kept', () => {
  const names = (t: Record<string, unknown>) => {
    const { doc } = convert('lv-timers.xml', t);
    const clock = firstChild(root(doc), 'clock')!;
    return { offset: clock.getAttribute('offset'), adjustment: clock.getAttribute('adjustment'), timers: childElements(clock, 'timer').map((x) => x.getAttribute('name')) };
  };
  assert.deepEqual(names(PV), { offset: 'variable', adjustment: '123456', timers: ['tsc'] });
  assert.deepEqual(names(HVM), { offset: 'variable', adjustment: '123456', timers: ['hpet', 'tsc'] });
});

test('USB: ICH9/PIIX/xHCI controllers go, the USB tablet stays in HVM; QXL and virtio video become one vga adapter in HVM', () => {
  const { all } = convert('lv-usb-video.xml', HVM);
  assert.deepEqual(all('controller').map((c) => c.getAttribute('model')), []);
  assert.deepEqual(all('input').map((i) => `${i.getAttribute('type')}/${i.getAttribute('bus')}`), ['tablet/usb']);
  assert.deepEqual(all('video').map((v) => firstChild(v, 'model')!.getAttribute('type')), ['vga']);
  const win = convert('cs-windows.xml', HVM);
  assert.deepEqual(win.all('controller').map((c) => `${c.getAttribute('type')}/${c.getAttribute('model') ?? ''}`), ['sata/']);
  assert.deepEqual(win.all('disk').map((d) => `${firstChild(d, 'target')!.getAttribute('bus')}/${firstChild(d, 'target')!.getAttribute('dev')}`), ['sata/sda', 'sata/sdb']);
});

test('disks: every bus goes on the Xen bus in PV (sources kept), an empty floppy goes, empty cdroms have no <source>', () => {
  const { all } = convert('lv-disk-buses.xml', PV);
  assert.deepEqual(all('disk').map((d) => `${firstChild(d, 'target')!.getAttribute('bus')}/${firstChild(d, 'target')!.getAttribute('dev')}/${d.getAttribute('device')}`), [
    'xen/xvda/disk', 'xen/xvdb/disk', 'xen/xvdc/disk', 'xen/xvde/disk', 'xen/xvdf/disk', 'xen/xvdd/disk', 'xen/xvdg/disk', 'xen/xvdh/cdrom',
  ]);
  assert.deepEqual(all('disk').map((d) => firstChild(d, 'source')!.getAttribute('file') ?? firstChild(d, 'source')!.getAttribute('dev')), childElements(devices(parseDomainXml(corpus('lv-disk-buses.xml')))!, 'disk').map((d) => firstChild(d, 'source')!.getAttribute('file') ?? firstChild(d, 'source')!.getAttribute('dev')));
  const cd = convert('lv-cdrom-floppy-empty.xml', PV).all('disk');
  assert.deepEqual(cd.map((d) => [d.getAttribute('device'), firstChild(d, 'source')?.getAttribute('file') ?? null]), [
    ['disk', '/var/lib/libvirt/images/cdrom-empty.img'], ['cdrom', null], ['cdrom', null], ['cdrom', null],
  ]);
});

test('refused with UNSUPPORTED naming the element: LUKS (both spellings), <qemu:commandline>, vhost-user and macvtap NICs, guestfwd, a timezone clock', () => {
  for (const t of [PV, HVM]) {
    fault(() => tweakDomainXml(corpus('cs-luks.xml'), t, cfg), 'UNSUPPORTED', /data-102-encrypted <encryption format='luks'>.*ciphertext/);
    fault(() => tweakDomainXml(corpus('cs-luks-old.xml'), t, cfg), 'UNSUPPORTED', /luks-data <encryption format='luks'>/);
    fault(() => tweakDomainXml(corpus('cs-qemu-cmdline.xml'), t, cfg), 'UNSUPPORTED', /<qemu:commandline> in domain "i-3-77-VM"/);
    fault(() => tweakDomainXml(corpus('cs-vhostuser.xml'), t, cfg), 'UNSUPPORTED', /02:00:90:00:00:01 <interface type='vhostuser'>.*QEMU\/KVM/);
    fault(() => tweakDomainXml(corpus('cs-direct-nic.xml'), t, cfg), 'UNSUPPORTED', /<interface type='direct'>/);
    fault(() => tweakDomainXml(corpus('cs-guestfwd.xml'), t, cfg), 'UNSUPPORTED', /guestfwd/);
    fault(() => tweakDomainXml(corpus('lv-minimal.xml').replace('</os>', "</os><clock offset='timezone' timezone='Europe/Paris'/>"), t, cfg), 'UNSUPPORTED', /<clock offset='timezone'>/);
  }
});

test("extnet: Xen's vif-bridge script goes with the bridge; any other script is refused (libvirt runs none on a network NIC)", () => {
  const out = parseDomainXml(tweakDomainXml(corpus('cs-ovm3-migrated.xml'), { xen_pv: { hvm: true }, extnet: { '*': 'xen-guest-200' } }, cfg));
  const nic = childElements(devices(out)!, 'interface')[0];
  assert.equal(nic.getAttribute('type'), 'network');
  assert.equal(firstChild(nic, 'source')!.getAttribute('network'), 'xen-guest-200');
  assert.equal(firstChild(nic, 'script'), undefined);
  const custom = corpus('cs-ovm3-migrated.xml').replace("<script path='vif-bridge'/>", "<script path='/etc/xen/scripts/vif-qos'/>");
  fault(() => tweakDomainXml(custom, { xen_pv: true, extnet: { '*': 'xen-guest-200' } }, cfg), 'UNSUPPORTED', /<script path='\/etc\/xen\/scripts\/vif-qos'>.*never run/);
});

test('a domain xen_pv already converted is converted again to the same XML (idempotent), PV and HVM', () => {
  for (const f of ['cs-ssvm.xml', 'cs-user-multi.xml', 'lv-nic-models.xml', 'cs-windows.xml', 'lv-usb-video.xml']) {
    for (const t of [PV, HVM]) {
      const once = tweakDomainXml(corpus(f), t, cfg);
      assert.equal(tweakDomainXml(once, t, cfg), once, `${f} ${JSON.stringify(t)}`);
    }
  }
});

test('USB redirection (<redirdev>) is refused naming it: libxl refuses it once the KVM USB controller is gone (before: XML libxl refused)', () => {
  // libxl-check on the output before: "PARSE-REJECTED: unsupported configuration: cannot add
  // redirected USB device: USB is disabled for this domain", in PV and in HVM.
  const xml = corpus('cs-ssvm.xml').replace('</devices>', "<controller type='usb' model='qemu-xhci'/><redirdev bus='usb' type='spicevmc'/></devices>");
  for (const t of [PV, HVM]) fault(() => tweakDomainXml(xml, t, cfg), 'UNSUPPORTED', /<redirdev bus='usb' type='spicevmc'>.*USB redirection/);
});
