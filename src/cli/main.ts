// brick's command line. Exit codes (commands.ts EXIT_CODES): 0 ok, 1 a user error (one line, no
// stack trace), 2 an internal failure, 3-4 status/doctor findings, 5-7 call outcomes. Each command
// parses its own options strictly, from its entry in commands.ts: an unknown option is a user error.
// First import: in the shipped binary it drops Node's runtime variables before any other module runs.
import './runtime-env.js';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { EXIT, command, commandHelp, longUsage, parseOptions, synopsis, usage } from './commands.js';
import { BrickError, UsageError } from '../shared/errors.js';
import { BRICK_VERSION, BUILD_COMMIT } from '../shared/version.js';
import { DEFAULT_CONFIG_PATH, loadConfigFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { LogFormat } from '../shared/log.js';
import { ConfigProblems, seconds, type Io } from './io.js';

export const USAGE = usage();

export type { Io } from './io.js';
export { ConfigProblems } from './io.js';

const defaultIo: Io = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
};

interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** Parse a command's options as commands.ts declares them; a mistake names the command. */
function parse(name: string, args: string[]): Parsed {
  const c = command(name)!;
  try {
    return parseArgs({ args, options: parseOptions(c) as ParseArgsConfig['options'], strict: true, allowPositionals: Boolean(c.args) }) as Parsed;
  } catch (e) {
    throw new UsageError(`${name}: ${(e as Error).message.split('\n')[0]}`, name);
  }
}

