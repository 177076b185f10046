// ovs_control_interface(dev, cidr): the module's control0 fix-up, delegated to the network layer's
// setupControl (bridge up with ARP on, the address, the only route for the link-local network,
// NOZEROCONF, no stale ifcfg). The module replied True; so does brick, after setupControl succeeded.
import { setupControl } from '../../network/bridge/control0.js';
import type { CallContext } from '../../rpc/catalogue.js';

export async function ovsControlInterface([dev, cidr]: [string, string], ctx: CallContext): Promise<true> {
  const report = await setupControl(ctx, dev, cidr);
  ctx.log.info({ dev, cidr, changed: report.changed }, 'ovs_control_interface');
  return true;
}
