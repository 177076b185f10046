// Every method brick serves, gathered from the feature folders. The system.* methods are added by
// the server itself.
import type { MethodDef } from '../rpc/catalogue.js';
import { methods as ovm3 } from './ovm3/methods.js';
import { methods as domain } from './domain/methods.js';
import { methods as host } from './host-methods.js';
import { methods as network } from '../network/methods.js';
import { methods as fencer } from '../fencer/methods.js';

export function allMethods(): MethodDef[] {
  const list = [...ovm3, ...host, ...network, ...domain, ...fencer];
  const seen = new Set<string>();
  for (const m of list) {
    if (seen.has(m.name)) throw new Error(`method ${m.name} is defined twice`);
    seen.add(m.name);
  }
  return list;
}
