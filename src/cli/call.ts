// `brick call`: a small XML-RPC client for admins, on brick's own codec. Arguments are JSON when
// they parse as JSON (numbers, true/false, null, objects, arrays), strings otherwise. The result
// is printed as JSON; a fault is one line "fault CODE (NAME): message" on stderr and exit 1.
// Defaults come from the config (listen address, user, password_file) when not given.
import { existsSync, readFileSync } from 'node:fs';
import { ConfigProblems, type Io } from './io.js';
import { BrickError, FAULT_CODES, UsageError } from '../shared/errors.js';
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

function loadConfig(path: string | undefined): Config {
  if (!path && !existsSync(DEFAULT_CONFIG_PATH)) return defaultConfig();
  const r = loadConfigFile(path ?? DEFAULT_CONFIG_PATH);
  if (!r.config) throw new ConfigProblems(r.problems);
  return r.config;
}

export async function call(o: CallOptions, method: string, args: string[], io: Io): Promise<number> {
  const needConfig = !o.url || o.user === undefined || o.passwordFile === undefined;
  const config = needConfig ? loadConfig(o.configPath) : defaultConfig();
  const s = config.server;

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
        throw new UsageError(`--password-file ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
    } else password = s.password;
    authorization = basicAuth(user, password);
  }

  let timeoutMs = 120_000;
  if (o.timeout !== undefined) {
    const t = Number(o.timeout);
    if (!(t > 0)) throw new UsageError(`--timeout: must be a number of seconds > 0, got "${o.timeout}"`);
    timeoutMs = t * 1000;
  }
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
    io.err(`brick call: ${parsedUrl.url.origin}: ${why}${why === 'ECONNREFUSED' ? ' (is brick serve running?)' : ''}\n`);
    return 1;
  }
  if (res.status === 401) {
    io.err(`brick call: ${parsedUrl.url.origin}: HTTP 401: wrong user or password (--user, --password-file)\n`);
    return 1;
  }
  if (res.status !== 200) {
    io.err(`brick call: ${parsedUrl.url.origin}: HTTP ${res.status}: ${res.body.toString('utf8').trim().slice(0, 200)}\n`);
    return 1;
  }
  try {
    io.out(resultJson(parseMethodResponse(res.body)) + '\n');
    return 0;
  } catch (e) {
    if (e instanceof XmlRpcFault) {
      io.err(`fault ${e.faultCode} (${faultName(e.faultCode)}): ${e.faultString.replace(/\s*\n\s*/g, ' ')}\n`);
      return 1;
    }
    if (e instanceof CodecError) throw new BrickError('PARSE_ERROR', `the reply from ${parsedUrl.url.origin} is not valid XML-RPC: ${e.message}`);
    throw e;
  }
}
