// The HTTP side of the agent extension: fastify serving XML-RPC on POST / and /RPC2 (CloudStack's
// Ovm3 client posts to "/"), HTTP Basic auth with a constant-time compare, GET /healthz without
// auth and GET /metrics with it. The body is read under its limits as it arrives (request-body.ts:
// counts, depth, a size limit that depends on the method, a deadline) and handed to the codec as raw
// bytes. Connections are capped (connections.ts), headers must arrive within header_timeout_s, idle
// keep-alive ends after idle_timeout_s, and failed logins are summarised (auth-failures.ts). A bad
// call is always an XML-RPC fault with HTTP 200; HTTP errors are only for transport matters (401,
// 404, 408, 413, and fastify's 415 for a Content-Type header that is not a media type at all: any
// well-formed type is read as XML-RPC).
import type { ServerResponse } from 'node:http';
import Fastify, { LogController, type FastifyInstance, type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import basicAuth from '@fastify/basic-auth';
import type { Config } from '../config/schema.js';
import type { Logger } from '../shared/log.js';
import type { Runner } from '../shared/run.js';
import { KeyedLock } from '../shared/keyed-lock.js';
import { FAULT_CODES } from '../shared/errors.js';
import { BRICK_VERSION } from '../shared/version.js';
import type { MethodDef } from '../rpc/catalogue.js';
import { allMethods } from './methods.js';
import { Dispatcher, type RequestInfo } from './dispatch.js';
import { serializeFault } from './codec.js';
import { CallMetrics } from './metrics.js';
import { registerFencerMetrics } from '../fencer/metrics.js';
import { createVendorAgent } from './passthrough.js';
import { loadPassword, loadTls, sameSecret, sameHeader } from './credentials.js';
import { readBody, bodyDeadlineMs, RefusedBody, type BodyLimits, type ScannedBody } from './request-body.js';
import { ConnectionGuard, effectiveMaxConnections, closeAfterReply } from './connections.js';
import { AuthFailures } from './auth-failures.js';

export interface ServerOptions {
  log: Logger;
  /** The methods to serve (system.* are added); default: every feature's methods (allMethods()). */
  methods?: MethodDef[];
  /** Host command runner handed to handlers; default the real one. */
  run?: Runner;
  /** The password; default from server.password / server.password_file. */
  password?: string;
  /** Node process metrics in /metrics too (the real server; tests leave it off). */
  defaultMetrics?: boolean;
}

export const XML_PATHS = ['/', '/RPC2'] as const;

/**
 * A request as the dispatcher sees it. Its signal aborts when the client goes away before the reply
 * is written; it is made (with its listener on the response) only when a call asks for it, which
 * most calls never do: then made aborted if the client has already gone.
 */
class HttpRequest implements RequestInfo {
  summary?: Record<string, unknown>;
  private ac: AbortController | undefined;
  private onClose: (() => void) | undefined;
  constructor(
    readonly authorization: string | undefined,
    private readonly res: ServerResponse,
  ) {}
  get signal(): AbortSignal {
    if (!this.ac) {
      const ac = (this.ac = new AbortController());
      const res = this.res;
      if (res.closed) {
        if (!res.writableFinished) ac.abort();
      } else res.once('close', (this.onClose = () => res.writableFinished || ac.abort()));
    }
    return this.ac.signal;
  }
  /** The reply is about to be written: the client going away from now on stops nothing. */
  answered(): void {
    if (this.onClose) this.res.off('close', this.onClose);
    this.onClose = undefined;
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    brick: { dispatcher: Dispatcher; metrics: CallMetrics; locks: KeyedLock; connections: ConnectionGuard };
  }
}

/** Build the server (not listening yet): `await app.listen({host, port})` or `app.inject(...)`. */
/**
 * Fastify without a logger instance logs to a null logger of its own (one object per instance, whose
 * child is itself): point its methods at `http`, so fastify's own lines (a listen, an error after a
 * reply was sent, a failing hook) are logged as before, at their level, with component "http".
 */
export function routeFastifyLog(app: FastifyInstance, http: Logger): void {
  const sink = app.log as unknown as Record<(typeof LEVELS)[number], (...args: unknown[]) => void>;
  for (const level of LEVELS) sink[level] = http[level].bind(http) as (...args: unknown[]) => void;
}
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

export function createServer(config: Config, opts: ServerOptions): FastifyInstance {
  const s = config.server;
  const password = opts.password ?? loadPassword(config);
  const tls = loadTls(config);
  const log = opts.log;
  const guardRef: { guard?: ConnectionGuard } = {};
  const metrics = new CallMetrics({ defaultMetrics: opts.defaultMetrics, openConnections: () => guardRef.guard?.size ?? 0 });
  // The fencer's state too, read on scrape (its own process writes it): alerts before a fence.
  if (config.server.metrics) registerFencerMetrics(metrics.registry, config.fencer);
  const locks = new KeyedLock();
  const vendor = s.vendor_agent_url ? createVendorAgent(s.vendor_agent_url, s.body_limit_bytes) : undefined;
  const dispatcher = new Dispatcher({ config, log, methods: opts.methods ?? allMethods(), run: opts.run, locks, vendor, metrics });

  const limits: BodyLimits = {
    callBodyLimit: Math.min(s.call_body_limit_bytes, s.body_limit_bytes),
    fileBodyLimit: s.body_limit_bytes,
    maxParams: s.max_params,
    maxValues: s.max_values,
    maxElements: s.max_values * 4 + 64,
    maxMulticallCalls: s.max_multicall_calls,
    baseTimeoutMs: s.header_timeout_s * 1000,
    minBytesPerS: s.body_min_rate_bytes_s,
  };
  // The largest body a method may send: file-carrying calls and calls for the vendor agent get the
  // large limit, every other call (and a body whose method is not plain text) the small one.
  const limitFor = (method: string | undefined): number => {
    if (method === undefined) return limits.callBodyLimit;
    const def = dispatcher.methods.get(method);
    return (def ? def.carriesFile : vendor !== undefined) ? limits.fileBodyLimit : limits.callBodyLimit;
  };
  // Node's own request timer is only the backstop for the largest body; readBody keeps each body to
  // the deadline its own limit gives. Node checks these timers every connectionsCheckingInterval.
  const http = {
    headersTimeout: s.header_timeout_s * 1000,
    requestTimeout: bodyDeadlineMs(limits, limits.fileBodyLimit) + 5_000,
    keepAliveTimeout: s.idle_timeout_s * 1000,
    connectionsCheckingInterval: 1_000,
  };

  // brick declares no route schemas (bodies go to the codec as bytes, replies are strings): give
  // fastify compilers that refuse, so it never loads Ajv and fast-json-stringify (85 + 11 modules,
  // about 4 MB of idle RSS) for a feature brick does not use.
  const noSchemas = () => () => {
    throw new Error('brick declares no fastify route schemas');
  };
  const options = {
    schemaController: { compilersFactory: { buildValidator: noSchemas, buildSerializer: noSchemas } },
    // No loggerInstance: given one, fastify makes a child logger per request (and validates it) and
    // puts two listeners on every response, only to log requests, which the dispatcher already does
    // once per call. Without one it skips both; its own lines still reach the journal through the
    // http logger (routeFastifyLog below). Measured: see bench/RESULTS.md.
    logController: new LogController({ disableRequestLogging: true }), // the dispatcher logs each call once
    bodyLimit: s.body_limit_bytes,
    http,
    https: tls ? { cert: tls.cert, key: tls.key, ...http } : null,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    requestTimeout: http.requestTimeout,
    keepAliveTimeout: http.keepAliveTimeout,
    connectionTimeout: 0,
  };
  // TLS files that cannot serve were refused by loadTls already (credentials.ts checkTlsPair: the
  // same tls.createSecureContext the HTTPS server makes from the same bytes): a user error there.
  const app = Fastify(options as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;
  routeFastifyLog(app, log.child({ component: 'http' }));
  const connections = new ConnectionGuard(effectiveMaxConnections(s.max_connections, log), log, metrics);
  guardRef.guard = connections;
  connections.attach(app.server);
  const authFailures = new AuthFailures(log, 10_000, () => metrics.authFailure());
  app.decorate('brick', { dispatcher, metrics, locks, connections });
  app.addHook('onClose', async () => {
    authFailures.close();
    vendor?.close();
  });

  // Every body, whatever its content type, is read under the limits as raw bytes for the codec.
  app.removeAllContentTypeParsers();
  // Under XML-RPC's own type as well as the catch-all: fastify remembers the parser it found for a
  // named type, but looks for the catch-all anew on every request (parsing the Content-Type header
  // each time: about 0.5 KB and a few regular expressions per call). The same parser for both.
  app.addContentTypeParser(['*', 'text/xml'], (req, payload, done) => {
    const cl = req.headers['content-length'];
    const length = cl === undefined ? undefined : Number(cl);
    readBody(payload, Number.isSafeInteger(length) ? length : undefined, limits, limitFor, (err, body) => {
      if (err) metrics.requestRefused(err.statusCode === 413 ? 'too_large' : 'too_slow');
      done(err, body);
    });
  });

  app.register(basicAuth, {
    authenticate: { realm: 'brick' },
    async validate(user: string, pass: string) {
      // Both compared every time, in constant time, so timing tells nothing about which was wrong.
      const okUser = sameSecret(user, s.user);
      const okPass = sameSecret(pass, password);
      if (!(okUser && okPass)) throw new Error('bad credentials');
    },
  });
  // The header a client sends for the right credentials: the common case is one constant-time
  // compare with it; anything else goes the plugin's way (parse, compare user and password).
  const expected = `Basic ${Buffer.from(`${s.user}:${password}`, 'utf8').toString('base64')}`;
  app.after(() => {
    app.addHook('onRequest', (req, reply, done) => {
      if (req.method === 'GET' && req.routeOptions.url === '/healthz') return done();
      const h = req.headers.authorization;
      if (typeof h === 'string' && sameHeader(h, expected)) {
        connections.authenticated(req.raw.socket);
        return done();
      }
      app.basicAuth(req, reply, (err?: Error) => {
        if (!err) connections.authenticated(req.raw.socket);
        done(err);
      });
    });
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode ?? 500;
    if (status === 401) {
      authFailures.note(req.ip, req.url);
      closeAfterThisReply(req, reply); // its body, if any, is never read
      return reply.code(401).type('text/plain').send('authentication required\n');
    }
    if (status >= 400 && status < 500) {
      log.info({ remote: req.ip, url: req.url, status, code: err.code }, 'request refused');
      // A refused body was not read to its end: the connection cannot carry another request.
      if (status === 413 || status === 408 || status === 400 || status === 415) closeAfterThisReply(req, reply);
      else closeIfBodyUnread(req, reply);
      return reply.code(status).type('text/plain').send(err.message + '\n');
    }
    log.error({ err, url: req.url }, 'internal error handling a request');
    if (req.method === 'POST' && (XML_PATHS as readonly string[]).includes(req.routeOptions.url ?? '')) {
      return reply.code(200).type('text/xml; charset=utf-8').send(serializeFault(FAULT_CODES.INTERNAL.code, 'internal error in brick; the brick log has the details'));
    }
    return reply.code(500).type('text/plain').send('internal error; the brick log has the details\n');
  });

  const empty: ScannedBody = { buf: Buffer.alloc(0), runs: [], method: undefined };
  for (const path of XML_PATHS) {
    app.post(path, async (req, reply) => {
      const body = req.body;
      if (body instanceof RefusedBody) {
        metrics.requestRefused('limits');
        closeAfterThisReply(req, reply); // the rest of the body was not read
        return reply.code(200).type('text/xml; charset=utf-8').send(dispatcher.refuse(body.error, body.bytes));
      }
      const info = new HttpRequest(req.headers.authorization, reply.raw);
      const scanned = (body as ScannedBody | undefined) ?? empty;
      // A file-carrying call gets its file contents as a view of the body it came in (no copies).
      const textViews = scanned.runs.length > 0 && dispatcher.methods.get(scanned.method ?? '')?.carriesFile === true;
      const xml = await dispatcher.handle(textViews ? { ...scanned, textViews } : scanned, info);
      info.answered();
      return reply.code(200).type('text/xml; charset=utf-8').send(xml);
    });
  }

  // Routes that read no body (and every path that is no route) answer at once; a body sent with
  // them (a GET /healthz with a chunked body, from anyone) is never read, not drained.
  app.get('/healthz', async (req, reply) => {
    closeIfBodyUnread(req, reply);
    return reply.type('application/json').send({ status: 'ok', version: BRICK_VERSION });
  });
  if (s.metrics) {
    app.get('/metrics', async (req, reply) => {
      closeIfBodyUnread(req, reply);
      return reply.type(metrics.contentType).send(await metrics.text());
    });
  }
  app.setNotFoundHandler((req, reply) => {
    closeIfBodyUnread(req, reply);
    return reply.code(404).send({ message: `Route ${req.method}:${req.url} not found`, error: 'Not Found', statusCode: 404 }); // fastify's own 404
  });
  return app;
}

/** Send this reply with `connection: close`, then end the connection without reading more (connections.ts). */
function closeAfterThisReply(req: FastifyRequest, reply: FastifyReply): void {
  reply.header('connection', 'close');
  closeAfterReply(req.raw.socket);
}

/**
 * closeAfterThisReply when the request has a body that has not all been read. Node would otherwise
 * read and discard the rest to keep the connection for another request: as much as the client
 * sends, at full speed, until the request timeout (a chunked body has no end). A request without a
 * body is not `complete` yet while its handler runs (Node marks it after the request event), so the
 * headers say whether there is one.
 */
function closeIfBodyUnread(req: FastifyRequest, reply: FastifyReply): void {
  const h = req.headers;
  const body = h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
  if (body && !req.raw.complete) closeAfterThisReply(req, reply);
}
