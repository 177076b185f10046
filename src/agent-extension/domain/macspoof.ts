// macspoof (vdsm): let a guest send frames with another MAC (nested virtualization, appliances)
// by dropping the NIC's no-mac-spoofing nwfilter reference. Other filters (clean-traffic and the
// like) are left alone: they do more than MAC checks and dropping them is not what was asked.
import { childElements, nicsFor, removeElement, type Document } from './xml.js';

/** Filter names that only stop MAC spoofing: libvirt's own and vdsm's wrapper of it. */
export const MAC_SPOOF_FILTERS = new Set(['no-mac-spoofing', 'vdsm-no-mac-spoofing']);

/** `macs`: lower-case MACs, or ['*'] for every NIC. */
export function applyMacspoof(doc: Document, macs: readonly string[]): void {
  for (const { el } of nicsFor(doc, macs, 'macspoof')) {
    for (const f of childElements(el, 'filterref')) {
      if (MAC_SPOOF_FILTERS.has(f.getAttribute('filter') ?? '')) removeElement(f);
    }
  }
}
