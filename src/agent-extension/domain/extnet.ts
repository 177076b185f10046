// extnet (vdsm): attach a NIC to a libvirt network instead of the bridge CloudStack chose, e.g. a
// network that fronts an Open vSwitch bridge (<forward mode='bridge'/><virtualport type='openvswitch'/>).
// The NIC becomes type='network' with <source network='NAME'/>; the bridge attribute goes, other
// <source> attributes (portgroup) and the rest of the NIC stay.
// A <script> cannot stay: libvirt runs scripts only for bridge and ethernet NICs (libxl and QEMU
// refuse a network NIC with one). Xen's own bridge scripts (vif-bridge, vif-openvswitch), which only
// plug the vif into the bridge the network now names, are removed; any other script does something
// the network would silently skip, so the NIC is refused with UNSUPPORTED naming the script.
import { BrickError } from '../../shared/errors.js';
import { firstChild, createElement, insertElement, nicsFor, removeElement, type Document } from './xml.js';

/** Xen's stock vif scripts: they attach the vif to the bridge, which the network does instead. */
const BRIDGE_ONLY_SCRIPTS = new Set(['vif-bridge', 'vif-openvswitch']);

/** libvirt network names as vdsm's extnet accepts them. */
export const NETWORK_NAME_RE = /^[A-Za-z0-9_.-][A-Za-z0-9_. -]{0,99}$/;

export function applyExtnet(doc: Document, map: ReadonlyMap<string, string>): void {
  const plan = nicsFor(doc, [...map.keys()], 'extnet');
  for (const { el, mac, key } of plan) {
    const type = el.getAttribute('type');
    if (type !== 'bridge' && type !== 'network') {
      throw new BrickError('CONFLICT', `extnet: NIC ${mac || key} is type='${type}'; only bridge or network NICs can be moved to a libvirt network`);
    }
    const script = firstChild(el, 'script')?.getAttribute('path');
    if (script !== undefined && script !== null && !BRIDGE_ONLY_SCRIPTS.has(script.split('/').pop() ?? '')) {
      throw new BrickError(
        'UNSUPPORTED',
        `extnet: NIC ${mac || key} has <script path='${script}'>; libvirt runs a script only for bridge and ethernet NICs, so on network '${map.get(key)}' it would never run. Remove the script or leave this NIC on its bridge`,
      );
    }
  }
  for (const { el, key } of plan) {
    el.setAttribute('type', 'network');
    let src = firstChild(el, 'source');
    if (!src) src = insertElement(el, createElement(doc, 'source'), firstChild(el, 'mac')?.nextSibling ?? null);
    src.removeAttribute('bridge');
    src.setAttribute('network', map.get(key)!);
    const script = firstChild(el, 'script');
    if (script) removeElement(script);
  }
}
