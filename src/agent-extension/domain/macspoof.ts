// macspoof (vdsm): let a guest send frames with another MAC (nested virtualization, appliances)
// by dropping the NIC's no-mac-spoofing nwfilter reference. Other filters (clean-traffic and the
// like) are left alone: they do more than MAC checks and dropping them is not what was asked.
import { childElements, nicsFor, removeElements, type Document } from './xml.js';

/** Filter names that only stop MAC spoofing: libvirt's own and vdsm's wrapper of it. */
export const MAC_SPOOF_FILTERS = new Set(['no-mac-spoofing', 'vdsm-no-mac-spoofing']);

/** `macs`: lower-case MACs, or ['*'] for every NIC. */
export function applyMacspoof(doc: Document, macs: readonly string[]): void {
  removeElements(nicsFor(doc, macs, 'macspoof').flatMap(({ el }) => childElements(el, 'filterref').filter((f) => MAC_SPOOF_FILTERS.has(f.getAttribute('filter') ?? ''))));
}
