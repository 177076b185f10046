// network_gc: remove the VLAN bridges brick made that nothing uses any more (CloudStack never tears
// them down). Only bridges marked as brick's (alias brick:vlan-bridge / external_ids:brick-owner=
// vlan-bridge) are candidates, and only when their only port is brick's own VLAN device: a guest
// port (vif*, vnet*, tap*) or any port someone else added keeps the bridge. A person's bridge is
// never touched.
import { planLinuxRemoveVlanBridge, planOvsRemoveVlanBridge } from './vlan-bridge.js';
import { planRemoveVxlanBridge } from '../overlay/vxlan-bridge.js';
import type { LinuxState } from '../host/link-state.js';
import { fakeBridges, type OvsState } from '../host/ovs.js';
import type { OvsCommand, Step } from '../host/plan.js';

export interface GcPlan {
  /** Bridges to remove. */
  remove: string[];
  /** Lock keys' subjects: the bridges and their VLAN devices (Open vSwitch: the fake bridges' parents). */
  names: string[];
  /** Open vSwitch: each fake bridge's parent. */
  parents?: Record<string, string>;
  steps: Step[];
  cmds: OvsCommand[];
}

function removable<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined; // in use or not brick's: GC leaves it
  }
}

export function planLinuxGc(s: LinuxState): GcPlan {
  const plan: GcPlan = { remove: [], names: [], steps: [], cmds: [] };
  // VXLAN bridges (overlay, brick:vxlan-bridge) are collected the same way.
  const candidates = [...s.links.values()].filter((l) => l.kind === 'bridge' && (l.owner === 'vlan-bridge' || l.owner === 'vxlan-bridge')).sort((a, b) => a.name.localeCompare(b.name));
  for (const br of candidates) {
    const r = removable(() => (br.owner === 'vxlan-bridge' ? planRemoveVxlanBridge(s, br.name) : planLinuxRemoveVlanBridge(s, br.name)));
    if (!r?.exists) continue;
    plan.remove.push(br.name);
    plan.names.push(br.name, ...[...s.links.values()].filter((l) => l.master === br.name).map((l) => l.name));
    plan.steps.push(...r.steps);
  }
  return plan;
}

export function planOvsGc(s: OvsState): GcPlan {
  const plan: GcPlan = { remove: [], names: [], steps: [], cmds: [], parents: {} };
  for (const fb of fakeBridges(s).sort((a, b) => a.name.localeCompare(b.name))) {
    if (fb.owner !== 'vlan-bridge') continue;
    const r = removable(() => planOvsRemoveVlanBridge(s, fb.name));
    if (!r?.exists) continue;
    plan.remove.push(fb.name);
    plan.names.push(fb.name, fb.parent);
    plan.parents![fb.name] = fb.parent;
    plan.cmds.push(...r.cmds);
  }
  return plan;
}