const str = (v: string | boolean | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

/** Load and validate the config; a bad config is a user error listing every problem. */
export function configOrExit(path: string | undefined): Config {
  const r = loadConfigFile(path ?? DEFAULT_CONFIG_PATH);
  if (!r.config) throw new ConfigProblems(r.problems);
  return r.config;
}


const LOG_LEVELS = command('serve')!.options.find((o) => o.name === 'log-level')!.choices!;

/** --log-level: one of pino's levels; anything else is a usage error, not a crash in the logger. */
function logLevel(v: string | undefined): string | undefined {
  if (v === undefined || LOG_LEVELS.includes(v.toLowerCase())) return v?.toLowerCase();
  throw new UsageError(`--log-level: must be one of ${LOG_LEVELS.join(', ')}, got "${v}"`);
}

function logFormat(v: string | undefined): LogFormat {
  if (v === undefined) return 'json';
  if (v === 'json' || v === 'pretty') return v;
  throw new UsageError(`--log-format: must be json or pretty, got "${v}"`);
}

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    // `brick COMMAND --help` (or -h) anywhere among its arguments: that command's help.
    const doc = cmd ? command(cmd) : undefined;
    const upTo = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
    // Every command, also `help` and `version`, which take no options.
    if (doc && (upTo.includes('--help') || upTo.includes('-h'))) return (io.out(commandHelp(doc) + '\n'), EXIT.OK);
    switch (cmd) {
      case '--version':
      case '-V':
      case 'version': {
        if (rest.length) throw new UsageError(`${cmd}: takes no arguments`);
        io.out(`brick ${BRICK_VERSION}\nnode ${process.version}\ncommit ${BUILD_COMMIT}\n`);
        return EXIT.OK;
      }
      case undefined:
        io.out(USAGE + '\n');
        return EXIT.USER;
      case '--help':
      case '-h':
        io.out(longUsage() + '\n');
        return EXIT.OK;
      case 'help': {
        if (rest.length > 1) throw new UsageError('help: takes one METHOD or COMMAND', 'help');
        if (!rest.length) return (io.out(longUsage() + '\n'), EXIT.OK);
        const c = command(rest[0]);
        if (c) return (io.out(commandHelp(c) + '\n'), EXIT.OK);
        const { methodHelp } = await import('./methods.js');
        return methodHelp(rest[0], io);
      }
      case 'methods': {
        const { values } = parse('methods', rest);
        const { listMethods } = await import('./methods.js');
        return listMethods(io, Boolean(values.names));
      }
      case 'check-config': {
        const { values } = parse('check-config', rest);
        const path = str(values.config) ?? DEFAULT_CONFIG_PATH;
        const r = loadConfigFile(path);
        if (!r.config) {
          for (const p of r.problems) io.err(p + '\n');
          return EXIT.USER;
        }
        for (const w of r.warnings ?? []) io.err(`warning: ${w}\n`);
        io.out(`${path}: ok${r.warnings?.length ? ` (${r.warnings.length} warning${r.warnings.length > 1 ? 's' : ''})` : ''}\n`);
        return EXIT.OK;
      }
      case 'serve': {
        const { values } = parse('serve', rest);
        const config = configOrExit(str(values.config));
        const { serve } = await import('../agent-extension/serve.js');
        return await serve(config, { logFormat: logFormat(str(values['log-format'])), logLevel: logLevel(str(values['log-level'])), configPath: str(values.config) });
      }
      case 'fencer': {
        const { values } = parse('fencer', rest);
        const config = configOrExit(str(values.config));
        const { runFencer } = await import('../fencer/daemon.js');
        return await runFencer(config, { logFormat: logFormat(str(values['log-format'])), logLevel: logLevel(str(values['log-level'])) });
      }
      case 'status': {
        const { values } = parse('status', rest);
        const config = configOrExit(str(values.config));
        const { status } = await import('./status.js');
        return await status(config, { json: Boolean(values.json), io, timeoutMs: seconds(str(values.timeout), 5) * 1000, configPath: str(values.config) });
      }
      case 'doctor': {
        const { values } = parse('doctor', rest);
        const config = configOrExit(str(values.config));
        const { doctor } = await import('./doctor.js');
        return await doctor(config, { json: Boolean(values.json), io, configPath: str(values.config) ?? DEFAULT_CONFIG_PATH });
      }
      case 'call': {
        const { values, positionals } = parse('call', rest);
        if (!positionals.length) throw new UsageError('call: METHOD is required (brick methods lists them)', 'call');
        const { call } = await import('./call.js');
        return await call(
          {
            url: str(values.url),
            user: str(values.user),
            passwordFile: str(values['password-file']),
            configPath: str(values.config),
            insecure: Boolean(values.insecure),
            timeout: str(values.timeout),
          },
          positionals[0],
          positionals.slice(1),
          io,
        );
      }
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      const c = e.command ? command(e.command) : undefined;
      io.err(`brick: ${e.message}\n${c ? `usage: ${synopsis(c)}\n(brick ${c.name} --help describes it)` : USAGE}\n`);
      return EXIT.USER;
    }
    if (e instanceof ConfigProblems) {
      for (const p of e.problems) io.err(p + '\n');
      return EXIT.USER;
    }
    if (e instanceof BrickError) {
      io.err(`brick: ${e.message}\n`);
      return e.fault === 'INTERNAL' ? EXIT.INTERNAL : EXIT.USER;
    }
    io.err(`brick: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    return EXIT.INTERNAL;
  }
}

// Entry point (also the bundle's). Not run when imported by tests.
const isEntry = process.argv[1] && /(?:cli[\\/]main\.[tj]s|brick(?:\.c?js)?)$/.test(process.argv[1]);
const isSea = Boolean((globalThis as { __BRICK_SEA__?: boolean }).__BRICK_SEA__);
if (isEntry || isSea) {
  // The modes of what brick creates do not depend on the umask of whoever started it (a shell's 077
  // or 000, a service manager's): the files its children create (dd in durable writes: the fence
  // marker, the lease, the runtime pools file, heartbeats) get 0666 less this, 0644; the modes brick
  // asks for itself (0600 for secrets, 0700 for marker_dir) are never widened by it.
  process.umask(0o022);
  // What still holds the event loop a second after brick's work is done is not brick's to wait for:
  // log lines a reader that has stopped reading (journald) will never take (their pending writes
  // kept a stopped `brick serve` alive until systemd's SIGKILL), a child stuck in the kernel.
  const exitSoon = () => setTimeout(() => process.exit(), 1000).unref();
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      exitSoon();
    },
    (e) => {
      process.stderr.write(`brick: internal error: ${(e as Error)?.stack ?? e}\n`);
      process.exitCode = 2;
      exitSoon();
    },
  );
}
