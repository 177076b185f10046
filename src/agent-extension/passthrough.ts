// Methods brick does not serve go to the vendor agent unchanged, so CloudStack can point at brick
// alone. The raw request body is forwarded and the vendor's reply (value or fault) comes back as
// is. Credentials: user:password in vendor_agent_url when given, else the caller's own
// Authorization header (the Ovm3 client sends the agent's credentials to both).
// The OVM agent serves a self-signed certificate; it is accepted for a loopback vendor URL only.
import http from 'node:http';
import { BrickError } from '../shared/errors.js';
import { isLoopback } from '../config/rules.js';
import { ReplyTimeout, httpsLib, postXml, splitUrlCredentials } from './client.js';

export interface VendorAgent {
  readonly url: string;
  /** Forward a raw methodCall body; resolves to the vendor's raw reply body. Throws BrickError('VENDOR_AGENT'). */
  forward(body: Buffer | string, authorization: string | undefined, timeoutMs: number, signal?: AbortSignal): Promise<Buffer>;
  close(): void;
}

export function createVendorAgent(vendorUrl: string): VendorAgent {
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
        res = await postXml({ url: vendorUrl, body, authorization: fixedAuth ?? authorization, timeoutMs, signal, insecure, agent });
      } catch (e) {
        if (e instanceof ReplyTimeout && !signal?.aborted) {
          // It was reached: a slow agent is not a missing one.
          throw new BrickError('TIMEOUT', `the vendor agent at ${shown} accepted the connection but did not answer within ${timeoutMs / 1000} s (server.call_timeout_s)`, { url: shown });
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
      return res.body;
    },
    close() {
      agent.destroy();
    },
  };
}
