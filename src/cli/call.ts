// `brick call`: a small XML-RPC client for admins, on brick's own codec. Arguments are JSON when
// they parse as JSON (numbers, true/false, null, objects, arrays), strings otherwise. The result
// is printed as JSON (system.methodHelp's text as text); a fault is one line
// "fault CODE (NAME): message" on stderr. Exit codes (commands.ts): 5 a fault, 6 HTTP 401, 7 no
// answer. Defaults come from the config (listen address, user, password_file) when not given.
import { existsSync, readFileSync } from 'node:fs';
import { ConfigProblems, seconds, type Io } from './io.js';
import { EXIT } from './commands.js';
import { FAULT_CODES, UsageError } from '../shared/errors.js';
import { DEFAULT_CONFIG_PATH, defaultConfig, loadConfigFile } from '../config/load.js';
import { parseListen } from '../config/rules.js';
import type { Config } from '../config/schema.js';
import { basicAuth, postXml, splitUrlCredentials } from '../agent-extension/client.js';
import { CodecError, parseMethodResponse, serializeMethodCall, XmlRpcFault } from '../agent-extension/codec.js';

export interface CallOptions {
  url?: string;
  user?: string;
  passwordFile?: string;
  configPath?: string;
  insecure: boolean;
  timeout?: string;
}

/** A command-line argument as an XML-RPC value: JSON when it parses, else the string itself. */
export function parseArg(a: string): unknown {
  try {
    return JSON.parse(a);
  } catch {
    return a;
  }
}

/** A reply as JSON: base64 → its base64 text, dateTime → ISO 8601, i8 beyond 2^53 → a number. */
export function resultJson(v: unknown): string {
  const big: string[] = [];
  const text = JSON.stringify(
    v,
    function (this: Record<string, unknown>, key: string, value: unknown) {
      const raw = this[key];
      if (typeof raw === 'bigint') {
        big.push(raw.toString());
        return `\u0000big${big.length - 1}\u0000`;
      }
      if (Buffer.isBuffer(raw)) return raw.toString('base64');
      if (raw instanceof Date) return raw.toISOString();
      return value;
    },
    2,
  );
  return (text ?? 'null').replace(/"\\u0000big(\d+)\\u0000"/g, (_, i: string) => big[Number(i)]);
}

function faultName(code: number): string {
  for (const [name, f] of Object.entries(FAULT_CODES)) if (f.code === code) return name;
  return 'vendor';
}

/** Where the URL and credentials came from, for messages that say what was tried. */
interface Source {
  config: Config;
  /** The config file read, or undefined when none was (only --url and friends). */
  file?: string;
}

const NO_CONFIG_HINT =
  'pass --config FILE (the sandbox: --config examples/sandbox.toml), or --url URL with --user U and --password-file F';

function loadSource(o: CallOptions): Source {
  const needConfig = !o.url || o.passwordFile === undefined;
  if (!needConfig) return { config: defaultConfig() };
  if (!o.configPath && !existsSync(DEFAULT_CONFIG_PATH)) {
    // --url with its own user:password@ needs nothing else.
    if (o.url && /^[a-z]+:\/\/[^/@]*@/i.test(o.url)) return { config: defaultConfig() };
    throw new UsageError(`call: no config file: tried ${DEFAULT_CONFIG_PATH} (it does not exist) for the agent's address and password; ${NO_CONFIG_HINT}`, 'call');
  }
  const file = o.configPath ?? DEFAULT_CONFIG_PATH;
  const r = loadConfigFile(file);
  if (!r.config) throw new ConfigProblems(r.problems);
  return { config: r.config, file };
}

export async function call(o: CallOptions, method: string, args: string[], io: Io): Promise<number> {
  const src = loadSource(o);
  const s = src.config.server;

  let url = o.url;
  if (!url) {
    const l = parseListen(s.listen);
    if (!l) throw new UsageError(`server.listen "${s.listen}" is not host:port; give --url`);
    const host = l.host === '0.0.0.0' ? '127.0.0.1' : l.host === '::' ? '::1' : l.host;
    url = `${s.tls_cert ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${l.port}/`;
  }
  let parsedUrl;
  try {
    parsedUrl = splitUrlCredentials(url);
  } catch {
    throw new UsageError(`--url: not a URL: ${url}`);
  }

  let authorization = parsedUrl.authorization;
  if (!authorization) {
    const user = o.user ?? s.user;
    let password: string;
    const file = o.passwordFile ?? (s.password ? undefined : s.password_file);
    if (file) {
      try {
        password = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      } catch (e) {
        const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
        const from = o.passwordFile !== undefined ? '--password-file' : `server.password_file (from ${src.file})`;
        const fix =
          o.passwordFile !== undefined
            ? 'pass the file that holds the password'
            : why === 'EACCES'
              ? 'it is mode 0600: run as root, or pass --password-file F'
              : `start brick serve once (it creates it with generate_credentials = true), or ${NO_CONFIG_HINT}`;
        throw new UsageError(`call: ${from} ${file}: cannot read it (${why}); ${fix}`, 'call');
      }
    } else password = s.password;
    authorization = basicAuth(user, password);
  }

  const timeoutMs = seconds(o.timeout, 120) * 1000;
  // Trust the server's own (possibly self-signed) certificate when we have it from the config.
  let ca: Buffer | undefined;
  if (!o.insecure && s.tls_cert && existsSync(s.tls_cert)) ca = readFileSync(s.tls_cert);

  let body: string;
  try {
    body = serializeMethodCall(method, args.map(parseArg));
  } catch (e) {
    throw new UsageError(`cannot send these arguments: ${(e as Error).message}`);
  }

  let res;
  try {
    res = await postXml({ url: parsedUrl.url.href, body, authorization, timeoutMs, ca, insecure: o.insecure });
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    const hint =
      why === 'ECONNREFUSED'
        ? ' (is brick serve running? is this its server.listen?)'
        : /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(String(why))
          ? ' (a certificate brick does not trust: --config with the agent\'s tls_cert, or --insecure)'
          : /EPROTO|wrong version/i.test(String(why))
            ? ' (HTTPS to a plain HTTP agent, or the other way round?)'
            : '';
    io.err(`brick call: ${parsedUrl.url.origin}: ${why}${hint}\n`);
    return EXIT.UNREACHABLE;
  }
  if (res.status === 401) {
    io.err(`brick call: ${parsedUrl.url.origin}: HTTP 401: the user or password was refused (--user, --password-file)\n`);
    return EXIT.UNAUTHORIZED;
  }
  if (res.status !== 200) {
    io.err(`brick call: ${parsedUrl.url.origin}: HTTP ${res.status}: ${res.body.toString('utf8').trim().slice(0, 200)}\n`);
    return EXIT.UNREACHABLE;
  }
  let result;
  try {
    result = parseMethodResponse(res.body);
  } catch (e) {
    if (e instanceof XmlRpcFault) {
      io.err(`fault ${e.faultCode} (${faultName(e.faultCode)}): ${e.faultString.replace(/\s*\n\s*/g, ' ')}\n`);
      return EXIT.FAULT;
    }
    if (e instanceof CodecError) {
      io.err(`brick call: the reply from ${parsedUrl.url.origin} is not valid XML-RPC: ${e.message}\n`);
      return EXIT.UNREACHABLE;
    }
    throw e;
  }
  // Help text is for people: print it as text, not as a JSON string full of \n.
  io.out(method === 'system.methodHelp' && typeof result === 'string' ? result.replace(/\n?$/, '\n') : resultJson(result) + '\n');
  return EXIT.OK;
}
