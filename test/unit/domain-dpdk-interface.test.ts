// CloudStack's DPDK extraconfig sections named dpdk-interface-TAG ("to be included on VMs interfaces
// definition"): merged into every <interface type='vhostuser'> after the dpdk tweak made them, each
// element replacing the child of that name or added; their own allow-list (domain.dpdk_interface_allow,
// default model driver mtu tune rom link: not source, the dpdk tweak's socket); a clear fault when
// there is no vhost-user NIC.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tweakDomainXml } from '../../src/agent-extension/domain/tweaks.js';
import { childElements, devices, firstChild, parseDomainXml } from '../../src/agent-extension/domain/xml.js';
import { defaultConfig } from '../../src/config/load.js';
import { throwsFault } from '../fixtures/faults.js';

const KVM = readFileSync(join(import.meta.dirname, '../golden/domain/kvm-input.xml'), 'utf8');
const VHOST = readFileSync(join(import.meta.dirname, '../golden/domain/corpus/cs-vhostuser.xml'), 'utf8');
const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
const DPDK = { '02:00:4c:5e:00:01': { socket: '/var/run/openvswitch/csdpdk-3', mode: 'client' } };

const fault = throwsFault;

const nics = (xml: string) => childElements(devices(parseDomainXml(xml))!, 'interface');

test('dpdk-interface sections go into the vhost-user NICs only: an element replaces the one of that name, or is added', () => {
  const cfg = defaultConfig();
  const ec = enc("dpdk-interface-queues:\n<driver queues='4' rx_queue_size='1024'/>\n\ndpdk-interface-model:\n<model type='virtio-non-transitional'/>\n\ndpdk-interface-mtu:\n<mtu size='9000'/>");
  const out = tweakDomainXml(KVM, { dpdk: DPDK, extraconfig: ec }, cfg);
  const [vhost, ...others] = nics(out);
  assert.equal(vhost.getAttribute('type'), 'vhostuser');
  assert.deepEqual(childElements(vhost, 'driver').map((d) => [d.getAttribute('queues'), d.getAttribute('rx_queue_size')]), [['4', '1024']]);
  assert.deepEqual(childElements(vhost, 'model').map((m) => m.getAttribute('type')), ['virtio-non-transitional']);
  assert.equal(firstChild(vhost, 'mtu')!.getAttribute('size'), '9000');
  assert.equal(firstChild(vhost, 'source')!.getAttribute('path'), '/var/run/openvswitch/csdpdk-3', 'the socket stays the dpdk tweak\'s');
  const before = nics(KVM).slice(1);
  assert.equal(others.length, before.length);
  for (const n of others) assert.equal(firstChild(n, 'mtu'), undefined);
  // A domain that already has vhost-user NICs (CloudStack wrote them) takes the sections without the dpdk tweak.
  const v = nics(tweakDomainXml(VHOST, { extraconfig: enc("dpdk-interface-q:\n<driver queues='2'/>") }, cfg));
  assert.deepEqual(v.map((n) => [n.getAttribute('type'), firstChild(n, 'driver')?.getAttribute('queues') ?? null]), [['vhostuser', '2'], ['bridge', null]]);
});

test('source is refused unless the admin allows it (the dpdk tweak sets the socket); the allow-list is domain.dpdk_interface_allow', () => {
  const src = enc("dpdk-interface-sock:\n<source type='unix' path='/tmp/evil' mode='server'/>");
  fault(() => tweakDomainXml(KVM, { dpdk: DPDK, extraconfig: src }, defaultConfig()), 'INVALID_PARAMS', /section "dpdk-interface-sock": <source> is not in domain\.dpdk_interface_allow \(model, driver, mtu, tune, rom, link\)/);
  const cfg = defaultConfig();
  cfg.domain.dpdk_interface_allow = [...cfg.domain.dpdk_interface_allow, 'source'];
  const [vhost] = nics(tweakDomainXml(KVM, { dpdk: DPDK, extraconfig: src }, cfg));
  assert.deepEqual(childElements(vhost, 'source').map((s) => s.getAttribute('path')), ['/tmp/evil']);
  // The domain allow-list does not let interface sections through, nor the other way round.
  fault(() => tweakDomainXml(KVM, { dpdk: DPDK, extraconfig: enc('dpdk-interface-x:\n<cpu/>') }, defaultConfig()), 'INVALID_PARAMS', /<cpu> is not in domain\.dpdk_interface_allow/);
  fault(() => tweakDomainXml(KVM, { extraconfig: enc("<mtu size='9000'/>") }, defaultConfig()), 'INVALID_PARAMS', /<mtu> is not in domain\.extraconfig_allow/);
});

test('no vhost-user NIC to apply them to: NOT_FOUND naming the section; nothing returned', () => {
  fault(() => tweakDomainXml(KVM, { macspoof: true, extraconfig: enc("dpdk-interface-queues:\n<driver queues='4'/>") }, defaultConfig()), 'NOT_FOUND', /extraconfig section "dpdk-interface-queues": no <interface type='vhostuser'> in domain "i-2-10-VM" to apply it to/);
});

test('applying the same dpdk + dpdk-interface tweaks twice gives the same XML', () => {
  const tw = { dpdk: DPDK, extraconfig: enc("dpdk-interface-queues:\n<driver queues='4'/>") };
  const once = tweakDomainXml(KVM, tw, defaultConfig());
  assert.equal(tweakDomainXml(once, tw, defaultConfig()), once);
});
