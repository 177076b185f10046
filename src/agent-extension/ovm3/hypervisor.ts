// What kind of host this is and how to ask about its domains: libvirt (virsh) where it runs, xl on
// OVM/Xen without libvirt. Probes are cheap file checks; the choice itself is a pure function.
import { existsSync } from 'node:fs';
import type { CallContext } from '../../rpc/catalogue.js';

export type Hypervisor = 'xen' | 'kvm' | 'none';

export interface HostKind {
  xen: boolean;
  kvm: boolean;
  libvirtSocket: boolean;
}

export const PROBE_PATHS = {
  xen: '/proc/xen',
  kvm: '/dev/kvm',
  libvirtSockets: ['/run/libvirt/libvirt-sock', '/var/run/libvirt/libvirt-sock', '/run/libvirt/virtqemud-sock', '/run/libvirt/virtxend-sock'],
};

export function probeHostKind(): HostKind {
  return {
    xen: existsSync(PROBE_PATHS.xen),
    kvm: existsSync(PROBE_PATHS.kvm),
    libvirtSocket: PROBE_PATHS.libvirtSockets.some((p) => existsSync(p)),
  };
}

export function hypervisorOf(k: HostKind): Hypervisor {
  return k.xen ? 'xen' : k.kvm ? 'kvm' : 'none';
}

export type DomainTool = { tool: 'virsh'; uri: string } | { tool: 'xl' };

/** virsh when a libvirt URI is configured or libvirt runs; xl on Xen without libvirt (pure). */
export function chooseDomainTool(k: HostKind, libvirtUri: string): DomainTool {
  if (libvirtUri) return { tool: 'virsh', uri: libvirtUri };
  if (k.xen && !k.libvirtSocket) return { tool: 'xl' };
  return { tool: 'virsh', uri: k.xen ? 'xen:///system' : 'qemu:///system' };
}

export function domainTool(ctx: CallContext, kind: HostKind = probeHostKind()): DomainTool {
  return chooseDomainTool(kind, ctx.config.domain.libvirt_uri);
}
