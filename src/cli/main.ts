// brick's command line. Exit codes: 0 ok, 1 a user error (one line, no stack trace), 2 an internal
// failure. Each command parses its own options strictly: an unknown option is a user error.
// First import: in the shipped binary it drops Node's runtime variables before any other module runs.
import './runtime-env.js';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BrickError, UsageError } from '../shared/errors.js';
import { BRICK_VERSION, BUILD_COMMIT } from '../shared/version.js';
import { DEFAULT_CONFIG_PATH, loadConfigFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { LogFormat } from '../shared/log.js';
import { ConfigProblems, type Io } from './io.js';

export const USAGE = `usage:
  brick serve [--config FILE] [--log-format json|pretty]
  brick fencer [--config FILE] [--log-format json|pretty]
  brick status [--config FILE] [--json]
  brick check-config [--config FILE]
  brick call [--url URL] [--user U --password-file F] [--config FILE] [--insecure] METHOD [ARG...]
  brick --version`;

const COMMON = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const LOGGING = {
  'log-format': { type: 'string' },
  'log-level': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

const defaultIo: Io = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
};

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O, positionals = false) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: positionals });
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0]);
  }
}

/** Load and validate the config; a bad config is a user error listing every problem. */
export function configOrExit(path: string | undefined): Config {
  const r = loadConfigFile(path ?? DEFAULT_CONFIG_PATH);
  if (!r.config) throw new ConfigProblems(r.problems);
  return r.config;
}

function logFormat(v: string | undefined): LogFormat {
  if (v === undefined) return 'json';
  if (v === 'json' || v === 'pretty') return v;
  throw new UsageError(`--log-format: must be json or pretty, got "${v}"`);
}

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case '--version':
      case 'version': {
        if (rest.length) throw new UsageError(`--version takes no arguments`);
        io.out(`brick ${BRICK_VERSION}\nnode ${process.version}\ncommit ${BUILD_COMMIT}\n`);
        return 0;
      }
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        io.out(USAGE + '\n');
        return cmd === undefined ? 1 : 0;
      case 'check-config': {
        const { values } = parse(rest, COMMON);
        if (values.help) return (io.out(USAGE + '\n'), 0);
        const path = values.config ?? DEFAULT_CONFIG_PATH;
        const r = loadConfigFile(path);
        if (!r.config) {
          for (const p of r.problems) io.err(p + '\n');
          return 1;
        }
        io.out(`${path}: ok\n`);
        return 0;
      }
      case 'serve': {
        const { values } = parse(rest, { ...COMMON, ...LOGGING });
        if (values.help) return (io.out(USAGE + '\n'), 0);
        const config = configOrExit(values.config);
        const { serve } = await import('../agent-extension/serve.js');
        return await serve(config, { logFormat: logFormat(values['log-format']), logLevel: values['log-level'], configPath: values.config });
      }
      case 'fencer': {
        const { values } = parse(rest, { ...COMMON, ...LOGGING });
        if (values.help) return (io.out(USAGE + '\n'), 0);
        const config = configOrExit(values.config);
        const { runFencer } = await import('../fencer/daemon.js');
        return await runFencer(config, { logFormat: logFormat(values['log-format']), logLevel: values['log-level'] });
      }
      case 'status': {
        const { values } = parse(rest, { ...COMMON, json: { type: 'boolean' } });
        if (values.help) return (io.out(USAGE + '\n'), 0);
        const config = configOrExit(values.config);
        const { status } = await import('./status.js');
        return await status(config, { json: Boolean(values.json), io });
      }
      case 'call': {
        const { values, positionals } = parse(
          rest,
          {
            ...COMMON,
            url: { type: 'string' },
            user: { type: 'string', short: 'u' },
            'password-file': { type: 'string' },
            insecure: { type: 'boolean', short: 'k' },
            timeout: { type: 'string' },
          },
          true,
        );
        if (values.help) return (io.out(USAGE + '\n'), 0);
        if (!positionals.length) throw new UsageError('call: METHOD is required');
        const { call } = await import('./call.js');
        return await call(
          {
            url: values.url,
            user: values.user,
            passwordFile: values['password-file'],
            configPath: values.config,
            insecure: Boolean(values.insecure),
            timeout: values.timeout,
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
      io.err(`brick: ${e.message}\n${USAGE}\n`);
      return 1;
    }
    if (e instanceof ConfigProblems) {
      for (const p of e.problems) io.err(p + '\n');
      return 1;
    }
    if (e instanceof BrickError) {
      io.err(`brick: ${e.message}\n`);
      return e.fault === 'INTERNAL' ? 2 : 1;
    }
    io.err(`brick: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    return 2;
  }
}

// Entry point (also the bundle's). Not run when imported by tests.
const isEntry = process.argv[1] && /(?:cli[\\/]main\.[tj]s|brick(?:\.c?js)?)$/.test(process.argv[1]);
const isSea = Boolean((globalThis as { __BRICK_SEA__?: boolean }).__BRICK_SEA__);
if (isEntry || isSea) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`brick: internal error: ${(e as Error)?.stack ?? e}\n`);
      process.exitCode = 2;
    },
  );
}
