// Methods brick does not serve go to the vendor agent unchanged, so CloudStack can point at brick
// alone. The raw request body is forwarded and the vendor's reply (value or fault) comes back as
// is (a reply that is not XML-RPC at all is a VENDOR_AGENT fault). Credentials: user:password in
// vendor_agent_url when given, else the caller's own Authorization header (the Ovm3 client sends
// the agent's credentials to both).
// The OVM agent serves a self-signed certificate; it is accepted for a loopback vendor URL only.
import http from 'node:http';
import { BrickError } from '../shared/errors.js';
import { isLoopback } from '../config/rules.js';
import { ReplyTimeout, ReplyTooLarge, httpsLib, postXml, splitUrlCredentials } from './client.js';

export interface VendorAgent {
  readonly url: string;
  /** Forward a raw methodCall body; resolves to the vendor's raw reply body. Throws BrickError('VENDOR_AGENT'). */
  forward(body: Buffer | string, authorization: string | undefined, timeoutMs: number, signal?: AbortSignal): Promise<Buffer>;
  close(): void;
}

/**
 * `maxReplyBytes`: the largest reply taken (server.body_limit_bytes, the largest body a call may
 * carry, file contents included); a larger one is a VENDOR_AGENT fault, read no further.
 */
export function createVendorAgent(vendorUrl: string, maxReplyBytes: number): VendorAgent {
  const { url, authorization: fixedAuth } = splitUrlCredentials(vendorUrl);
  const shown = url.origin + url.pathname; // never the credentials
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const insecure = url.protocol === 'https:' && isLoopback(host);
  const agent = url.protocol === 'https:' ? new (httpsLib().Agent)({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  return {
    url: shown,
    async forward(body, authorization, timeoutMs, signal) {
      let res;
      try {
        res = await postXml({ url: vendorUrl, body, authorization: fixedAuth ?? authorization, timeoutMs, signal, insecure, agent, maxBytes: maxReplyBytes });
      } catch (e) {
        if (e instanceof ReplyTimeout && !signal?.aborted) {
          // It was reached: a slow agent is not a missing one.
          throw new BrickError('TIMEOUT', `the vendor agent at ${shown} accepted the connection but did not answer within ${timeoutMs / 1000} s (server.call_timeout_s)`, { url: shown });
        }
        if (e instanceof ReplyTooLarge) {
          throw new BrickError('VENDOR_AGENT', `the vendor agent at ${shown} answered with a reply larger than server.body_limit_bytes (${maxReplyBytes} bytes); refused`, {
            url: shown,
          });
        }
        const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
        throw new BrickError('VENDOR_AGENT', `the vendor agent at ${shown} could not be reached (${why}); is it running?`, { url: shown });
      }
      if (res.status !== 200) {
        throw new BrickError('VENDOR_AGENT', `the vendor agent at ${shown} answered HTTP ${res.status}${res.status === 401 ? ' (check the credentials it expects)' : ''}`, {
          url: shown,
          status: res.status,
        });
      }
      if (!looksLikeReply(res.body)) {
        const start = res.body.subarray(0, 60).toString('latin1').replace(/[^\x20-\x7e]/g, '?');
        throw new BrickError('VENDOR_AGENT', `the vendor agent at ${shown} answered with something that is not an XML-RPC reply (it starts "${start}")`, { url: shown });
      }
      return res.body;
    },
    close() {
      agent.destroy();
    },
  };
}

/** How far into a reply its <methodResponse> may start (an XML declaration, comments, a BOM before it). */
const SNIFF_BYTES = 1024;

/**
 * Whether a vendor reply is an XML-RPC reply at all: <methodResponse near its start. Only that is
 * checked (the reply is passed on byte for byte, never parsed here): what is not, an HTML error page
 * or garbage with HTTP 200, would reach the caller as a reply it cannot parse instead of a fault.
 */
function looksLikeReply(body: Buffer): boolean {
  return body.subarray(0, SNIFF_BYTES).includes('<methodResponse');
}
