// The HTTP side of the agent extension: fastify serving XML-RPC on POST / and /RPC2 (CloudStack's
// Ovm3 client posts to "/"), HTTP Basic auth with a constant-time compare, GET /healthz without
// auth and GET /metrics with it. The body arrives as raw bytes (the codec decodes UTF-8 strictly)
// and is capped at server.body_limit_bytes (HTTP 413). A bad call is always an XML-RPC fault with
// HTTP 200; HTTP errors are only for transport matters (401, 404, 413).
import Fastify, { LogController, type FastifyInstance, type FastifyError } from 'fastify';
import basicAuth from '@fastify/basic-auth';
import type { Config } from '../config/schema.js';
import type { Logger } from '../shared/log.js';
import type { Runner } from '../shared/run.js';
import { KeyedLock } from '../shared/keyed-lock.js';
import { FAULT_CODES } from '../shared/errors.js';
import { BRICK_VERSION } from '../shared/version.js';
import type { MethodDef } from '../rpc/catalogue.js';
import { allMethods } from './methods.js';
import { Dispatcher } from './dispatch.js';
import { serializeFault } from './codec.js';
import { CallMetrics } from './metrics.js';
import { registerFencerMetrics } from '../fencer/metrics.js';
import { createVendorAgent } from './passthrough.js';
import { loadPassword, loadTls, sameSecret } from './credentials.js';

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

declare module 'fastify' {
  interface FastifyInstance {
    brick: { dispatcher: Dispatcher; metrics: CallMetrics; locks: KeyedLock };
  }
}

/** Build the server (not listening yet): `await app.listen({host, port})` or `app.inject(...)`. */
export function createServer(config: Config, opts: ServerOptions): FastifyInstance {
  const s = config.server;
  const password = opts.password ?? loadPassword(config);
  const tls = loadTls(config);
  const log = opts.log;
  const metrics = new CallMetrics({ defaultMetrics: opts.defaultMetrics });
  // The fencer's state too, read on scrape (its own process writes it): alerts before a fence.
  if (config.server.metrics) registerFencerMetrics(metrics.registry, config.fencer);
  const locks = new KeyedLock();
  const vendor = s.vendor_agent_url ? createVendorAgent(s.vendor_agent_url) : undefined;
  const dispatcher = new Dispatcher({ config, log, methods: opts.methods ?? allMethods(), run: opts.run, locks, vendor, metrics });

  const app = Fastify({
    loggerInstance: log.child({ component: 'http' }),
    logController: new LogController({ disableRequestLogging: true }), // the dispatcher logs each call once
    bodyLimit: s.body_limit_bytes,
    https: tls ? { cert: tls.cert, key: tls.key } : null,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // Receiving a request may take at most this long (a slow sender cannot hold a socket forever);
    // the reply is not bounded here: long calls are governed by their own deadline.
    requestTimeout: 300_000,
    connectionTimeout: 0,
  }) as unknown as FastifyInstance;
  app.decorate('brick', { dispatcher, metrics, locks });
  app.addHook('onClose', async () => vendor?.close());

  // Every body, whatever its content type, is raw bytes for the codec.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.register(basicAuth, {
    authenticate: { realm: 'brick' },
    async validate(user: string, pass: string) {
      // Both compared every time, in constant time, so timing tells nothing about which was wrong.
      const okUser = sameSecret(user, s.user);
      const okPass = sameSecret(pass, password);
      if (!(okUser && okPass)) throw new Error('bad credentials');
    },
  });
  app.after(() => {
    app.addHook('onRequest', (req, reply, done) => {
      if (req.method === 'GET' && req.routeOptions.url === '/healthz') return done();
      app.basicAuth(req, reply, done);
    });
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode ?? 500;
    if (status === 401) {
      log.warn({ remote: req.ip, url: req.url }, 'authentication failed');
      return reply.code(401).type('text/plain').send('authentication required\n');
    }
    if (status >= 400 && status < 500) {
      log.info({ remote: req.ip, url: req.url, status, code: err.code }, 'request refused');
      const msg = status === 413 ? `the request body is larger than server.body_limit_bytes (${s.body_limit_bytes})` : err.message;
      return reply.code(status).type('text/plain').send(msg + '\n');
    }
    log.error({ err, url: req.url }, 'internal error handling a request');
    if (req.method === 'POST' && (XML_PATHS as readonly string[]).includes(req.routeOptions.url ?? '')) {
      return reply.code(200).type('text/xml; charset=utf-8').send(serializeFault(FAULT_CODES.INTERNAL.code, 'internal error in brick; the brick log has the details'));
    }
    return reply.code(500).type('text/plain').send('internal error; the brick log has the details\n');
  });

  for (const path of XML_PATHS) {
    app.post(path, async (req, reply) => {
      const ac = new AbortController();
      const onClose = () => {
        if (!reply.raw.writableFinished) ac.abort();
      };
      reply.raw.once('close', onClose);
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const xml = await dispatcher.handle(body, { authorization: req.headers.authorization, signal: ac.signal });
      reply.raw.off('close', onClose);
      return reply.code(200).type('text/xml; charset=utf-8').send(xml);
    });
  }

  app.get('/healthz', async (_req, reply) => reply.type('application/json').send({ status: 'ok', version: BRICK_VERSION }));

  if (s.metrics) {
    app.get('/metrics', async (_req, reply) => reply.type(metrics.contentType).send(await metrics.text()));
  }
  return app;
}
