// What the network code needs from a call: the host (ip/ovs-vsctl in the configured namespace),
// the lock table shared with every other call, the config and a logger.
import type { CallContext } from '../../rpc/catalogue.js';
import type { Config } from '../../config/schema.js';
import type { KeyedLock } from '../../shared/keyed-lock.js';
import type { Logger } from '../../shared/log.js';
import { netHost, type NetHost } from './netns.js';

export interface NetContext {
  host: NetHost;
  locks: KeyedLock;
  config: Config;
  log: Logger;
}

export function netContext(ctx: Pick<CallContext, 'config' | 'run' | 'locks' | 'log'>): NetContext {
  return { host: netHost(ctx.config, ctx.run), locks: ctx.locks, config: ctx.config, log: ctx.log };
}

/** Lock key for one interface/bridge name; every change to it holds this. */
export const linkKey = (name: string) => `net:link:${name}`;
