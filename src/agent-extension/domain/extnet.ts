// extnet (vdsm): attach a NIC to a libvirt network instead of the bridge CloudStack chose, e.g. a
// network that fronts an Open vSwitch bridge (<forward mode='bridge'/><virtualport type='openvswitch'/>).
// The NIC becomes type='network' with <source network='NAME'/>; the bridge attribute goes, other
// <source> attributes (portgroup) and the rest of the NIC stay.
import { BrickError } from '../../shared/errors.js';
import { firstChild, createElement, insertElement, nicsFor, type Document } from './xml.js';

/** libvirt network names as vdsm's extnet accepts them. */
export const NETWORK_NAME_RE = /^[A-Za-z0-9_.-][A-Za-z0-9_. -]{0,99}$/;

export function applyExtnet(doc: Document, map: ReadonlyMap<string, string>): void {
  const plan = nicsFor(doc, [...map.keys()], 'extnet');
  for (const { el, mac, key } of plan) {
    const type = el.getAttribute('type');
    if (type !== 'bridge' && type !== 'network') {
      throw new BrickError('CONFLICT', `extnet: NIC ${mac || key} is type='${type}'; only bridge or network NICs can be moved to a libvirt network`);
    }
  }
  for (const { el, key } of plan) {
    el.setAttribute('type', 'network');
    let src = firstChild(el, 'source');
    if (!src) src = insertElement(el, createElement(doc, 'source'), firstChild(el, 'mac')?.nextSibling ?? null);
    src.removeAttribute('bridge');
    src.setAttribute('network', map.get(key)!);
  }
}
