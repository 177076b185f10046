// What the network code needs from a call: the host (ip/ovs-vsctl in the configured namespace),
// the lock table shared with every other call, the config and a logger.
import type { CallContext, MethodDef } from '../../rpc/catalogue.js';
import { BrickError } from '../../shared/errors.js';
import type { XmlRpcStruct } from '../../rpc/values.js';
import { method, param } from '../../rpc/params.js';
import { IfName } from '../../rpc/formats.js';
import type { Config } from '../../config/schema.js';
import type { KeyedLock, LockTable } from '../../shared/keyed-lock.js';
import type { Logger } from '../../shared/log.js';
import { netHost, type NetHost } from './netns.js';

export interface NetContext {
  host: NetHost;
  /** The call's view of the lock table: a wait ends when the call is stopped. */
  locks: LockTable;
  /** The table itself, for work that outlives the call (a safe-apply rollback). */
  keyedLock: KeyedLock;
  config: Config;
  log: Logger;
}

type HostPart = Pick<CallContext, 'config' | 'run'> & Partial<Pick<CallContext, 'remainingMs' | 'signal'>>;
type CallPart = HostPart & Pick<CallContext, 'locks' | 'log'>;

/** What each call's applies changed and left in place, for a truthful fault when a call is stopped. */
const journals = new WeakMap<object, string[]>();
function journalOf(ctx: object): string[] {
  let j = journals.get(ctx);
  if (!j) journals.set(ctx, (j = []));
  return j;
}

/**
 * The host as one call sees it: every command it runs is bounded by the call's time and signal, and
 * what its applies change is written in the call's journal.
 */
export function callHost(ctx: HostPart): NetHost {
  return netHost(ctx.config, ctx.run, { remainingMs: ctx.remainingMs, signal: ctx.signal, changed: journalOf(ctx) });
}

/** The network view of one call: its host (callHost), its view of the lock table, config and logger. */
export function netContext(ctx: CallPart): NetContext {
  return { host: callHost(ctx), locks: ctx.locks.bound(ctx.signal), keyedLock: ctx.locks, config: ctx.config, log: ctx.log };
}

/**
 * A network method's handler, made truthful when its call is stopped (deadline, client gone): the
 * fault says what the call had changed and left in place, or that it changed nothing.
 */
export function truthfulWhenStopped(m: MethodDef): MethodDef {
  const handler = m.handler;
  return {
    ...m,
    handler: async (args, ctx) => {
      try {
        return await handler(args, ctx);
      } catch (e) {
        if (!ctx.signal?.aborted) throw e;
        const changed = journals.get(ctx) ?? [];
        const msg = e instanceof Error ? e.message : String(e);
        const said = /nothing was changed|whole or not at all/.test(msg);
        const tail = changed.length ? `; already changed by this call and left in place: ${changed.join('; ')}` : said ? '' : '; nothing was changed';
        throw new BrickError('TIMEOUT', `${m.name}: stopped (${ctx.signal.reason instanceof Error ? ctx.signal.reason.message : 'cancelled'}): ${msg}${tail}`, {
          changed,
        });
      }
    },
  };
}

/** Lock key for one interface/bridge name; every change to it holds this. */
export const linkKey = (name: string) => `net:link:${name}`;

/**
 * A network_remove_* method of one name argument: the name checked, the call's network view, the
 * reply {removed, changes}. `does` says what it removes and what it refuses; `faults` ends the help.
 */
export function removeMethod(
  name: string,
  what: { name: string; help: string },
  does: string,
  faults: string,
  remove: (nc: NetContext, name: string) => Promise<XmlRpcStruct>,
): MethodDef {
  return method({
    name,
    params: [param(what.name, IfName, what.help)],
    returns: 'struct',
    help: `${does} Reply: struct {removed: true, or false when there was nothing by that name; changes}. ${faults}`,
    handler: async ([n], ctx) => remove(netContext(ctx), n),
  });
}
