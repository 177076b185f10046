// brick's server driven by an independent client: Python's xmlrpc.client, over HTTP and HTTPS.
// Every type both ways, nil (allow_none), <i8> in and out, faults, multicall, introspection and
// auth failures. The Python side prints one JSON report that the assertions read.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestServer, type TestServer } from '../fixtures/server.js';
import { method, optional, param } from '../../src/rpc/params.js';
import { Any, Int, List } from '../../src/rpc/formats.js';
import { XmlRpcDouble, type XmlRpcValue } from '../../src/rpc/values.js';
import { BrickError } from '../../src/shared/errors.js';
import { typeOfValue } from '../../src/agent-extension/codec.js';

const exec = promisify(execFile);

const methods = [
  method({ name: 'echo', params: [param('value', Any)], returns: 'any', help: 'Returns its argument unchanged.', handler: async ([v]) => v }),
  method({
    name: 'kinds',
    params: [param('values', List)],
    returns: 'array',
    help: 'The XML-RPC type brick decoded for each element.',
    handler: async ([vs]) => (vs as XmlRpcValue[]).map((v) => `${typeOfValue(v)}${v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date) && !Buffer.isBuffer(v) ? (Object.getPrototypeOf(v) === null ? ':nullproto' : ':proto') : ''}`),
  }),
  method({
    name: 'types',
    params: [],
    returns: 'struct',
    help: 'One of each type brick writes.',
    handler: async () => ({
      int32max: 2147483647,
      int32min: -2147483648,
      above: 2147483648,
      mem: 68719476736,
      huge: 2n ** 62n,
      dbl: new XmlRpcDouble(2),
      frac: 0.5,
      t: true,
      nil: null,
      date: new Date(Date.UTC(2025, 0, 2, 3, 4, 5)),
      bin: Buffer.from([0, 1, 255]),
      s: 'a<b & c]]>d\r\n',
    }),
  }),
  method({
    name: 'add',
    params: [
      param('a', Int),
      param('b', Int),
      optional('c', Int),
    ],
    returns: 'int',
    help: 'Adds two or three integers.',
    handler: async ([a, b, c]) => a + b + (c ?? 0),
  }),
  method({ name: 'conflict', params: [], returns: 'nil', help: 'Always fails with CONFLICT.', handler: async () => { throw new BrickError('CONFLICT', 'vlan 4095 is reserved; use 1-4094'); } }),
  method({ name: 'bug', params: [], returns: 'nil', help: 'Always fails with a bug.', handler: async () => { throw new TypeError('cannot read x of undefined'); } }),
  method({ name: 'nothing', params: [], returns: 'nil', help: 'Returns nil.', handler: async () => null }),
];

// (A raw \r that Python sends unescaped is normalised away by any XML reader, XML 1.0 §2.11, so the
// echo samples use \n; the \r brick writes, as &#13;, is checked in types().)
const PY = String.raw`
import json, ssl, sys, base64, datetime, urllib.request, xmlrpc.client as X
url_auth, url, user, pw, cafile = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=cafile) if cafile else None
P = lambda u=url_auth, **k: X.ServerProxy(u, allow_none=True, use_builtin_types=True, context=ctx, **k)
p = P()
out = {}
samples = [42, -7, 3.25, True, False, 'a<b & c]]>d', 'žluťoučký € 𝄞', '', [1, [2, 'x']], {'k': {'n': 1}, 'empty': [], '__proto__': 'plain'},
           None, datetime.datetime(2025, 1, 2, 3, 4, 5), b'\x00\x01binary\xff', 2147483647, -2147483648, 'line1\nline2\ttab']
out['echo_mismatch'] = [repr((s, r)) for s in samples for r in [p.echo(s)] if r != s or type(r) != type(s)]
out['kinds'] = p.kinds(samples)
t = p.types()
out['types'] = {k: [type(v).__name__, v if not isinstance(v, (bytes, datetime.datetime)) else repr(v)] for k, v in t.items()}
out['nothing'] = p.nothing()
def raw(body):
    req = urllib.request.Request(url, data=body.encode(), headers={'Content-Type': 'text/xml', 'Authorization': 'Basic ' + base64.b64encode((user + ':' + pw).encode()).decode()})
    with urllib.request.urlopen(req, context=ctx) as r:
        return X.loads(r.read(), use_builtin_types=True)[0][0]
out['i8_in'] = raw('<?xml version="1.0"?><methodCall><methodName>echo</methodName><params><param><value><i8>68719476736</i8></value></param></params></methodCall>')
out['i8_huge_in'] = str(raw('<methodCall><methodName>echo</methodName><params><param><value><i8>9223372036854775807</i8></value></param></params></methodCall>'))
out['exnil_in'] = raw('<methodCall><methodName>kinds</methodName><params><param><value><array><data><value><ex:nil/></value><value><i8>5</i8></value></data></array></value></param></params></methodCall>')
def fault(f, *a):
    try:
        f(*a); return None
    except X.Fault as e:
        return [e.faultCode, e.faultString]
out['f_conflict'] = fault(p.conflict)
out['f_bug'] = fault(p.bug)
out['f_unknown'] = fault(p.no_such_method)
out['f_args'] = fault(p.add, 1)
out['f_type'] = fault(p.add, 1, 'two')
out['add3'] = p.add(1, 2, 3)
m = X.MultiCall(p)
m.add(1, 2); m.conflict(); m.echo({'a': None}); m.nope()
res = []
it = m()
for i in range(4):
    try:
        res.append(['ok', it[i]])
    except X.Fault as e:
        res.append(['fault', e.faultCode])
out['multicall'] = res
out['list'] = p.system.listMethods()
out['help'] = p.system.methodHelp('add')
out['sig'] = p.system.methodSignature('add')
def proto(u):
    try:
        P(u).echo(1); return None
    except X.ProtocolError as e:
        return e.errcode
out['auth_wrong'] = proto(url_auth.replace(':' + pw + '@', ':wrong@'))
out['auth_none'] = proto(url)
out['auth_user'] = proto(url_auth.replace('//' + user + ':', '//root:'))
print(json.dumps(out, default=repr))
`;

