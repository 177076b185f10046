// Method parameters as schemas (src/rpc/params.ts, formats.ts): the dispatcher checks and decodes
// every argument before a handler runs; signatures and help come from the same schemas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/shared/log.js';
import { BrickError } from '../../src/shared/errors.js';
import { recordingRunner } from '../../src/shared/run.js';
import { Dispatcher } from '../../src/agent-extension/dispatch.js';
import { allMethods } from '../../src/agent-extension/methods.js';
import { parseMethodResponse, serializeMethodCall, XmlRpcFault } from '../../src/agent-extension/codec.js';
import { decodeArgs, emptyIsAbsent, method, optional, options, param } from '../../src/rpc/params.js';
import { Flag, IfName, Mtu, Plain, Vlan } from '../../src/rpc/formats.js';
import { signatures, helpText, wireTypes } from '../../src/rpc/describe.js';
import type { XmlRpcValue } from '../../src/rpc/values.js';
import { T, TransformKind } from '../../src/rpc/schema.js';
import { readdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const seen: unknown[][] = [];
const probe = method({
  name: 'probe',
  params: [
    param('name', IfName),
    param('vlan', Vlan),
    optional('opts', options({ mtu: Mtu, stp: Flag, uplink: emptyIsAbsent(IfName), note: Plain(8) })),
  ],
  returns: 'struct',
  help: 'Records what its handler received.',
  handler: async (args) => {
    seen.push(args);
    // The types the schemas give: a string, a number, and an options struct of typed members.
    const [name, vlan, o] = args;
    return { name, vlan: vlan + 0, mtu: o?.mtu ?? 0 };
  },
});

function dispatcher(methods = [probe]) {
  return new Dispatcher({ config: defaultConfig(), log: createLogger({ svc: 'test', level: 'silent' }), methods });
}

async function fault(d: Dispatcher, name: string, params: XmlRpcValue[]): Promise<XmlRpcFault> {
  const reply = await d.handle(serializeMethodCall(name, params));
  try {
    parseMethodResponse(String(reply));
  } catch (e) {
    if (e instanceof XmlRpcFault) return e;
    throw e;
  }
  throw new Error(`${name}: expected a fault`);
}

test('the handler receives decoded, typed values: a VLAN sent as a string is a number, "" and nil members are absent', async () => {
  seen.length = 0;
  const d = dispatcher();
  const r = parseMethodResponse(String(await d.handle(serializeMethodCall('probe', ['br0', '42', { mtu: 9000, stp: 1, uplink: '' }]))));
  assert.deepEqual({ ...(r as object) }, { name: 'br0', vlan: 42, mtu: 9000 });
  assert.deepEqual(seen[0], ['br0', 42, { mtu: 9000, stp: true }]);
  await d.handle(serializeMethodCall('probe', ['br0', 7, null]));
  assert.deepEqual(seen[1], ['br0', 7, undefined]);
});

test('bad input is INVALID_PARAMS (-32602) naming the parameter, and the handler never runs', async () => {
  seen.length = 0;
  const d = dispatcher();
  const cases: Array<[XmlRpcValue[], RegExp, number?]> = [
    [['br0'], /^probe: argument 2 "vlan" \(int or string\) is missing; usage: probe\(name: string, vlan: int\|string\[, opts: struct\]\) → struct$/],
    [['br0', 1, {}, 4], /^probe: takes 2 to 3 arguments, got 4/],
    [[5, 1], /^name: an interface name is required, got 5/],
    [['br0', 1, 'mtu=9000'], /^probe: argument 3 "opts" must be struct, got string/],
    [['br 0', 1], /^name: "br 0" is not a valid interface name/],
    [['br0', 4095], /^vlan: 4095 is not a VLAN id/],
    [['br0', 1, { mtu: 5 }], /^opts\.mtu: must be an integer 68-65535, got 5/],
    [['br0', 1, { stp: 'yes' }], /^opts\.stp: must be a boolean/],
    [['br0', 1, { mtuu: 1500 }], /^opts\.mtuu: unknown option \(known: mtu, stp, uplink, note\)/],
    [['br0', 1, { uplink: '-x' }], /^opts\.uplink: /],
    [['br0', 1, { note: 'a;b' }], /^opts\.note: ";" is not allowed/],
    [['br0', 1, { note: 'x'.repeat(9) }], /^opts\.note: longer than 8 bytes/, 1012],
  ];
  for (const [params, re, code = -32602] of cases) {
    const f = await fault(d, 'probe', params);
    assert.equal(f.faultCode, code, `${JSON.stringify(params)}: ${f.faultString}`);
    assert.match(f.faultString, re);
  }
  assert.equal(seen.length, 0, 'a handler ran on bad input');
});

test('signatures and help are generated from the schemas', () => {
  assert.deepEqual(signatures(probe), [
    ['struct', 'string', 'int'],
    ['struct', 'string', 'string'],
    ['struct', 'string', 'int', 'struct'],
    ['struct', 'string', 'string', 'struct'],
  ]);
  assert.match(helpText(probe), /name: string — interface name: 1-15 letters/);
  assert.match(helpText(probe), /vlan: int or string — VLAN id 1-4094/);
});

test('every method brick serves declares a schema for each parameter, and refuses a missing argument before its handler', async () => {
  const run = recordingRunner(() => {
    throw new Error('no command may run for refused arguments');
  });
  const d = new Dispatcher({ config: defaultConfig(), log: createLogger({ svc: 'test', level: 'silent' }), methods: allMethods(), run });
  for (const m of allMethods()) {
    for (const p of m.params) assert.ok(wireTypes(p.schema).length > 0, `${m.name}(${p.name})`);
    const required = m.params.filter((p) => !p.optional).length;
    if (required === 0) continue;
    const f = await fault(d, m.name, []);
    assert.equal(f.faultCode, -32602, `${m.name}: ${f.faultString}`);
    assert.match(f.faultString, new RegExp(`^${m.name}: argument 1 "${m.params[0].name}" .* is missing`));
    assert.throws(() => decodeArgs(m, []), (e: unknown) => e instanceof BrickError && e.fault === 'INVALID_PARAMS');
  }
  assert.equal(run.calls.length, 0);
});

test('the schemas are TypeBox\'s own objects, built without loading TypeBox at run time', async () => {
  const { Type } = await import('@sinclair/typebox');
  const o = { description: 'd' };
  assert.deepStrictEqual(T.String(o), Type.String(o));
  assert.deepStrictEqual(T.Integer(), Type.Integer());
  assert.deepStrictEqual(T.Number(), Type.Number());
  assert.deepStrictEqual(T.Boolean(), Type.Boolean());
  assert.deepStrictEqual(T.Null(), Type.Null());
  assert.deepStrictEqual(T.Uint8Array(), Type.Uint8Array());
  assert.deepStrictEqual(T.Union([T.Integer(), T.String()], o), Type.Union([Type.Integer(), Type.String()], o));
  assert.deepStrictEqual(T.Unsafe<number>({ xmlrpc: 'i8' }), Type.Unsafe<number>({ xmlrpc: 'i8' }));
  assert.deepStrictEqual(
    T.Object({ a: T.String(), b: T.Optional(T.Integer()) }, { additionalProperties: false }),
    Type.Object({ a: Type.String(), b: Type.Optional(Type.Integer()) }, { additionalProperties: false }),
  );
  const decode = (v: unknown) => String(v);
  const mine = T.Transform(T.String(), decode);
  const theirs = Type.Transform(Type.String()).Decode(decode).Encode((v) => v);
  assert.equal(mine[TransformKind].Decode, theirs[TransformKind].Decode);
  assert.deepStrictEqual({ ...mine, [TransformKind]: null }, { ...theirs, [TransformKind]: null });
  // Only the config schema (compiled to a validator at build time) may load TypeBox itself.
  const src = fileURLToPath(new URL('../../src', import.meta.url));
  const loaders = (await readdir(src, { recursive: true }))
    .filter((f) => f.endsWith('.ts'))
    .filter((f) => /^import (?!type )[^;]*from '@sinclair\/typebox'/m.test(readFileSync(join(src, f), 'utf8')));
  assert.deepEqual(loaders, [join('config', 'schema.ts')]);
});
