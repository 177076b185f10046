// `brick serve`: create missing credentials when asked to, start the server, log where it
// listens, and stop cleanly on SIGTERM/SIGINT/SIGQUIT (in-flight calls get a grace period); the other
// signals that would end the process are ignored.
import net from 'node:net';
import type { FastifyListenOptions } from 'fastify';
import type { Config } from '../config/schema.js';
import { batchedStdout, createLogger, type LogFormat } from '../shared/log.js';
import { run } from '../shared/run.js';
import { sweepLeftTempDirs } from '../shared/temp-dirs.js';
import { BrickError } from '../shared/errors.js';
import { isLoopback, parseListen } from '../config/rules.js';
import { createServer } from './server.js';
import { credentialWarnings, generateCredentials } from './credentials.js';
import { startNetworkGc } from '../network/bridge/operations.js';
import { logHostTools } from '../shared/host-tools.js';
import { safeApply } from '../network/host/safe-apply.js';
import { IGNORED_SIGNALS, STOP_SIGNALS, onSignals } from '../shared/signals.js';

export interface ServeOptions {
  logFormat: LogFormat;
  logLevel?: string;
  configPath?: string;
  /** Tests: resolve when the server listens (with its URL). */
  onListening?: (url: string) => void;
  /** Tests: stop when this aborts, as on SIGTERM. */
  signal?: AbortSignal;
}

const SHUTDOWN_GRACE_MS = 10_000;
/** How long a stop waits for stdout's reader (journald) to take the last lines; then they are given up. */
const STOP_LOG_MS = 2_000;

/** Run the XML-RPC server until SIGTERM/SIGINT/SIGQUIT; resolves to the exit code. */
export async function serve(config: Config, opts: ServeOptions): Promise<number> {
  const stdout = batchedStdout();
  const log = createLogger({ svc: 'agent', format: opts.logFormat, level: opts.logLevel, destination: stdout });
  const listen = parseListen(config.server.listen);
  if (!listen) throw new BrickError('INVALID_PARAMS', `server.listen: must be host:port, got "${config.server.listen}"`);
  // Take SIGTERM/SIGINT/SIGQUIT from the start: until a JS listener exists the kernel's default kills
  // the process, so a stop sent while brick starts up would skip the clean stop. One that arrives
  // before the server listens is kept and carried out once it does. The other signals whose default
  // would end the process mid-call (SIGHUP from a closing terminal or a `kill -HUP` meant as a
  // reload, SIGUSR2, SIGALRM...) are ignored and said in the log.
  let stopRequest: string | undefined;
  let onStopRequest: ((why: string) => void) | undefined;
  const request = (why: string) => (onStopRequest ? onStopRequest(why) : (stopRequest ??= why));
  const onAbort = () => request('abort');
  const offStop = onSignals(STOP_SIGNALS, request);
  const offIgnored = onSignals(IGNORED_SIGNALS, (sig) => log.warn({ signal: sig }, `${sig} ignored: brick serve stops only on SIGTERM, SIGINT or SIGQUIT`));
  const unhook = () => {
    offStop();
    offIgnored();
    opts.signal?.removeEventListener('abort', onAbort);
  };
  if (opts.signal?.aborted) stopRequest = 'abort';
  else opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await listenAndServe(config, opts, log, listen, (stop) => {
      onStopRequest = stop;
      if (stopRequest) stop(stopRequest);
    });
  } finally {
    unhook();
    // Every line out before the exit, "stopped" the last: a slow reader gets them all; one that has
    // stopped reading gets STOP_LOG_MS (then the entry point's exit drops the rest: cli/main.ts).
    await stdout.writeOut(STOP_LOG_MS);
  }
}

/**
 * The listening socket, bound here (synchronously, no DNS) when the host is a numeric address and
 * this Node has net.BoundSocket (the pinned Node 24 has): server.listen with a host always goes
 * through dns.lookup and then tests the address against Node's IPv6 expression, whose first use
 * compiles it (12 ms in a plain node here; dist/brick answers its first call 8 ms sooner without
 * it, median of 30 alternating starts). undefined: fastify binds ('localhost', a name it resolves,
 * or a Node without BoundSocket).
 */
function bindListen(listen: { host: string; port: number }): net.BoundSocket | undefined {
  const Bound = (net as { BoundSocket?: typeof net.BoundSocket }).BoundSocket;
  if (typeof Bound !== 'function' || net.isIP(listen.host) === 0) return undefined;
  return new Bound({ host: listen.host, port: listen.port });
}

