// exec_domr as CloudStack's Ovm3 client needs it, against a real sshd: the reply replays CloudStack's
// own fixture (CloudStackPluginTest.domrExecXml: {out: string, err: string, rc: <i8>}, and its failed
// variant rc 1 + "Something went wrong!"); a command of 35 s succeeds (the 30 s cap is gone); the two
// limits are separate and each names itself in its TIMEOUT fault: the connect (the call's timeout
// argument, default ovm3.domr_connect_timeout_s) and the whole command (ovm3.domr_command_timeout_s).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOMParser } from '@xmldom/xmldom';
import { startTestServer, type TestServer } from '../fixtures/server.js';
import { startSshd, sshdMissing, type Sshd } from '../fixtures/sshd.js';
import { methods } from '../../src/agent-extension/ovm3/methods.js';
import { FAULT_CODES } from '../../src/shared/errors.js';
import { defaultConfig } from '../../src/config/load.js';

const CI = process.env.CI === 'true';
const missing = sshdMissing();
if (missing && CI) throw new Error(`prerequisite missing in CI: ${missing}`);

/** CloudStack's fixture, as plugins/hypervisors/ovm3/src/test/.../CloudStackPluginTest.java writes it. */
const FIXTURE_OK =
  "<?xml version='1.0'?><methodResponse><params><param><value><struct>" +
  '<member><name>out</name><value><string>clearUsageRules.sh func.sh hv-kvp-daemon_3.1_amd64.deb monitorServices.py reconfigLB.sh redundant_router</string></value></member>' +
  '<member><name>err</name><value><string></string></value></member>' +
  '<member><name>rc</name><value><i8>0</i8></value></member>' +
  '</struct></value></param></params></methodResponse>';
const FIXTURE_FAILED = FIXTURE_OK.replace('<i8>0</i8>', '<i8>1</i8>').replace('<value><string></string></value>', '<value><string>Something went wrong!</string></value>');

type El = { nodeType: number; nodeName: string; childNodes: ArrayLike<El>; textContent: string | null };
const elems = (n: El) => Array.from(n.childNodes).filter((c) => c.nodeType === 1);

/** A methodResponse as {fault} or {member: [type, text]} of its struct (types as written on the wire). */
function decode(body: string): { fault?: { code: number; message: string }; members?: Record<string, [string, string]> } {
  const doc = new DOMParser().parseFromString(body, 'text/xml') as unknown as { documentElement: El };
  const [first] = elems(doc.documentElement);
  const struct = first.nodeName === 'fault' ? elems(elems(first)[0])[0] : elems(elems(elems(first)[0])[0])[0];
  const members: Record<string, [string, string]> = {};
  for (const m of elems(struct)) {
    const name = elems(m).find((e) => e.nodeName === 'name')!.textContent!;
    const [t] = elems(elems(m).find((e) => e.nodeName === 'value')!);
    members[name] = [t.nodeName, t.textContent ?? ''];
  }
  if (first.nodeName === 'fault') return { fault: { code: Number(members.faultCode[1]), message: members.faultString[1] } };
  return { members };
}

async function javaExecDomr(srv: TestServer, host: string, cmd: string, timeout?: number): Promise<string> {
  const ps = [`<param><value>${host}</value></param>`, `<param><value>${cmd}</value></param>`, ...(timeout === undefined ? [] : [`<param><value><i4>${timeout}</i4></value></param>`])];
  const r = await fetch(srv.url, {
    method: 'POST',
    headers: { 'content-type': 'text/xml', authorization: 'Basic ' + Buffer.from(`${srv.user}:${srv.password}`).toString('base64') },
    body: `<?xml version="1.0" encoding="UTF-8"?><methodCall><methodName>exec_domr</methodName><params>${ps.join('')}</params></methodCall>`,
  });
  assert.equal(r.status, 200);
  return r.text();
}

