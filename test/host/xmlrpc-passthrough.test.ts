// vendor_agent_url: methods brick does not serve go to a second XML-RPC server (Python's
// SimpleXMLRPCServer, standing in for the OVM agent) unchanged, and its reply or fault comes back
// as is. Unreachable vendor → VENDOR_AGENT fault.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer as netServer } from 'node:net';
import { startTestServer, type TestServer } from '../fixtures/server.js';
import { method } from '../../src/rpc/params.js';
import { XmlRpcFault, serializeMethodCall } from '../../src/agent-extension/codec.js';
import { postXml, basicAuth } from '../../src/agent-extension/client.js';

const VENDOR = String.raw`
import sys, xmlrpc.client
from xmlrpc.server import SimpleXMLRPCServer, SimpleXMLRPCRequestHandler
from socketserver import ThreadingMixIn
seen = {}
class H(SimpleXMLRPCRequestHandler):
    rpc_paths = ('/', '/RPC2')
    def do_POST(self):
        seen['auth'] = self.headers.get('Authorization')
        if self.path == '/garbage':
            self.rfile.read(int(self.headers.get('Content-Length', 0)))
            out = b'Internal error: <b>traceback</b>\x00\xff'
            self.send_response(200)
            self.send_header('Content-Type', 'text/html')
            self.send_header('Content-Length', str(len(out)))
            self.end_headers()
            self.wfile.write(out)
            return
        if self.path.startswith('/big/'):
            # A valid reply of the given size; /big/N/nolen sends no Content-Length (ends at close).
            self.rfile.read(int(self.headers.get('Content-Length', 0)))
            parts = self.path.split('/')
            n = int(parts[2])
            head = b'<?xml version="1.0"?><methodResponse><params><param><value><string>'
            tail = b'</string></value></param></params></methodResponse>'
            out = head + b'x' * (n - len(head) - len(tail)) + tail
            self.send_response(200)
            self.send_header('Content-Type', 'text/xml')
            if parts[-1] != 'nolen': self.send_header('Content-Length', str(len(out)))
            self.end_headers()
            try:
                for i in range(0, len(out), 65536): self.wfile.write(out[i:i + 65536])
            except OSError: pass
            self.close_connection = True
            return
        return super().do_POST()
    def log_message(self, *a): pass
class S(ThreadingMixIn, SimpleXMLRPCServer): daemon_threads = True
s = S(('127.0.0.1', 0), requestHandler=H, allow_none=True, use_builtin_types=True)
def echo(x): return x
def whoami(): return seen.get('auth') or ''
def refuse(): raise xmlrpc.client.Fault(42, 'vendor says no')
def stall(s):
    import time
    time.sleep(s)
    return 'late'
def get_api_version(): return 3
def list_vms(): return [{'name': 'v1', 'memory': 4096}]
for f in (echo, whoami, refuse, get_api_version, list_vms, stall): s.register_function(f)
print(s.server_address[1], flush=True)
s.serve_forever()
`;

let vendor: ChildProcess | undefined;
let vendorPort = 0;
const servers: TestServer[] = [];

const local = [
  method({ name: 'local_only', params: [], returns: 'string', help: 'Answered by brick itself.', handler: async () => 'brick' }),
];

before(async () => {
  vendor = spawn('python3', ['-c', VENDOR], { stdio: ['ignore', 'pipe', 'pipe'] });
  vendorPort = await new Promise<number>((resolve, reject) => {
    let out = '';
    vendor!.on('error', (e) => reject(process.env.CI === 'true' || (e as NodeJS.ErrnoException).code !== 'ENOENT' ? e : new Error('python3 missing')));
    vendor!.stderr!.on('data', (d) => (out += d));
    vendor!.stdout!.once('data', (d) => resolve(Number(String(d).trim())));
    vendor!.on('exit', (c) => reject(new Error(`vendor stand-in exited ${c}: ${out}`)));
  });
});
after(async () => {
  for (const s of servers) await s.close();
  vendor?.kill('SIGKILL');
});

async function brick(vendorUrl: string): Promise<TestServer> {
  const s = await startTestServer({ server: { vendor_agent_url: vendorUrl } }, local);
  servers.push(s);
  return s;
}

async function fault(p: Promise<unknown>): Promise<XmlRpcFault> {
  try {
    await p;
  } catch (e) {
    if (e instanceof XmlRpcFault) return e;
    throw e;
  }
  throw new Error('no fault');
}

test('unknown methods are passed to the vendor agent; its replies and faults come back as is', async () => {
  const srv = await brick(`http://127.0.0.1:${vendorPort}/`);
  assert.equal(await srv.call('local_only'), 'brick');
  assert.equal(await srv.call('get_api_version'), 3);
  assert.deepEqual(await srv.call('echo', { a: [1, null, 'x'], n: 7 }), Object.assign(Object.create(null), { a: [1, null, 'x'], n: 7 }));
  const vms = (await srv.call('list_vms')) as Array<Record<string, unknown>>;
  assert.equal(vms[0].name, 'v1');
  assert.equal(vms[0].memory, 4096);
  const f = await fault(srv.call('refuse'));
  assert.equal(f.faultCode, 42);
  assert.equal(f.faultString, 'vendor says no');
  // The vendor's reply body is returned byte for byte.
  const body = serializeMethodCall('get_api_version', []);
  const viaBrick = await postXml({ url: srv.url, body, authorization: basicAuth(srv.user, srv.password), timeoutMs: 10_000 });
  const direct = await postXml({ url: `http://127.0.0.1:${vendorPort}/`, body, timeoutMs: 10_000 });
  assert.equal(viaBrick.status, 200);
  assert.equal(viaBrick.body.toString(), direct.body.toString());
  // system.listMethods lists brick's own methods only.
  assert.ok(!((await srv.call('system.listMethods')) as string[]).includes('echo'));
  // Each passed-through call is logged once, marked as such.
  assert.ok(srv.logs.some((l) => l.msg === 'call' && l.method === 'get_api_version' && l.vendor === true && l.outcome === 'ok'));
});