/** Credentials, listen, log where, then serve until the stop handed to onStoppable is called. */
async function listenAndServe(
  config: Config,
  opts: ServeOptions,
  log: ReturnType<typeof createLogger>,
  listen: { host: string; port: number },
  onStoppable: (stop: (why: string) => void) => void,
): Promise<number> {
  // Before any call: a change a killed or crashed brick left waiting for confirmation is undone.
  await safeApply.recover(config, run, log).catch((e) => log.error({ err: (e as Error).message }, 'could not check for a pending network change left by a previous brick'));
  // Temporary directories (hook, define, domR upload) a killed brick left: its pid is gone. Listed
  // on the threadpool while the server is set up here; done before it listens.
  const sweeping = sweepLeftTempDirs();
  let app: ReturnType<typeof createServer>;
  let generated: Awaited<ReturnType<typeof generateCredentials>>;
  try {
    generated = await generateCredentials(config, log, run);
    for (const warning of credentialWarnings(config)) log.warn(warning);
    app = createServer(config, { log, defaultMetrics: true });
  } finally {
    const swept = await sweeping;
    if (swept.length) log.info({ removed: swept }, 'removed temporary directories a stopped brick left');
  }
  let bound: net.BoundSocket | undefined;
  try {
    bound = bindListen(listen);
    // fastify hands these options to server.listen as they are; the host keeps it from taking the
    // listen for 'localhost' (its default when no host is given), which it resolves and binds itself.
    await app.listen(bound ? ({ handle: bound, host: listen.host, port: listen.port } as FastifyListenOptions) : { host: listen.host, port: listen.port });
  } catch (e) {
    bound?.[Symbol.dispose](); // not adopted: closed here (a no-op once the server has it)
    const code = (e as NodeJS.ErrnoException).code;
    await app.close().catch(() => {});
    if (code === 'EADDRINUSE') throw new BrickError('CONFLICT', `server.listen ${config.server.listen}: the address is in use (another brick serve, or the vendor agent?)`);
    if (code === 'EADDRNOTAVAIL') throw new BrickError('INVALID_PARAMS', `server.listen ${config.server.listen}: no such address on this host`);
    if (code === 'EACCES') throw new BrickError('INVALID_PARAMS', `server.listen ${config.server.listen}: permission denied for this port`);
    throw e;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : listen.port;
  const scheme = config.server.tls_cert ? 'https' : 'http';
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  const url = `${scheme}://${host}:${port}/`;
  if (generated.password && isLoopback(listen.host)) {
    // The sandbox relies on this line so a person can use `brick call` right away.
    process.stdout.write(`brick: generated password for user ${config.server.user}: ${generated.password} (saved in ${generated.passwordFile})\n`);
  }
  log.info(
    {
      url,
      tls: scheme === 'https',
      user: config.server.user,
      password_file: config.server.password ? '(inline password)' : config.server.password_file,
      vendor_agent_url: config.server.vendor_agent_url || undefined,
      methods: app.brick.dispatcher.methods.size,
      config: opts.configPath,
    },
    'brick agent extension listening',
  );
  log.flush(); // this line is waited for (scripts, tests, a person): not held for the next batch
  // GC on a timer (network.gc_interval_s > 0) takes the same per-bridge locks as the calls.
  const stopGc = startNetworkGc(config, log, app.brick.locks, run);
  if (config.network.gc_interval_s > 0) log.info({ every_s: config.network.gc_interval_s }, 'network gc on a timer');
  // The host-tool registry resolves a tool on its first use (a call that needs `ip` waits for that
  // one probe); the report of too-old or missing tools is made a second after listening, one tool
  // at a time, so the version probes (a child each) never stand between the start and the first call.
  setTimeout(() => logHostTools(log), 1000).unref();
  opts.onListening?.(url);

  return new Promise<number>((resolve) => {
    let stopping = false;
    let force: NodeJS.Timeout | undefined;
    const stop = (why: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal: why }, 'stopping: no new calls, waiting for the ones in flight');
      // Not unref'd: it is what keeps the process alive until the stop has run to its end. A
      // connection left to linger after a refused request (FIN sent, not reading: connections.ts)
      // keeps nothing alive, and with only such sockets left the process exited at once, before
      // app.close resolved: no rollback of a pending network change, no "stopped". Cleared in finish.
      force = setTimeout(() => {
        log.warn({ grace_ms: SHUTDOWN_GRACE_MS }, 'calls still running after the grace period; exiting anyway');
        app.server.closeAllConnections?.();
        app.brick.connections.closeForStop(true);
        void finish(0);
      }, SHUTDOWN_GRACE_MS);
      // Unauthenticated connections carry no call: closed now. A TLS handshake a peer leaves
      // half-done is no HTTP connection, so app.close would wait for it (the grace, then the
      // handshake timeout: 120 s, past systemd's TimeoutStopSec).
      app.brick.connections.closeForStop(false);
      app.close().then(
        () => finish(0),
        (e) => {
          log.error({ err: e }, 'error while stopping');
          return finish(2);
        },
      );
    };
    let done = false;
    const finish = async (code: number) => {
      if (done) return;
      done = true;
      clearTimeout(force);
      stopGc();
      // Nobody can confirm a pending network change once brick is gone: undo it now.
      await safeApply.rollbackNow().catch((e) => log.error({ err: (e as Error).message }, 'rolling back the pending network change failed'));
      log.info('stopped');
      resolve(code);
    };
    onStoppable(stop);
  });
}