describe('exec_domr: CloudStack\'s fixture, long commands, connect vs whole-command limits', { skip: missing }, () => {
  let sshd: Sshd;
  let work: string;
  let srv: TestServer;
  let tight: TestServer;
  let silent: Server;
  let silentSrv: TestServer;
  const held: Socket[] = [];
  before(async () => {
    sshd = await startSshd();
    work = mkdtempSync(join(tmpdir(), 'brick-exec-domr-'));
    chmodSync(work, 0o755);
    // The failed variant of the fixture keeps its out and sets err and rc.
    const out = decode(FIXTURE_OK).members!.out[1];
    writeFileSync(join(work, 'failing.sh'), `#!/bin/sh\necho '${out}'\necho 'Something went wrong!' >&2\nexit 1\n`, { mode: 0o755 });
    const ovm3 = { ssh_key: sshd.clientKey, ssh_port: sshd.port, ssh_user: sshd.user, domr_networks: ['127.0.0.0/8'] };
    srv = await startTestServer({ ovm3 }, methods);
    tight = await startTestServer({ ovm3: { ...ovm3, domr_command_timeout_s: 2 } }, methods);
    // A TCP port that accepts and never speaks: ssh waits for the banner until its ConnectTimeout.
    silent = createServer((s) => held.push(s));
    await new Promise<void>((res) => silent.listen(0, '127.0.0.1', res));
    const port = (silent.address() as { port: number }).port;
    silentSrv = await startTestServer({ ovm3: { ...ovm3, ssh_port: port } }, methods);
  });
  after(async () => {
    for (const s of held) s.destroy();
    await new Promise((res) => silent?.close(res));
    await Promise.all([srv?.close(), tight?.close(), silentSrv?.close()]);
    await sshd?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the reply has the members and wire types of CloudStack\'s fixture, rc as <i8>; its failed variant too', async () => {
    const want = decode(FIXTURE_OK).members!;
    const got = decode(await javaExecDomr(srv, '127.0.0.1', `/bin/echo ${want.out[1]}`));
    assert.ok(got.members, JSON.stringify(got));
    assert.deepEqual(Object.keys(got.members).sort(), Object.keys(want).sort());
    assert.deepEqual(got.members.rc, ['i8', '0']);
    assert.deepEqual({ ...got.members, out: [got.members.out[0], got.members.out[1].trimEnd()] }, want);
    const wantFailed = decode(FIXTURE_FAILED).members!;
    const failed = decode(await javaExecDomr(srv, '127.0.0.1', join(work, 'failing.sh'))).members!;
    assert.deepEqual(failed.rc, ['i8', '1']);
    assert.deepEqual({ ...failed, out: [failed.out[0], failed.out[1].trimEnd()], err: [failed.err[0], failed.err[1].trimEnd()] }, wantFailed);
  });

  test('a 35 s command succeeds (the whole-command limit is ovm3.domr_command_timeout_s, default 600 s)', async () => {
    assert.ok(defaultConfig().ovm3.domr_command_timeout_s >= 600);
    const got = decode(await javaExecDomr(srv, '127.0.0.1', '/bin/sleep 35'));
    assert.deepEqual(got.members?.rc, ['i8', '0'], JSON.stringify(got));
  });

  test('the whole-command limit fires as a TIMEOUT fault naming ovm3.domr_command_timeout_s', async () => {
    const got = decode(await javaExecDomr(tight, '127.0.0.1', '/bin/sleep 30', 20));
    assert.equal(got.fault?.code, FAULT_CODES.TIMEOUT.code, JSON.stringify(got));
    assert.match(got.fault!.message, /did not finish within ovm3\.domr_command_timeout_s \(2 s\), the whole-command limit/);
  });

  test('the connect limit (timeout argument) fires as a TIMEOUT fault naming the connect timeout, long before the command limit', async () => {
    const got = decode(await javaExecDomr(silentSrv, '127.0.0.1', '/bin/true', 2));
    assert.equal(got.fault?.code, FAULT_CODES.TIMEOUT.code, JSON.stringify(got));
    assert.match(got.fault!.message, /could not connect to 127\.0\.0\.1 port \d+ within 2 s, the connect timeout \(exec_domr's timeout argument, default ovm3\.domr_connect_timeout_s\)/);
  });
});
