// Filled in once the network layer's control0 and the fencer's peer check exist.
import type { MethodDef } from '../catalogue.js';

export const extraMethods: MethodDef[] = [];
