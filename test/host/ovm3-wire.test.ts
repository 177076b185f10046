// The Ovm3 module's calls over the wire, as CloudStack's Java client makes them: Apache XML-RPC sends
// String as a bare <value>text</value> and Integer as <i4>. Each reply's XML TYPES are checked from
// the raw body (nil vs boolean, string members, int rc), against a real sshd on a loopback port, real
// files in a temp file_root, and libvirt's test driver. Then every string argument of every call gets
// shell injection, path escapes and oversize values: each must fault and change nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOMParser } from '@xmldom/xmldom';
import { startTestServer, type TestServer } from '../fixtures/server.js';
import { startSshd, sshdMissing, type Sshd } from '../fixtures/sshd.js';
import { methods } from '../../src/agent-extension/ovm3/methods.js';
import { FAULT_CODES } from '../../src/shared/errors.js';
import { writeFencerState, type FencerState } from '../../src/fencer/state.js';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

const CI = process.env.CI === 'true';
const missing = sshdMissing() ?? (existsSync('/usr/bin/virsh') ? undefined : 'virsh is not installed (libvirt-clients)');
if (missing && CI) throw new Error(`prerequisite missing in CI: ${missing}`);

// ---- the Java client's wire format ---------------------------------------------------------

type JavaArg = { s: string } | { i: number };
const S = (s: string): JavaArg => ({ s });
const I = (i: number): JavaArg => ({ i });
const xmlEsc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;');

function javaCall(method: string, args: JavaArg[]): string {
  const ps = args.map((a) => `<param><value>${'s' in a ? xmlEsc(a.s) : `<i4>${a.i}</i4>`}</value></param>`).join('');
  return `<?xml version="1.0" encoding="UTF-8"?><methodCall><methodName>${method}</methodName><params>${ps}</params></methodCall>`;
}

let srv: TestServer;
async function raw(method: string, args: JavaArg[]): Promise<string> {
  const r = await fetch(srv.url, {
    method: 'POST',
    headers: { 'content-type': 'text/xml', authorization: 'Basic ' + Buffer.from(`${srv.user}:${srv.password}`).toString('base64') },
    body: javaCall(method, args),
  });
  assert.equal(r.status, 200, `${method}: HTTP ${r.status}`);
  return r.text();
}

type Shape = string | { struct: Record<string, Shape> } | { array: Shape[] };
type El = { nodeType: number; nodeName: string; childNodes: ArrayLike<El>; textContent: string | null };
const elems = (n: El) => Array.from(n.childNodes).filter((c) => c.nodeType === 1);

/** The type tree of a <value>: 'string' | 'int' | 'boolean' | 'nil' | ... | {struct} | {array}. A bare <value>text</value> is 'string(bare)'. */
function shapeOf(value: El): Shape {
  const [t] = elems(value);
  if (!t) return 'string(bare)';
  if (t.nodeName === 'struct') {
    const out: Record<string, Shape> = {};
    for (const m of elems(t)) {
      const name = elems(m).find((e) => e.nodeName === 'name')!.textContent!;
      out[name] = shapeOf(elems(m).find((e) => e.nodeName === 'value')!);
    }
    return { struct: out };
  }
  if (t.nodeName === 'array') return { array: elems(elems(t)[0]).map(shapeOf) };
  return t.nodeName === 'i4' ? 'int' : t.nodeName;
}

function textOf(value: El): string {
  const [t] = elems(value);
  return (t ?? value).textContent ?? '';
}

interface Reply {
  fault?: { code: number; message: string };
  shape?: Shape;
  text?: string;
  value?: El;
}

function parseReply(body: string): Reply {
  const doc = new DOMParser().parseFromString(body, 'text/xml') as unknown as { documentElement: El };
  const [first] = elems(doc.documentElement);
  if (first.nodeName === 'fault') {
    const s = shapeOf(elems(first)[0]);
    assert.deepEqual(s, { struct: { faultCode: 'int', faultString: 'string' } });
    const members = elems(elems(elems(first)[0])[0]);
    const get = (n: string) => textOf(elems(members.find((m) => elems(m)[0].textContent === n)!)[1]);
    return { fault: { code: Number(get('faultCode')), message: get('faultString') } };
  }
  const value = elems(elems(first)[0])[0];
  return { shape: shapeOf(value), text: textOf(value), value };
}

