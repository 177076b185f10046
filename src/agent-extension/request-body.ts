// Reading an XML-RPC request body with its limits enforced while it arrives (body-scan.ts): a body
// is refused as soon as it passes a count, a depth or its size limit, without reading the rest,
// and the size limit depends on the method named at the top of the body: only calls that carry
// file contents may use server.body_limit_bytes; every other call has server.call_body_limit_bytes.
// A body must also arrive in time: server.header_timeout_s plus its limit at
// server.body_min_rate_bytes_s. The work per chunk is small, so a large or abusive body never holds
// the event loop; other callers keep being answered.
import type { Readable } from 'node:stream';
import { CodecError } from './codec.js';
import { BodyScan, type ScanLimits } from './body-scan.js';
import { requestDeadlines } from './deadlines.js';
import { RELEASE_EVERY_BYTES, releaseReadBuffers } from './read-buffers.js';

export interface BodyLimits extends ScanLimits {
  /** Largest body of an ordinary call. */
  callBodyLimit: number;
  /** Largest body of a call that carries file contents. */
  fileBodyLimit: number;
  /** Added to every body deadline (the header timeout). */
  baseTimeoutMs: number;
  /** The slowest a body may arrive: its deadline is baseTimeoutMs + limit / this. */
  minBytesPerS: number;
}

/** A body read whole: the bytes and where its long text runs lie. */
export interface ScannedBody {
  buf: Buffer;
  runs: readonly number[];
  method: string | undefined;
}

/** A body refused by a count or depth limit: a PARSE_ERROR fault, the rest of the body unread. */
export class RefusedBody {
  constructor(
    readonly error: CodecError,
    readonly bytes: number,
  ) {}
}

/** An HTTP-level refusal (413 too large, 408 too slow, 400 broken off). */
export class BodyHttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function bodyDeadlineMs(limits: BodyLimits, limit: number): number {
  return limits.baseTimeoutMs + Math.ceil((limit / limits.minBytesPerS) * 1000);
}

/**
 * Read `payload` under the limits. `limitFor(method, known)` gives the size limit once the method
 * is known (known = true; method undefined when it was not written as plain text). Calls `done`
 * exactly once, with a ScannedBody, a RefusedBody or a BodyHttpError.
 */
export function readBody(
  payload: Readable,
  contentLength: number | undefined,
  limits: BodyLimits,
  limitFor: (method: string | undefined) => number,
  done: (err: BodyHttpError | null, body?: ScannedBody | RefusedBody) => void,
): void {
  const scan = new BodyScan(limits);
  let limit = limits.fileBodyLimit; // until the method is known
  let known = false;
  let finished = false;
  let chunks: Buffer[] | undefined = [];
  let whole: Buffer | undefined; // preallocated once the method and a fitting Content-Length are known
  let filled = 0;
  let released = 0; // `filled` at the last releaseReadBuffers()
  const tooLarge = () =>
    new BodyHttpError(
      413,
      'FST_ERR_CTP_BODY_TOO_LARGE',
      limit === limits.fileBodyLimit
        ? `the request body is larger than server.body_limit_bytes (${limits.fileBodyLimit})`
        : `the request body is larger than server.call_body_limit_bytes (${limits.callBodyLimit}); only calls that carry file contents may be larger`,
    );
  // On the deadlines' own (monotonic) clock: a wall-clock step must neither end a body early nor stretch its deadline.
  const started = requestDeadlines.now();
  let deadline = requestDeadlines.after(bodyDeadlineMs(limits, limit), onTimeout);
  function onTimeout() {
    finish(new BodyHttpError(408, 'BRICK_BODY_TIMEOUT', `the request body did not arrive within ${Math.round(bodyDeadlineMs(limits, limit) / 1000)} s (server.header_timeout_s + its size limit at server.body_min_rate_bytes_s)`));
  }
  function finish(err: BodyHttpError | null, body?: ScannedBody | RefusedBody) {
    if (finished) return;
    finished = true;
    deadline.cancel();
    payload.off('data', onData);
    payload.off('end', onEnd);
    payload.off('error', onError);
    payload.off('aborted', onAborted);
    payload.off('close', onClose);
    chunks = undefined;
    whole = undefined;
    done(err, body);
  }
  function learnMethod() {
    known = true;
    limit = limitFor(scan.method);
    deadline.cancel();
    deadline = requestDeadlines.after(Math.max(0, bodyDeadlineMs(limits, limit) - (requestDeadlines.now() - started)), onTimeout);
    if (contentLength !== undefined && contentLength > limit) return false;
    // What came so far (scan.bytes: every chunk is scanned before it is kept) is the whole body (an
    // ordinary call arrives in one chunk): keep it as it is.
    if (contentLength !== undefined && chunks && scan.bytes < contentLength) {
      // More to come: one copy into a buffer of the final size instead of a concat at the end (a
      // small one from Node's pool: its own ArrayBuffer cost 1.8 us per call at one connection).
      whole = contentLength <= 4096 ? Buffer.allocUnsafe(contentLength) : Buffer.allocUnsafeSlow(contentLength);
      for (const c of chunks) {
        if (filled + c.length > contentLength) return true; // longer than declared: node refuses it
        c.copy(whole, filled);
        filled += c.length;
      }
      chunks = undefined;
    }
    return true;
  }
  function onData(chunk: Buffer) {
    if (finished) return;
    try {
      scan.push(chunk);
    } catch (e) {
      if (e instanceof CodecError) return finish(null, new RefusedBody(e, scan.bytes + chunk.length)); // read so far
      throw e;
    }
    if (!known && (scan.methodKnown || scan.bytes > limits.callBodyLimit)) {
      // A body that names no method within the ordinary limit is an ordinary call.
      if (!scan.methodKnown) {
        known = true;
        limit = limits.callBodyLimit;
      }
      if (whole === undefined) chunks!.push(chunk);
      else {
        chunk.copy(whole, filled);
        filled += chunk.length;
      }
      if (scan.methodKnown && !learnMethod()) return finish(tooLarge());
    } else if (whole) {
      if (filled + chunk.length > whole.length) return finish(tooLarge());
      chunk.copy(whole, filled);
      filled += chunk.length;
      // A large body: the reads copied so far are garbage; free them as the body arrives.
      if (filled - released >= RELEASE_EVERY_BYTES) {
        released = filled;
        releaseReadBuffers();
      }
    } else chunks!.push(chunk);
    if (scan.bytes > limit) return finish(tooLarge());
  }
  function onEnd() {
    const buf = whole ? (filled === whole.length ? whole : whole.subarray(0, filled)) : chunks!.length === 1 ? chunks![0] : Buffer.concat(chunks!);
    finish(null, { buf, runs: scan.runs, method: scan.method });
  }
  function onError() {
    finish(new BodyHttpError(400, 'BRICK_BODY_ABORTED', 'the request body was broken off'));
  }
  function onAborted() {
    onError();
  }
  function onClose() {
    if (!payload.readableEnded) onError();
  }
  if (contentLength !== undefined && contentLength > limit) return finish(tooLarge());
  payload.on('data', onData);
  payload.on('end', onEnd);
  payload.on('error', onError);
  payload.on('aborted', onAborted);
  payload.on('close', onClose);
}