let dir: string;
let script: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'brick-xmlrpc-py-'));
  script = join(dir, 'client.py');
  writeFileSync(script, PY);
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function havePython(t: { skip: (m: string) => void }): Promise<boolean> {
  try {
    await exec('python3', ['-c', 'import xmlrpc.client'], { timeout: 10_000 });
    return true;
  } catch {
    if (process.env.CI === 'true') throw new Error('python3 is required (scripts/install-test-deps.sh installs it)');
    t.skip('python3 not installed; run scripts/install-test-deps.sh');
    return false;
  }
}

async function runPython(srv: TestServer): Promise<Record<string, any>> {
  const { stdout } = await exec('python3', [script, srv.urlWithAuth, srv.url, srv.user, srv.password, srv.caFile ?? ''], { timeout: 60_000 });
  return JSON.parse(stdout);
}

for (const https of [false, true]) {
  test(`Python xmlrpc.client over ${https ? 'HTTPS' : 'HTTP'}: types, nil, i8, faults, multicall, introspection, auth`, async (t) => {
    if (!(await havePython(t))) return;
    const srv = await startTestServer({}, methods, { https });
    try {
      const r = await runPython(srv);
      assert.deepEqual(r.echo_mismatch, [], 'every type comes back equal and of the same type');
      assert.deepEqual(r.kinds, [
        'int', 'int', 'double', 'boolean', 'boolean', 'string', 'string', 'string', 'array', 'struct:nullproto',
        'nil', 'dateTime.iso8601', 'base64', 'int', 'int', 'string',
      ]);
      assert.deepEqual(r.types, {
        int32max: ['int', 2147483647],
        int32min: ['int', -2147483648],
        above: ['int', 2147483648],
        mem: ['int', 68719476736],
        huge: ['int', 2 ** 62],
        dbl: ['float', 2],
        frac: ['float', 0.5],
        t: ['bool', true],
        nil: ['NoneType', null],
        date: ['datetime', 'datetime.datetime(2025, 1, 2, 3, 4, 5)'],
        bin: ['bytes', "b'\\x00\\x01\\xff'"],
        s: ['str', 'a<b & c]]>d\r\n'],
      });
      assert.equal(r.nothing, null);
      assert.equal(r.i8_in, 68719476736);
      assert.equal(r.i8_huge_in, '9223372036854775807'); // as text: JSON would lose the precision
      assert.deepEqual(r.exnil_in, ['nil', 'int']);
      assert.deepEqual(r.f_conflict, [1002, 'vlan 4095 is reserved; use 1-4094']);
      assert.equal(r.f_bug[0], -32603);
      assert.doesNotMatch(r.f_bug[1], /undefined|TypeError|\bat\b/);
      assert.equal(r.f_unknown[0], -32601);
      assert.equal(r.f_args[0], -32602);
      assert.match(r.f_args[1], /"b"/);
      assert.equal(r.f_type[0], -32602);
      assert.match(r.f_type[1], /argument 2 "b" must be int, got string/);
      assert.equal(r.add3, 6);
      assert.deepEqual(r.multicall, [['ok', 3], ['fault', 1002], ['ok', { a: null }], ['fault', -32601]]);
      assert.ok(r.list.includes('echo') && r.list.includes('system.methodSignature'));
      assert.match(r.help, /Adds two or three integers/);
      assert.deepEqual(r.sig, [['int', 'int', 'int'], ['int', 'int', 'int', 'int']]);
      assert.equal(r.auth_wrong, 401);
      assert.equal(r.auth_none, 401);
      assert.equal(r.auth_user, 401);
    } finally {
      await srv.close();
    }
  });
}
