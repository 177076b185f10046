// The XML-RPC client side: one POST of an XML body, with a deadline and a size cap. Used by
// `brick call`, by the vendor-agent passthrough and by tests (through test/fixtures/server.ts).
import http from 'node:http';
import type https from 'node:https';
import { parseMethodResponse, serializeMethodCall } from './codec.js';
import type { XmlRpcValue } from '../rpc/values.js';

/** node:https (with tls) when a URL is https: loaded then, not at start (about 3 MB of RSS in a plain-HTTP agent). */
export const httpsLib = (): typeof https => process.getBuiltinModule('node:https');

export interface PostOptions {
  url: string;
  body: string | Buffer;
  /** The Authorization header to send; taken from user:password in the URL when not given. */
  authorization?: string;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Extra trusted CA (PEM) for HTTPS. */
  ca?: string | Buffer;
  /** Do not verify the server's certificate. */
  insecure?: boolean;
  /** Keep-alive agent to reuse connections. */
  agent?: http.Agent;
  /** Refuse replies larger than this (default 256 MiB). */
  maxBytes?: number;
}

export interface PostResult {
  status: number;
  contentType: string | undefined;
  body: Buffer;
}

/** The server's reply is (or says it is) larger than the caller's cap: refused, nothing of it kept. */
export class ReplyTooLarge extends Error {
  constructor(origin: string, readonly maxBytes: number) {
    super(`reply from ${origin} is larger than ${maxBytes} bytes`);
    this.name = 'ReplyTooLarge';
  }
}

/** The server took the request but its reply did not come (or not all of it) within timeoutMs. */
export class ReplyTimeout extends Error {
  constructor(origin: string, readonly timeoutMs: number) {
    super(`no reply from ${origin} within ${timeoutMs} ms`);
    this.name = 'ReplyTimeout';
  }
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Basic auth header from user:password in a URL, and the URL without them. */
export function splitUrlCredentials(url: string): { url: URL; authorization?: string } {
  const u = new URL(url);
  let authorization: string | undefined;
  if (u.username || u.password) {
    const user = decodeURIComponent(u.username);
    const pass = decodeURIComponent(u.password);
    authorization = basicAuth(user, pass);
    u.username = '';
    u.password = '';
  }
  return { url: u, authorization };
}

export function basicAuth(user: string, password: string): string {
  return 'Basic ' + Buffer.from(`${user}:${password}`, 'utf8').toString('base64');
}

/** POST an XML body; resolves with any HTTP status. Rejects on network errors and the deadline. */
export function postXml(o: PostOptions): Promise<PostResult> {
  const { url, authorization: fromUrl } = splitUrlCredentials(o.url);
  const isHttps = url.protocol === 'https:';
  if (!isHttps && url.protocol !== 'http:') return Promise.reject(new Error(`${o.url}: only http:// and https:// URLs`));
  const body = typeof o.body === 'string' ? Buffer.from(o.body, 'utf8') : o.body;
  const headers: http.OutgoingHttpHeaders = {
    'content-type': 'text/xml',
    'content-length': body.length,
    'user-agent': 'brick',
  };
  const auth = o.authorization ?? fromUrl;
  if (auth) headers.authorization = auth;
  const maxBytes = o.maxBytes ?? 256 * 1024 * 1024;
  return new Promise<PostResult>((resolve, reject) => {
    const opts: https.RequestOptions = {
      method: 'POST',
      headers,
      agent: o.agent,
      timeout: o.timeoutMs,
      signal: o.signal,
    };
    if (isHttps) {
      if (o.ca) opts.ca = o.ca;
      if (o.insecure) opts.rejectUnauthorized = false;
    }
    // Whether the connection was made: a deadline before that is a connect failure, not a slow reply.
    let connected = false;
    const late = () => (connected ? new ReplyTimeout(url.origin, o.timeoutMs) : new Error(`could not connect to ${url.origin} within ${o.timeoutMs} ms`));
    const timer = setTimeout(() => req.destroy(late()), o.timeoutMs);
    const req = (isHttps ? httpsLib() : http).request(url, opts, (res) => {
      let chunks: Buffer[] = [];
      let size = 0;
      // A length it declares beyond the cap: refused before a byte of it is read.
      if (Number(res.headers['content-length']) > maxBytes) return req.destroy(new ReplyTooLarge(url.origin, maxBytes));
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= maxBytes) return void chunks.push(c);
        chunks = []; // what was read goes now, not when the request is collected
        req.destroy(new ReplyTooLarge(url.origin, maxBytes));
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body: Buffer.concat(chunks) });
      });
      res.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    req.on('socket', (sock) => {
      if (!sock.connecting) connected = true;
      else sock.once('connect', () => (connected = true));
    });
    req.on('timeout', () => req.destroy(late()));
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end(body);
  });
}

export interface ClientOptions {
  url: string;
  user?: string;
  password?: string;
  ca?: string | Buffer;
  insecure?: boolean;
  timeoutMs?: number;
  keepAlive?: boolean;
}

/** A small XML-RPC client: `await c.call('system.listMethods')`. Faults reject with XmlRpcFault. */
export class XmlRpcClient {
  private readonly agent: http.Agent;
  constructor(private readonly o: ClientOptions) {
    const isHttps = o.url.startsWith('https:');
    this.agent = isHttps ? new (httpsLib().Agent)({ keepAlive: o.keepAlive ?? true }) : new http.Agent({ keepAlive: o.keepAlive ?? true });
  }

  async call(method: string, ...params: unknown[]): Promise<XmlRpcValue> {
    const res = await postXml({
      url: this.o.url,
      body: serializeMethodCall(method, params),
      authorization: this.o.user !== undefined ? basicAuth(this.o.user, this.o.password ?? '') : undefined,
      timeoutMs: this.o.timeoutMs ?? 120_000,
      ca: this.o.ca,
      insecure: this.o.insecure,
      agent: this.agent,
    });
    if (res.status !== 200) throw new HttpError(res.status, `${this.o.url}: HTTP ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`);
    return parseMethodResponse(res.body);
  }

  close(): void {
    this.agent.destroy();
  }
}