/** A struct reply's members as text. */
function members(r: Reply): Record<string, string> {
  const [struct] = elems(r.value!);
  const out: Record<string, string> = {};
  for (const m of elems(struct)) out[elems(m).find((e) => e.nodeName === 'name')!.textContent!] = textOf(elems(m).find((e) => e.nodeName === 'value')!);
  return out;
}

async function jcall(method: string, ...args: JavaArg[]): Promise<Reply> {
  return parseReply(await raw(method, args));
}

// ---- fixtures --------------------------------------------------------------------------------

let sshd: Sshd;
let work: string; // mkdtemp, outside the file root
let root: string; // the only file_root
let outside: string; // a directory outside file_roots that escapes must not touch
let keyPath: string;
const NODE_XML = `<node><domain type='test'><name>i-2-29-VM</name><memory>524288</memory><vcpu>2</vcpu><os><type>hvm</type></os>
<devices><graphics type='vnc' port='5901' autoport='no'/></devices></domain>
<domain type='test'><name>i-2-30-PROD</name><memory>524288</memory><vcpu>1</vcpu><os><type>hvm</type></os>
<devices><graphics type='vnc' port='5902' autoport='no'/></devices></domain></node>`;

/** Every path under dir with its type, mode and content hash: "nothing changed" means equal snapshots. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      const st = lstatSync(p);
      const h = st.isFile() ? createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16) : '';
      out.push(`${p} ${st.mode.toString(8)} ${h}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

describe('Ovm3 module calls over the wire, with the Java client\'s argument types', { skip: missing }, () => {
  before(async () => {
    sshd = await startSshd();
    work = mkdtempSync(join(tmpdir(), 'brick-ovm3-wire-'));
    root = join(work, 'root');
    outside = join(work, 'outside');
    mkdirSync(root);
    mkdirSync(outside);
    writeFileSync(join(outside, 'victim'), 'untouched\n');
    symlinkSync(outside, join(root, 'escape')); // a symlink inside the root leading out
    keyPath = join(root, '.ssh', 'id_rsa.cloud');
    writeFileSync(join(work, 'node.xml'), NODE_XML);
    mkdirSync(join(work, 'state'));
    mkdirSync(join(work, 'pool'));
    writeFencerState(join(work, 'state'), { version: 1, pid: process.pid, host_id: 'guid-1', written_at_ms: Date.now() + 600_000, started_at_ms: Date.now(), action: 'reboot', fence_after_s: 30, probe_interval_s: 5, probe_timeout_s: 10, watchdog: { device: '', open: false, petting: false, last_pet_age_s: null, timeout_s: 20 }, fenced: null, last_fence: null, pools: [{ path: join(work, 'pool'), heartbeat: 'ovm', state: 'ok', armed: true }] } as unknown as FencerState);
    writeFileSync(join(work, 'pool', '.hb-guid-1'), (Date.now() / 1000 + 600).toFixed(3)); // fresh for the whole test run
    writeFileSync(join(work, 'pool', '.hb-stale-host'), (Date.now() / 1000 - 1000).toFixed(3));
    srv = await startTestServer(
      {
        server: { file_roots: [root] },
        ovm3: { ssh_key: keyPath, ssh_port: sshd.port, ssh_user: sshd.user, domr_networks: ['169.254.0.0/16', '127.0.0.0/8'], ssh_timeout_s: 20 },
        domain: { libvirt_uri: `test://${join(work, 'node.xml')}` },
        fencer: { state_dir: join(work, 'state'), pool: [{ path: join(work, 'pool'), heartbeat: 'ovm', fence_when: 'in-use', require_mount: true }] },
      },
      methods,
    );
  });
  after(async () => {
    await srv?.close();
    await sshd?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('setupServer: ovs_upload_ssh_key(str, str) → <boolean>1</boolean>, key 0600 in a 0700 dir, and ssh then logs in with it', async () => {
    const r = await jcall('ovs_upload_ssh_key', S('id_rsa.cloud'), S(readFileSync(sshd.clientKey, 'utf8')));
    assert.equal(r.shape, 'boolean');
    assert.equal(r.text, '1');
    assert.equal(statSync(keyPath).mode & 0o777, 0o600);
    assert.equal(statSync(join(root, '.ssh')).mode & 0o777, 0o700);
    const ssh = await jcall('check_domr_ssh', S('127.0.0.1'));
    assert.deepEqual([ssh.shape, ssh.text], ['boolean', '1'], sshd.log().slice(-800));
  });

  test('ovs_mkdirs(str) → <nil/> when it created, <boolean>1</boolean> when it existed; (str, i4 mode) applies the mode', async () => {
    const dir = join(root, 'a', 'b');
    const first = await jcall('ovs_mkdirs', S(dir));
    assert.equal(first.shape, 'nil');
    assert.ok(statSync(dir).isDirectory());
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    const again = await jcall('ovs_mkdirs', S(dir));
    assert.deepEqual([again.shape, again.text], ['boolean', '1']);
    const m = await jcall('ovs_mkdirs', S(join(root, 'm')), I(0o755));
    assert.equal(m.shape, 'nil');
    assert.equal(statSync(join(root, 'm')).mode & 0o777, 0o755);
  });

  test('ovs_upload_file(str×3) → <boolean>1</boolean>, written atomically; ovs_check_file(str) → booleans', async () => {
    const r = await jcall('ovs_upload_file', S(join(root, 'cfg')), S('vm.cfg'), S('name = "i-2-29-VM"\nvcpus = 2\n'));
    assert.deepEqual([r.shape, r.text], ['boolean', '1']);
    assert.equal(readFileSync(join(root, 'cfg', 'vm.cfg'), 'utf8'), 'name = "i-2-29-VM"\nvcpus = 2\n');
    assert.deepEqual(readdirSync(join(root, 'cfg')), ['vm.cfg'], 'no temp file left behind');
    const yes = await jcall('ovs_check_file', S(join(root, 'cfg', 'vm.cfg')));
    assert.deepEqual([yes.shape, yes.text], ['boolean', '1']);
    const no = await jcall('ovs_check_file', S(join(root, 'cfg', 'nope')));
    assert.deepEqual([no.shape, no.text], ['boolean', '0']);
    const dir = await jcall('ovs_check_file', S(join(root, 'cfg')));
    assert.deepEqual([dir.shape, dir.text], ['boolean', '0']);
  });

  test('exec_domr(str, str) → struct {rc: <i8>, out: <string>, err: <string>} from a real sshd', async () => {
    const ok = await jcall('exec_domr', S('127.0.0.1'), S('/bin/echo hello'));
    assert.deepEqual(ok.shape, { struct: { rc: 'i8', out: 'string', err: 'string' } });
    assert.deepEqual(members(ok), { rc: '0', out: 'hello\n', err: '' });
    const redirect = await jcall('exec_domr', S('127.0.0.1'), S('/bin/sh -c "echo oops >&2"'));
    assert.equal(redirect.fault?.code, FAULT_CODES.INVALID_PARAMS.code, 'redirection is refused');
    const rc3 = await jcall('exec_domr', S('127.0.0.1'), S('/bin/sh -c "echo out; exit 3"'.replace(';', ' &&')));
    assert.ok(rc3.fault, 'chaining is refused');
    const fails = await jcall('exec_domr', S('127.0.0.1'), S('/bin/ls /nonexistent-brick-dir'));
    assert.deepEqual(fails.shape, { struct: { rc: 'i8', out: 'string', err: 'string' } });
    assert.equal(members(fails).rc, '2');
    assert.match(members(fails).err, /nonexistent-brick-dir/);
    const noSsh = await jcall('exec_domr', S('127.0.0.2'), S('/bin/true'));
    assert.deepEqual(noSsh.shape, { struct: { rc: 'i8', out: 'string', err: 'string' } });
    assert.equal(members(noSsh).rc, '255', 'ssh\'s own failure is rc 255 with its error');
    assert.match(members(noSsh).err, /refused|connect/i);
  });

  test('ovs_domr_upload_file(str×4) → <boolean>1</boolean>, the file arrives through scp', async () => {
    const dest = join(work, 'vr-upload');
    mkdirSync(dest);
    const r = await jcall('ovs_domr_upload_file', S('127.0.0.1'), S(dest), S('vm_dhcp_entry.json'), S('{"a": 1}\n'));
    assert.deepEqual([r.shape, r.text], ['boolean', '1']);
    assert.equal(readFileSync(join(dest, 'vm_dhcp_entry.json'), 'utf8'), '{"a": 1}\n');
  });

  test('check_domr_port(str, i4) → booleans from a TCP connect (CloudStack casts the reply to Boolean: never nil)', async () => {
    const open = await jcall('check_domr_port', S('127.0.0.1'), I(sshd.port));
    assert.deepEqual([open.shape, open.text], ['boolean', '1']);
    const closed = await jcall('check_domr_port', S('127.0.0.1'), I(1));
    assert.deepEqual([closed.shape, closed.text], ['boolean', '0']);
  });

  test('check_dom0_port(str, i4, i4): open → <boolean>1</boolean>, closed → <nil/> (dom0CheckPort reads any non-nil reply, false included, as reachable)', async () => {
    // reference/cloudstack.md §3.1 (nullIsFalseCallWrapper: nil → false, non-nil → true) and §3.2
    // (dom0CheckPort → check_dom0_port, parsed nullIsFalse): a <boolean>0</boolean> would tell
    // CheckSshCommand and the pool-VIP check that a closed port is open, and stop their retries.
    const open = await jcall('check_dom0_port', S('127.0.0.1'), I(sshd.port), I(1));
    assert.deepEqual([open.shape, open.text], ['boolean', '1']);
    const closed = await jcall('check_dom0_port', S('127.0.0.1'), I(1), I(1));
    assert.equal(closed.shape, 'nil', `closed port: got ${JSON.stringify(closed.shape)} ${closed.text}`);
    const closedNoTimeout = await jcall('check_dom0_port', S('127.0.0.1'), I(1));
    assert.equal(closedNoTimeout.shape, 'nil');
  });

  test('check_domr_ssh(str) → <boolean>0</boolean> when nothing listens', async () => {
    // 127.0.0.2 is loopback too, but sshd listens on 127.0.0.1 only.
    const r = await jcall('check_domr_ssh', S('127.0.0.2'));
    assert.deepEqual([r.shape, r.text], ['boolean', '0']);
  });

  test('ovs_dom0_stats(str) → struct of <string>: cpu, free, total, tx, rx', async () => {
    const r = await jcall('ovs_dom0_stats', S('lo'));
    assert.deepEqual(r.shape, { struct: { cpu: 'string', free: 'string', total: 'string', tx: 'string', rx: 'string' } });
    const missingBr = await jcall('ovs_dom0_stats', S('nosuchbr0'));
    assert.equal(missingBr.fault?.code, FAULT_CODES.NOT_FOUND.code);
  });

  test('ovs_domU_stats(str) → struct of nine <string>s; get_vncport(str) → <string>5901</string>, "0" for a non-CloudStack name', async () => {
    const r = await jcall('ovs_domU_stats', S('i-2-29-VM'));
    const keys = ['rd_bytes', 'wr_bytes', 'rd_ops', 'wr_ops', 'tx_bytes', 'rx_bytes', 'cputime', 'uptime', 'vcpus'];
    assert.deepEqual(r.shape, { struct: Object.fromEntries(keys.map((k) => [k, 'string'])) }, JSON.stringify(r.fault));
    const v = await jcall('get_vncport', S('i-2-29-VM'));
    assert.deepEqual([v.shape, v.text], ['string', '5901']);
    const notCs = await jcall('get_vncport', S('test'));
    assert.deepEqual([notCs.shape, notCs.text], ['string', '0']);
    const gone = await jcall('get_vncport', S('i-9-99-VM'));
    assert.equal(gone.fault?.code, FAULT_CODES.NOT_FOUND.code);
    // a cloud whose instance.name is PROD names its VMs i-<account>-<id>-PROD (before: INVALID_PARAMS, and "0")
    const prod = await jcall('ovs_domU_stats', S('i-2-30-PROD'));
    assert.deepEqual(prod.shape, { struct: Object.fromEntries(keys.map((k) => [k, 'string'])) }, JSON.stringify(prod.fault));
    const prodVnc = await jcall('get_vncport', S('i-2-30-PROD'));
    assert.deepEqual([prodVnc.shape, prodVnc.text], ['string', '5902']);
  });

  test('ping(str), check_dom0_ip(str) → booleans', async () => {
    const p = await jcall('ping', S('127.0.0.1'));
    assert.deepEqual([p.shape, p.text], ['boolean', '1']);
    const has = await jcall('check_dom0_ip', S('127.0.0.1'));
    assert.deepEqual([has.shape, has.text], ['boolean', '1']);
    const hasnt = await jcall('check_dom0_ip', S('192.0.2.77'));
    assert.deepEqual([hasnt.shape, hasnt.text], ['boolean', '0']);
  });

  test('call(str) echoes; get_module_version() → <string>; get_ovs_version() faults UNSUPPORTED off OVM', async () => {
    const c = await jcall('call', S('put'));
    assert.deepEqual([c.shape, c.text], ['string', 'put']);
    const v = await jcall('get_module_version');
    assert.deepEqual([v.shape, v.text], ['string', '0.1']);
    if (!existsSync('/etc/ovs-release')) assert.equal((await jcall('get_ovs_version')).fault?.code, FAULT_CODES.UNSUPPORTED.code);
  });

  test('check_dom0_storage_health_check(str, str, str, i4, i4) → <array>[<boolean>, <boolean>] from the fencer state', async () => {
    const r = await jcall('check_dom0_storage_health_check', S(join(work, 'pool')), S('storagehealth.py'), S('guid-1'), I(120), I(1));
    assert.deepEqual(r.shape, { array: ['boolean', 'boolean'] });
    assert.deepEqual(elems(elems(elems(r.value!)[0])[0]).map(textOf), ['1', '0'], 'running on the guarded pool, not started by the agent');
    const script = await jcall('check_dom0_storage_health_check', S('/opt/cloudstack/bin'), S('storagehealth.py'), S('guid-1'), I(120), I(1));
    assert.deepEqual(elems(elems(elems(script.value!)[0])[0]).map(textOf), ['0', '0'], 'the script directory is not a guarded pool');
    const other = await jcall('check_dom0_storage_health_check', S(join(work, 'pool')), S('storagehealth.py'), S('another-guid'), I(120), I(1));
    assert.deepEqual(elems(elems(elems(other.value!)[0])[0]).map(textOf), ['0', '0'], 'the fencer heartbeats under another id');
  });

  test('check_dom0_storage_health(str, str, str, i4) → <boolean> from the peer\'s heartbeat file; unreadable → NOT_READY', async () => {
    const alive = await jcall('check_dom0_storage_health', S('/opt/cloudstack/bin'), S('storagehealth.py'), S('guid-1'), I(120));
    assert.deepEqual([alive.shape, alive.text], ['boolean', '1'], JSON.stringify(alive.fault));
    const stale = await jcall('check_dom0_storage_health', S('/opt/cloudstack/bin'), S('storagehealth.py'), S('stale-host'), I(120));
    assert.deepEqual([stale.shape, stale.text], ['boolean', '0']);
    const none = await jcall('check_dom0_storage_health', S('/opt/cloudstack/bin'), S('storagehealth.py'), S('nobody'), I(120));
    assert.equal(none.fault?.code, FAULT_CODES.NOT_READY.code);
  });

  test('ovs_control_interface(str, str) → <boolean>1</boolean>, control0 set up in a network namespace, idempotent', async () => {
    const ns = `brk-ovm3-${randomBytes(3).toString('hex')}`;
    execFileSync('ip', ['netns', 'add', ns]);
    const s2 = await startTestServer({ network: { namespace: ns } }, methods);
    try {
      for (let i = 0; i < 2; i++) {
        const r = parseReply(await (await fetch(s2.url, { method: 'POST', headers: { authorization: 'Basic ' + Buffer.from(`${s2.user}:${s2.password}`).toString('base64') }, body: javaCall('ovs_control_interface', [S('control0'), S('169.254.0.0/16')]) })).text());
        assert.deepEqual([r.shape, r.text], ['boolean', '1'], JSON.stringify(r.fault));
      }
      const addrs = JSON.parse(execFileSync('ip', ['-n', ns, '-json', 'addr', 'show', 'dev', 'control0'], { encoding: 'utf8' }));
      assert.ok(addrs[0].addr_info.some((a: { local: string; prefixlen: number }) => a.local === '169.254.0.1' && a.prefixlen === 16));
    } finally {
      await s2.close();
      execFileSync('ip', ['netns', 'del', ns]);
    }
  });

  // ---- refused: injection, escapes, oversize; each faults and changes nothing ----------------

  const INJECT = (canary: string) => [`;touch ${canary}`, `$(touch ${canary})`, `\`touch ${canary}\``, `x\ntouch ${canary}`, `x\rtouch ${canary}`, `x | touch ${canary}`, `x && touch ${canary}`];

  /** Each call with its Java argument types; `content` arguments are data (never a command line) and are not mutated. */
  const calls = (): Array<{ method: string; args: JavaArg[]; strings: number[] }> => [
    { method: 'get_vncport', args: [S('i-2-29-VM')], strings: [0] },
    { method: 'exec_domr', args: [S('127.0.0.1'), S('/bin/true')], strings: [0, 1] },
    { method: 'check_domr_port', args: [S('127.0.0.1'), I(sshd.port)], strings: [0] },
    { method: 'check_dom0_port', args: [S('127.0.0.1'), I(sshd.port), I(1)], strings: [0] },
    { method: 'check_domr_ssh', args: [S('127.0.0.1')], strings: [0] },
    { method: 'check_dom0_ip', args: [S('127.0.0.1')], strings: [0] },
    { method: 'ovs_domr_upload_file', args: [S('127.0.0.1'), S(join(work, 'vr-upload')), S('f.json'), S('{}')], strings: [0, 1, 2] },
    { method: 'ovs_mkdirs', args: [S(join(root, 'inj'))], strings: [0] },
    { method: 'ovs_check_file', args: [S(join(root, 'cfg', 'vm.cfg'))], strings: [0] },
    { method: 'ovs_upload_ssh_key', args: [S('id_rsa.inj'), S('key')], strings: [0] },
    { method: 'ovs_upload_file', args: [S(join(root, 'inj')), S('f'), S('x')], strings: [0, 1] },
    { method: 'ovs_dom0_stats', args: [S('lo')], strings: [0] },
    { method: 'ovs_domU_stats', args: [S('i-2-29-VM')], strings: [0] },
    { method: 'ping', args: [S('127.0.0.1')], strings: [0] },
    { method: 'ovs_control_interface', args: [S('control0'), S('169.254.0.0/16')], strings: [0, 1] },
    { method: 'check_dom0_storage_health_check', args: [S('/opt/cloudstack/bin'), S('storagehealth.py'), S('guid-1'), I(120), I(1)], strings: [0, 1, 2] },
    { method: 'check_dom0_storage_health', args: [S('/opt/cloudstack/bin'), S('storagehealth.py'), S('guid-1'), I(120)], strings: [0, 1, 2] },
  ];

  test('injection (; $() backticks newline CR | &&) in every string argument: a fault, no file, no command', async () => {
    const canary = join(work, 'canary');
    const before = snapshot(work);
    let n = 0;
    for (const c of calls()) {
      for (const i of c.strings) {
        for (const bad of INJECT(canary)) {
          const args = c.args.map((a, j) => (j === i && 's' in a ? S(a.s + bad) : a));
          const r = await jcall(c.method, ...args);
          assert.ok(r.fault, `${c.method} arg ${i + 1} with ${JSON.stringify(bad)}: expected a fault, got ${JSON.stringify(r.shape)} ${r.text}`);
          assert.ok(([FAULT_CODES.INVALID_PARAMS.code, FAULT_CODES.PATH_REFUSED.code] as number[]).includes(r.fault.code), `${c.method}: ${r.fault.message}`);
          n++;
        }
      }
    }
    assert.ok(n >= 100, `${n} injection attempts`);
    assert.equal(existsSync(canary), false, 'no injected command ran');
    assert.deepEqual(snapshot(work), before, 'nothing under the test dir changed');
  });

  test('path escapes: outside file_roots, "..", a symlink out, a relative path, a file name with "/": PATH_REFUSED, nothing changes', async () => {
    const before = snapshot(work);
    const outsideBefore = snapshot(outside);
    const attempts: Array<[string, JavaArg[]]> = [
      ['ovs_mkdirs', [S(join(outside, 'new'))]],
      ['ovs_mkdirs', [S(`${root}/../outside/new`)]],
      ['ovs_mkdirs', [S(join(root, 'escape', 'new'))]],
      ['ovs_mkdirs', [S('relative/dir')]],
      ['ovs_mkdirs', [S('/etc/brick-should-not-exist')]],
      ['ovs_check_file', [S('/etc/passwd')]],
      ['ovs_check_file', [S(join(root, 'escape', 'victim'))]],
      ['ovs_upload_file', [S(join(root, 'escape')), S('victim'), S('pwned')]],
      ['ovs_upload_file', [S(root), S('../outside/victim'), S('pwned')]],
      ['ovs_upload_file', [S(root), S('a/b'), S('pwned')]],
      ['ovs_upload_file', [S(root), S('..'), S('pwned')]],
      ['ovs_upload_file', [S(`${root}/x/../../outside`), S('victim'), S('pwned')]],
      ['ovs_upload_ssh_key', [S('../../outside/victim'), S('pwned')]],
      ['ovs_domr_upload_file', [S('127.0.0.1'), S('/tmp/../etc'), S('f'), S('x')]],
      ['ovs_domr_upload_file', [S('127.0.0.1'), S('relative'), S('f'), S('x')]],
      ['exec_domr', [S('8.8.8.8'), S('/bin/true')]], // not inside ovm3.domr_networks
      ['ovs_domr_upload_file', [S('10.1.2.3'), S('/tmp'), S('f'), S('x')]],
    ];
    for (const [m, args] of attempts) {
      const r = await jcall(m, ...args);
      assert.ok(r.fault, `${m}(${JSON.stringify(args)}) must fault`);
      assert.ok(([FAULT_CODES.PATH_REFUSED.code, FAULT_CODES.INVALID_PARAMS.code] as number[]).includes(r.fault.code), `${m}: ${r.fault.message}`);
    }
    assert.deepEqual(snapshot(outside), outsideBefore);
    assert.deepEqual(snapshot(work), before);
    assert.equal(existsSync('/etc/brick-should-not-exist'), false);
  });

  test('wrong types, missing or extra arguments, out-of-range numbers: INVALID_PARAMS naming the argument, nothing changes', async () => {
    // What a buggy or newer orchestrator could send in place of the Java client's (str…, i4…).
    // "/" is a mount point: a check_dom0_storage_health_check that got past its arguments would add
    // it as a runtime pool, so the runtime pools file must stay as it is too.
    const T = (xml: string) => ({ xml });
    type Arg = JavaArg | { xml: string };
    const body = (method: string, args: Arg[]) =>
      `<?xml version="1.0" encoding="UTF-8"?><methodCall><methodName>${method}</methodName><params>${args
        .map((a) => `<param><value>${'xml' in a ? a.xml : 's' in a ? xmlEsc(a.s) : `<i4>${a.i}</i4>`}</value></param>`)
        .join('')}</params></methodCall>`;
    const send = async (method: string, args: Arg[]) => {
      const r = await fetch(srv.url, {
        method: 'POST',
        headers: { 'content-type': 'text/xml', authorization: 'Basic ' + Buffer.from(`${srv.user}:${srv.password}`).toString('base64') },
        body: body(method, args),
      });
      assert.equal(r.status, 200, `${method}: a bad argument is a fault, not HTTP ${r.status}`);
      return parseReply(await r.text());
    };
    const pools = srv.config.fencer.runtime_pools_file;
    const poolsBefore = existsSync(pools) ? readFileSync(pools, 'utf8') : undefined;
    const before = snapshot(work);
    const fresh = join(root, 'never-made');
    const attempts: Array<[string, Arg[], RegExp]> = [
      ['ovs_mkdirs', [S(fresh), I(99999)], /mode/],
      ['ovs_mkdirs', [S(fresh), S('rwx')], /mode/],
      ['ovs_mkdirs', [S(fresh), T('<double>0.5</double>')], /mode/],
      ['ovs_mkdirs', [I(5)], /dir/],
      ['ovs_mkdirs', [], /dir/],
      ['ovs_upload_file', [S(fresh), S('f'), I(1)], /content/],
      ['ovs_upload_file', [S(fresh), S('f')], /content/],
      ['ovs_upload_file', [S(fresh), S('f'), S('x'), S('extra')], /takes 3 arguments/],
      ['ovs_upload_file', [S(fresh), T('<nil/>'), S('x')], /filename/],
      ['ovs_upload_ssh_key', [S('id_rsa.other'), T('<struct></struct>')], /content/],
      ['ovs_check_file', [T('<array><data></data></array>')], /file/],
      ['check_dom0_port', [S('127.0.0.1'), I(70000), I(1)], /port/],
      ['check_dom0_port', [S('127.0.0.1'), I(0), I(1)], /port/],
      ['check_dom0_port', [S('127.0.0.1'), I(22), I(-1)], /timeout/],
      ['check_domr_port', [T('<boolean>1</boolean>'), I(22)], /ip/],
      ['exec_domr', [I(1), S('/bin/true')], /host/],
      ['exec_domr', [S('127.0.0.1')], /cmd/],
      ['exec_domr', [S('127.0.0.1'), S('/bin/true'), S('soon')], /timeout/],
      ['ovs_domr_upload_file', [S('127.0.0.1'), S(join(work, 'vr-upload')), S('g.json')], /content/],
      ['get_vncport', [T('<i4>29</i4>')], /domain/],
      ['ovs_domU_stats', [], /domain/],
      ['ping', [S('127.0.0.1'), I(0)], /count/],
      ['check_dom0_storage_health_check', [S('/'), S('storagehealth.py'), S('guid-1'), S('abc'), I(1)], /timeout/],
      ['check_dom0_storage_health_check', [S('/'), S('storagehealth.py'), S('guid-1'), I(120), I(0)], /interval/],
      ['check_dom0_storage_health_check', [S('/'), S('storagehealth.py'), S('../guid'), I(120), I(1)], /guid/],
      ['check_dom0_storage_health_check', [S('/'), S('storagehealth.py'), S('guid-1'), I(120)], /interval/],
      ['check_dom0_storage_health', [S('/'), S('storagehealth.py'), S('guid-1'), I(0)], /timeout/],
      ['ovs_control_interface', [S('control0'), S('169.254.0.0/33')], /cidr/],
      ['ovs_control_interface', [S('control0')], /cidr/],
    ];
    for (const [m, args, names] of attempts) {
      const r = await send(m, args);
      assert.equal(r.fault?.code, FAULT_CODES.INVALID_PARAMS.code, `${m}(${JSON.stringify(args)}): ${r.fault?.message ?? `no fault: ${JSON.stringify(r.shape)} ${r.text}`}`);
      assert.match(r.fault.message, names, `${m}: the message names the argument: ${r.fault.message}`);
      assert.doesNotMatch(r.fault.message, /\n\s+at |Error:|undefined/, `${m}: no stack trace or internals: ${r.fault.message}`);
    }
    assert.deepEqual(snapshot(work), before, 'nothing under the test dir changed');
    assert.equal(existsSync(fresh), false);
    assert.equal(existsSync(pools) ? readFileSync(pools, 'utf8') : undefined, poolsBefore, 'no runtime pool was added');
  });

  test('oversize arguments: TOO_LARGE, nothing written', async () => {
    const before = snapshot(work);
    const big = (n: number) => 'x'.repeat(n);
    const attempts: Array<[string, JavaArg[]]> = [
      ['ovs_upload_file', [S(join(root, 'big')), S('f'), S(big(16 * 1024 * 1024 + 1))]],
      ['ovs_upload_ssh_key', [S('id_big'), S(big(64 * 1024 + 1))]],
      ['exec_domr', [S('127.0.0.1'), S('/bin/echo ' + big(64 * 1024))]],
      ['ovs_mkdirs', [S(root + '/' + big(5000))]],
      ['ovs_mkdirs', [S(root + '/' + big(300))]],
      ['ovs_domr_upload_file', [S('127.0.0.1'), S(join(work, 'vr-upload')), S('f'), S(big(16 * 1024 * 1024 + 1))]],
    ];
    for (const [m, args] of attempts) {
      const r = await jcall(m, ...args);
      assert.equal(r.fault?.code, FAULT_CODES.TOO_LARGE.code, `${m}: ${r.fault?.message ?? 'no fault'}`);
    }
    assert.deepEqual(snapshot(work), before);
  });
});
