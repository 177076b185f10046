// domain_tweak and domain_define: the libvirt domain XML tweaks (see tweaks.ts for the fixed order).
import type { CallContext } from '../../rpc/catalogue.js';
import { method, optional, orNil, param } from '../../rpc/params.js';
import { Str, Struct } from '../../rpc/formats.js';
import { tweakDomain } from './tweaks.js';
import { defineDomain, libvirtUri } from './define.js';
import { parseDomainXml, domainName } from './xml.js';

const TWEAKS_HELP =
  'tweaks is a struct (empty for none); its keys are applied in this fixed order whatever order they are sent in: ' +
  '1 xen_pv (true or {hvm: bool}: a domain libxl starts, or UNSUPPORTED naming the element: virtio disks (every bus in PV) → bus xen with xvd* names, ' +
  'NICs → netfront (HVM keeps e1000/rtl8139), virtio channels → Xen channels with the same name and socket, balloon → xen, KVM timers/USB controllers/devices dropped, ' +
  'empty cdrom made a real empty cdrom; qcow2, LUKS, <qemu:commandline>, <redirdev> and vhostuser/direct NICs refused; PV boot with pygrub unless hvm), ' +
  '2 extnet ({MAC: network}: NIC → <source network>), 3 macspoof (true or [MAC]: drop no-mac-spoofing filterrefs), ' +
  '4 extraconfig (CloudStack\'s URL-encoded sections; every top-level element must be in domain.extraconfig_allow and replaces or adds that element), ' +
  '5 dpdk ({MAC: {socket, mode}} from dpdk_add_port: NIC → vhostuser, plus shared hugepages and NUMA memAccess=shared), ' +
  '6 qemu_cmdline ([arg]: <qemu:commandline>, KVM only), 7 hooks (true: vdsm-style hooks: <domain.hooks_dir>/before_device_create once per NIC in document order with the NIC XML in $_hook_domxml ' +
  'and custom + that NIC\'s nic_custom {MAC: {name: string}} as environment variables, the result replacing the NIC in place; then before_vm_start with the domain XML; ' +
  'exit 0 ok, any other code fails the start after the chain, 2 also stops it; Python hooks can import hooking (vdsm\'s API)). ' +
  'NICs are named by MAC; "*" is every NIC.';

const FAULTS =
  'Faults: BAD_XML (not well-formed, a DOCTYPE, or not a <domain>), INVALID_PARAMS (unknown tweak key or bad value, named), NOT_FOUND (no NIC with that MAC), ' +
  'UNSUPPORTED (what xen_pv cannot convert: qcow2, LUKS, <qemu:commandline>, vhostuser NICs…; dpdk or qemu_cmdline on a Xen domain; a custom <script> on an extnet NIC), CONFLICT, HOOK_FAILED (a hook exited non-zero, could not be executed, timed out or wrote garbage), TOO_LARGE (the XML is over 1 MiB, 16384 elements or 32768 attributes, refused before it is parsed)';

function env(ctx: CallContext) {
  // The call's signal: a stopped call's hook is killed and nothing runs after (no define).
  return { config: ctx.config, run: ctx.run, log: ctx.log, signal: ctx.signal };
}

const xmlParam = param('xml', Str, 'a libvirt domain XML document');

export const methods = [
  method({
    name: 'domain_tweak',
    params: [xmlParam, optional('tweaks', orNil(Struct), 'which tweaks to apply; see the help text')],
    returns: 'string',
    help:
      'domain_tweak(xml, tweaks) → string: the domain XML with the tweaks applied; nothing is defined in libvirt. ' +
      'Everything the tweaks do not touch (device order, comments, namespaces, metadata) is kept. ' +
      TWEAKS_HELP + ' ' + FAULTS + '.',
    handler: async ([xml, tweaks], ctx) => (await tweakDomain(xml, tweaks, env(ctx))).xml,
  }),
  method({
    name: 'domain_define',
    params: [xmlParam, optional('tweaks', orNil(Struct), 'which tweaks to apply first; see domain_tweak')],
    returns: 'struct',
    help:
      'domain_define(xml, tweaks) → struct {name, uuid, xml}: applies the tweaks as domain_tweak does, then defines (does not start) the domain ' +
      'through libvirt at domain.libvirt_uri (default xen:///system on Xen, qemu:///system otherwise) with virsh define --validate, ' +
      'and returns the XML libvirt stored (virsh dumpxml). Defining an existing domain again updates its definition. ' +
      TWEAKS_HELP + ' ' + FAULTS + ', COMMAND_FAILED (libvirt refused the XML; the message carries its error).',
    handler: async ([xml, tweaks], ctx) => {
      // Parsed once: the name for the lock, then the same tree tweaked (parsing is the costly part).
      const doc = parseDomainXml(xml);
      return ctx.locks.bound(ctx.signal).with(`domain:${domainName(doc)}`, async () => {
        const tweaked = await tweakDomain(doc, tweaks, env(ctx));
        const d = await defineDomain(tweaked.xml, {
          uri: libvirtUri(ctx.config.domain.libvirt_uri),
          run: ctx.run,
          timeoutMs: Math.max(1, Math.floor(Math.min(ctx.remainingMs(), 120_000))),
          signal: ctx.signal,
        });
        return { name: d.name, uuid: d.uuid, xml: d.xml };
      });
    },
  }),
];
