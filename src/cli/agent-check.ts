// Does the agent answer an authenticated call? One system.listMethods with the config's own
// listen address, user and password, as `brick status` and `brick doctor` report it. A TCP connect
// alone proves nothing: a stuck process, another program on the port or a wrong password all
// accept connections.
import { existsSync, readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { parseListen } from '../config/rules.js';
import { basicAuth, postXml } from '../agent-extension/client.js';
import { parseMethodResponse, serializeMethodCall, XmlRpcFault } from '../agent-extension/codec.js';

export type AgentAnswer = 'ok' | 'unauthorized' | 'unreachable' | 'no-credentials' | 'not-xmlrpc';

export interface AgentCheck {
  listen: string;
  url: string;
  /** An authenticated call answered. */
  reachable: boolean;
  answer: AgentAnswer;
  /** What went wrong, in words, when not ok. */
  detail?: string;
  ms?: number;
}

export function agentUrl(config: Config): string | undefined {
  const s = config.server;
  const l = parseListen(s.listen);
  if (!l || l.port === 0) return undefined;
  const host = l.host === '0.0.0.0' ? '127.0.0.1' : l.host === '::' ? '::1' : l.host;
  return `${s.tls_cert ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${l.port}/`;
}

export async function checkAgent(config: Config, timeoutMs: number): Promise<AgentCheck> {
  const s = config.server;
  const url = agentUrl(config);
  const base = { listen: s.listen, url: url ?? '', reachable: false };
  if (!url) return { ...base, answer: 'unreachable', detail: `server.listen "${s.listen}" has no fixed port to call` };
  let password = s.password;
  if (!password) {
    try {
      password = readFileSync(s.password_file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      return {
        ...base,
        answer: 'no-credentials',
        detail: `cannot read server.password_file ${s.password_file} (${code})${code === 'EACCES' ? ': run as root' : code === 'ENOENT' ? ': brick serve creates it on its first start' : ''}`,
      };
    }
  }
  const ca = s.tls_cert && existsSync(s.tls_cert) ? readFileSync(s.tls_cert) : undefined;
  const start = performance.now();
  try {
    const res = await postXml({ url, body: serializeMethodCall('system.listMethods', []), authorization: basicAuth(s.user, password), timeoutMs, ca });
    const ms = Math.round(performance.now() - start);
    if (res.status === 401) return { ...base, answer: 'unauthorized', detail: `HTTP 401: the agent refused server.user "${s.user}" with the configured password`, ms };
    if (res.status !== 200) return { ...base, answer: 'not-xmlrpc', detail: `HTTP ${res.status} from ${url}: is this brick?`, ms };
    try {
      parseMethodResponse(res.body);
    } catch (e) {
      if (!(e instanceof XmlRpcFault)) return { ...base, answer: 'not-xmlrpc', detail: `the reply from ${url} is not XML-RPC`, ms };
    }
    return { ...base, reachable: true, answer: 'ok', ms };
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    return { ...base, answer: 'unreachable', detail: `${url}: ${why}${why === 'ECONNREFUSED' ? ' (brick serve not running?)' : ''}` };
  }
}
