// `brick methods` and `brick help METHOD`: the XML-RPC catalogue read locally, without an agent. The
// text is system.methodHelp's, so the command line and the wire say the same thing.
import type { Io } from './io.js';
import { EXIT } from './commands.js';
import { UsageError } from '../shared/errors.js';
import type { MethodDef } from '../rpc/catalogue.js';
import { helpText } from '../rpc/describe.js';
import { allMethods } from '../agent-extension/methods.js';
import { systemMethods, type Catalogue } from '../agent-extension/system-methods.js';

/** Every method brick serves, system.* included, by name. */
export function catalogue(): MethodDef[] {
  // systemMethods needs the dispatcher only inside its handlers, which are never run here.
  const system = systemMethods({ methods: new Map() } as unknown as Catalogue);
  return [...allMethods(), ...system].sort((a, b) => a.name.localeCompare(b.name));
}

/** The first sentence of a help paragraph. */
export function firstSentence(help: string): string {
  const m = /^(.*?[.:;])(\s|$)/s.exec(help.trim());
  return (m ? m[1] : help.trim()).replace(/\s+/g, ' ').replace(/[:;]$/, '');
}

export function listMethods(io: Io, namesOnly = false): number {
  const defs = catalogue();
  if (namesOnly) {
    for (const d of defs) io.out(d.name + '\n');
    return EXIT.OK;
  }
  const w = Math.max(...defs.map((d) => d.name.length));
  for (const d of defs) io.out(`${d.name.padEnd(w)}  ${firstSentence(d.help)}\n`);
  io.out(`\n${defs.length} methods; brick help METHOD shows one with its arguments, reply and faults.\n`);
  return EXIT.OK;
}

export function methodHelp(name: string, io: Io): number {
  const defs = catalogue();
  const def = defs.find((d) => d.name === name);
  if (!def) {
    const near = defs.filter((d) => d.name.includes(name) || name.includes(d.name)).map((d) => d.name);
    throw new UsageError(
      `help: no method or command "${name}"${near.length ? ` (did you mean ${near.slice(0, 5).join(', ')}?)` : ''}; brick methods lists the methods, brick --help the commands`,
      'help',
    );
  }
  io.out(`${helpText(def)}\n\nReply: ${def.returns}\n`);
  return EXIT.OK;
}