test('credentials: the caller\'s Authorization goes to the vendor, unless the URL carries its own', async () => {
  const a = await brick(`http://127.0.0.1:${vendorPort}/`);
  assert.equal(await a.call('whoami'), basicAuth(a.user, a.password));
  const b = await brick(`http://agentuser:agent%40pw@127.0.0.1:${vendorPort}/`);
  assert.equal(await b.call('whoami'), basicAuth('agentuser', 'agent@pw'));
});

test('multicall mixes brick and vendor methods', async () => {
  const srv = await brick(`http://127.0.0.1:${vendorPort}/RPC2`);
  const r = (await srv.call('system.multicall', [
    { methodName: 'local_only', params: [] },
    { methodName: 'echo', params: ['hi'] },
    { methodName: 'refuse', params: [] },
  ])) as unknown[];
  assert.deepEqual(r[0], ['brick']);
  assert.deepEqual(r[1], ['hi']);
  assert.deepEqual({ ...(r[2] as object) }, { faultCode: 42, faultString: 'vendor says no' });
});

test('an unreachable vendor agent is a VENDOR_AGENT fault naming it; without vendor_agent_url unknown is METHOD_NOT_FOUND', async () => {
  // A port that was free a moment ago and nothing listens on.
  const port = await new Promise<number>((resolve) => {
    const s = netServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const srv = await brick(`http://127.0.0.1:${port}/`);
  const f = await fault(srv.call('get_api_version'));
  assert.equal(f.faultCode, 1008);
  assert.match(f.faultString, new RegExp(`vendor agent at http://127.0.0.1:${port}/ could not be reached \\(ECONNREFUSED\\)`));
  assert.equal(await srv.call('local_only'), 'brick');
  const plain = await startTestServer({}, local);
  servers.push(plain);
  assert.equal((await fault(plain.call('get_api_version'))).faultCode, -32601);
});

test('metrics: a request brick could not parse is counted as "(unparsed)", not as a call passed to the vendor agent', async () => {
  const srv = await brick(`http://127.0.0.1:${vendorPort}/`);
  const r = await postXml({ url: srv.url, body: 'not xml', authorization: basicAuth(srv.user, srv.password), timeoutMs: 10_000 });
  assert.match(r.body.toString(), /<name>faultCode<\/name><value><int>-32700<\/int>/);
  assert.equal(await srv.call('get_api_version'), 3);
  const text = await srv.app.brick.metrics.text();
  const calls = text.split('\n').filter((l) => l.startsWith('brick_xmlrpc_calls_total{'));
  assert.deepEqual(calls.sort(), [
    'brick_xmlrpc_calls_total{method="(unparsed)",outcome="fault",fault="PARSE_ERROR"} 1',
    'brick_xmlrpc_calls_total{method="(vendor)",outcome="ok",fault=""} 1',
  ]);
});

test('a vendor agent that accepts the connection and does not answer in time: TIMEOUT naming the deadline, not "could not be reached"', async () => {
  const srv = await startTestServer({ server: { vendor_agent_url: `http://127.0.0.1:${vendorPort}/`, call_timeout_s: 1 } }, local);
  servers.push(srv);
  const f = await fault(srv.call('stall', 4));
  assert.equal(f.faultCode, 1004, f.faultString);
  assert.match(f.faultString, new RegExp(`^the vendor agent at http://127.0.0.1:${vendorPort}/ accepted the connection but did not answer within 1 s \\(server\\.call_timeout_s\\)`));
  assert.doesNotMatch(f.faultString, /could not be reached|is it running/);
});

test('a vendor reply that is not XML-RPC (HTTP 200, garbage) is a VENDOR_AGENT fault, not passed on as it is', async () => {
  const srv = await brick(`http://127.0.0.1:${vendorPort}/garbage`);
  const f = await fault(srv.call('get_api_version'));
  assert.equal(f.faultCode, 1008);
  assert.match(f.faultString, new RegExp(`^the vendor agent at http://127.0.0.1:${vendorPort}/garbage answered with something that is not an XML-RPC reply`));
  const r = (await srv.call('system.multicall', [{ methodName: 'get_api_version', params: [] }])) as unknown[];
  assert.equal((r[0] as { faultCode: number }).faultCode, 1008);
});

test('a vendor reply larger than server.body_limit_bytes is a VENDOR_AGENT fault, with or without a Content-Length; one within it passes', async () => {
  const limit = 256 * 1024;
  for (const how of ['', '/nolen']) {
    const srv = await startTestServer({ server: { vendor_agent_url: `http://127.0.0.1:${vendorPort}/big/${limit + 1}${how}`, body_limit_bytes: limit } }, local);
    servers.push(srv);
    const f = await fault(srv.call('get_api_version'));
    assert.equal(f.faultCode, 1008, f.faultString);
    assert.equal(
      f.faultString,
      `the vendor agent at http://127.0.0.1:${vendorPort}/big/${limit + 1}${how} answered with a reply larger than server.body_limit_bytes (${limit} bytes); refused`,
    );
    assert.equal(await srv.call('local_only'), 'brick', 'brick answers on');
  }
  const ok = await startTestServer({ server: { vendor_agent_url: `http://127.0.0.1:${vendorPort}/big/${limit}/nolen`, body_limit_bytes: limit } }, local);
  servers.push(ok);
  assert.equal(((await ok.call('get_api_version')) as string).length, limit - 118);
});
