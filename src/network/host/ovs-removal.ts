// An Open vSwitch removal (del-br) that Open vSwitch itself holds to what brick judged: the port
// sets brick read are the transaction's condition (ovsPortsGuard), not only brick's locks, which
// other programs adding ports do not take. Shared by network_remove_bridge, network_remove_vlan_bridge,
// network_gc and network_remove_overlay_bridge.
import { BrickError, isBrickError } from '../../shared/errors.js';
import type { NetContext } from './context.js';
import { ovsPortsGuard, portSetChanges, type OvsState } from './ovs.js';
import { applyOvs, type OvsCommand } from './plan.js';

/** What the guard and the re-read look at: the bridges (their ports, as names and uuids) and the port names. */
type OvsView = Pick<OvsState, 'bridges'> & { ports: { has(name: string): boolean } };

/** How long a guarded removal's ovs-vsctl waits for the ports brick judged before it gives up (capped by the command deadline). */
export const OVS_GUARD_WAIT_S = 5;

/** An Open vSwitch removal planned from one read. */
export interface OvsRemoval {
  /** The del-br commands; none: nothing to do. */
  cmds: OvsCommand[];
  /** The bridges it deletes. */
  deletes: string[];
  /** The bridges whose port sets the plan judged (a fake bridge's: its parent's, where its ports are). */
  judged: string[];
}

/**
 * Apply an Open vSwitch removal so that Open vSwitch itself holds it to what brick judged. brick's
 * locks hold brick's own callers only: a port another program (libvirt, the vendor agent) added
 * between brick's read and its del-br was deleted with the bridge while a guest used it, and the call
 * said it succeeded. Now the del-br runs in the transaction of ovsPortsGuard: it commits only while
 * the judged bridges have exactly the ports read. When ovs-vsctl gives up waiting for that (its
 * --timeout, OVS_GUARD_WAIT_S), brick reads again: the bridges gone means its transaction committed
 * (ovs-vswitchd was slow to apply it); otherwise the new state is judged once more (a guest port
 * now there: CONFLICT naming it, nothing changed) and, when still removable, applied once more
 * under a guard on the new state. `plan` throws the refusals; `read` reads the state again.
 */
export async function removeOvsGuarded<S extends OvsView, P extends OvsRemoval>(
  nc: NetContext,
  s: S,
  read: () => Promise<S>,
  plan: (s: S) => P,
  subject: string,
): Promise<{ plan: P; changes: string[] }> {
  let p = plan(s);
  for (let attempt = 0; ; attempt++) {
    if (!p.cmds.length) return { plan: p, changes: [] };
    try {
      return { plan: p, changes: await applyOvs(nc.host, p.cmds, { conditions: ovsPortsGuard(s, p.judged), timeoutS: OVS_GUARD_WAIT_S }) };
    } catch (e) {
      if (!(isBrickError(e) && e.detail?.vsctlTimeout)) throw e;
      const now = await read();
      if (p.deletes.every((b) => !now.bridges.has(b) && !now.ports.has(b))) {
        nc.host.changed.push(...p.cmds.map((c) => c.what));
        return { plan: p, changes: p.cmds.map((c) => c.what) };
      }
      const moved = portSetChanges(s, now, p.judged);
      const meanwhile = `changed while brick was removing ${subject}: ${moved.length ? moved.join(', ') : 'none of the ports brick judged'}`;
      let next: P;
      try {
        next = plan(now);
      } catch (refused) {
        if (isBrickError(refused) && refused.fault === 'CONFLICT') throw new BrickError('CONFLICT', `${refused.message} (${meanwhile}; nothing was changed)`);
        throw refused;
      }
      if (attempt >= 1)
        throw moved.length
          ? new BrickError('CONFLICT', `the ports of ${p.judged.join(', ')} kept changing while brick removed ${subject} (${moved.join(', ')}); nothing was changed; try again`)
          : new BrickError('TIMEOUT', `${e.message}; ${subject} is still there with the ports brick judged: nothing was changed`, e.detail);
      nc.log.info({ bridge: subject, changed: moved }, `ports ${meanwhile}; judged again`);
      s = now;
      p = next;
    }
  }
}
