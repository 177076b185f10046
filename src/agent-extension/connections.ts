// The connection cap of brick serve (server.max_connections, kept below the open-file limit): when
// it is reached, a new connection takes the slot of the oldest one that has not authenticated yet
// (a slowloris or a flood of strangers cannot hold the last slots against CloudStack); only when
// every connection has authenticated is the new one refused. Each time the cap bites it counts in
// a metric, and a log line says so at most once per interval, with the counts since the last one.
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../shared/log.js';

export interface ConnectionEvents {
  connectionCapped(action: 'evicted' | 'refused'): void;
}

export const LOG_EVERY_MS = 10_000;

export class ConnectionGuard {
  /** Insertion order is age: the first unauthenticated entry is the oldest. */
  private readonly open = new Map<Socket, { authenticated: boolean }>();
  private evicted = 0;
  private refused = 0;
  private lastLog = -Infinity;

  /** @param now the clock the log interval is measured on: monotonic (a wall-clock step back must not silence the line). */
  constructor(
    readonly max: number,
    private readonly log: Logger,
    private readonly events?: ConnectionEvents,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.open.size;
  }

  attach(server: Server): void {
    server.on('connection', (socket: Socket) => this.admit(socket));
  }

  private admit(socket: Socket): void {
    if (this.open.size >= this.max) {
      let victim: Socket | undefined;
      for (const [s, st] of this.open) {
        if (!st.authenticated) {
          victim = s;
          break;
        }
      }
      if (victim) {
        this.open.delete(victim);
        victim.destroy();
        this.evicted++;
        this.events?.connectionCapped('evicted');
      } else {
        socket.destroy();
        this.refused++;
        this.events?.connectionCapped('refused');
        this.report();
        return;
      }
      this.report();
    }
    this.open.set(socket, { authenticated: false });
    socket.once('close', () => this.open.delete(socket));
  }

  /** The request on this socket (plain or TLS) passed authentication. */
  authenticated(socket: Socket): void {
    const st = this.open.get(socket) ?? this.open.get((socket as Socket & { _parent?: Socket })._parent as Socket);
    if (st) st.authenticated = true;
  }

  /**
   * brick is stopping: close the connections not authenticated (none carries a call; some are not
   * even HTTP yet, a TLS handshake left half-done, which the server's own closing never sees), or
   * every connection once the stop's grace is over.
   */
  closeForStop(all: boolean): void {
    for (const [s, st] of this.open) if (all || !st.authenticated) s.destroy();
  }

  private report(): void {
    const now = this.now();
    if (now - this.lastLog < LOG_EVERY_MS) return;
    this.lastLog = now;
    this.log.warn(
      { max_connections: this.max, open: this.open.size, evicted_unauthenticated: this.evicted, refused: this.refused },
      'connection cap reached (server.max_connections): unauthenticated connections closed to make room, or new ones refused when all are authenticated',
    );
    this.evicted = this.refused = 0;
  }
}

/** Room kept for files other than client connections (logs, the runner's pipes, config, libvirt). */
const FILE_RESERVE = 128;

/** The open-file soft limit of this process, from /proc/self/limits (undefined when unknown). */
export function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m && m[1] !== 'unlimited' ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** server.max_connections, lowered (with a warning) when the open-file limit leaves less room. */
export function effectiveMaxConnections(configured: number, log: Logger): number {
  const nofile = openFileLimit();
  if (nofile === undefined || configured + FILE_RESERVE <= nofile) return configured;
  const max = Math.max(8, nofile - FILE_RESERVE);
  log.warn({ max_connections: configured, open_file_limit: nofile, using: max }, 'server.max_connections is too close to the open-file limit (LimitNOFILE); using less');
  return max;
}

const LINGER_MS = 2_000;

/**
 * Close a connection whose request body was not read to its end, after the reply: send FIN, stop
 * reading (the rest of the body is never read: no work for it), and close for good LINGER_MS later
 * or when the client closes. Closing at once would make the kernel answer the unread bytes with a
 * reset, which can destroy the reply before the client reads it (it would see "connection reset"
 * instead of the 413 or the fault).
 */
export function closeAfterReply(socket: Socket): void {
  const s = socket as Socket & { destroySoon?: () => void; _handle?: { readStop?: () => number } | null };
  s.destroySoon = () => {
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    socket.end();
    s._handle?.readStop?.();
  };
}
