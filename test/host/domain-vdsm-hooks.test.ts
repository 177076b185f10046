// Hook scripts written to vdsm's contract (reference/vdsm.md §1.3-1.7) run unchanged under brick:
// Python hooks that `import hooking` and read/write the XML through it, custom properties in the
// environment, a before_device_create hook once per NIC with the VM's and that NIC's properties,
// vdsm's exit codes (1 and 127 fail the start, 2 stops the chain), a python2 shebang on a host
// without python2, PYTHONPATH honoured and loader/interpreter variables refused. brick's own
// hooking module (src/agent-extension/domain/hooking.py) is on the hooks' PYTHONPATH through
// domain.hooking_dir, as the packages install it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, existsSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfig } from '../../src/config/load.js';
import { methods } from '../../src/agent-extension/domain/methods.js';
import { childElements, devices, firstChild, parseDomainXml } from '../../src/agent-extension/domain/xml.js';
import { scratchDir } from '../fixtures/scratch.js';
import type { CallContext } from '../../src/rpc/catalogue.js';
import type { BrickError } from '../../src/shared/errors.js';
import { callContext } from '../fixtures/call-context.js';

const CI = process.env.CI === 'true';
const PY = '/usr/bin/python3';
if (!existsSync(PY) && CI) throw new Error(`${PY} missing (scripts/install-test-deps.sh installs python3)`);
const skip = existsSync(PY) ? false : `${PY} not installed`;

const HOOKING_DIR = join(import.meta.dirname, '../../src/agent-extension/domain');
const base = scratchDir('brick-vdsm-hooks-');
const XML = readFileSync(join(import.meta.dirname, '../golden/domain/corpus/cs-vrouter.xml'), 'utf8');
const tweak = methods.find((m) => m.name === 'domain_tweak')!.handler;

function hooksDir(points: Record<string, Record<string, string>>): string {
  const dir = mkdtempSync(join(base, 'h-'));
  for (const [point, scripts] of Object.entries(points)) {
    mkdirSync(join(dir, point));
    for (const [name, body] of Object.entries(scripts)) {
      const p = join(dir, point, name);
      writeFileSync(p, body);
      chmodSync(p, 0o755);
    }
  }
  return dir;
}

function ctx(dir: string): CallContext {
  const config = defaultConfig();
  config.domain.hooks_dir = dir;
  config.domain.hooking_dir = HOOKING_DIR;
  config.domain.hook_timeout_s = 20;
  return callContext(config, { budgetMs: 120_000 });
}

const PYHOOK = `#!${PY}\n`;

test('a vdsm-style Python hook: import hooking, read_domxml/write_domxml, custom properties, tobool, exit 0', { skip }, async () => {
  const dir = hooksDir({
    before_vm_start: {
      '50_cpupin': PYHOOK + `import os
import hooking
if hooking.tobool(os.environ.get('pin_cpus')):
    domxml = hooking.read_domxml()
    vcpu = domxml.getElementsByTagName('vcpu')[0]
    vcpu.setAttribute('cpuset', os.environ['cpuset'])
    desc = domxml.createElement('description')
    desc.appendChild(domxml.createTextNode('vmId=%s tobool=%s,%s,%s' % (os.environ['vmId'], hooking.tobool('yes'), hooking.tobool('0'), hooking.tobool(None))))
    domxml.documentElement.appendChild(desc)
    hooking.write_domxml(domxml)
`,
    },
  });
  const out = (await tweak([XML, { hooks: true, custom: { pin_cpus: 'True', cpuset: '2-3' } }], ctx(dir))) as string;
  assert.match(out, /<vcpu cpuset="2-3">1<\/vcpu>/);
  assert.match(out, /vmId=6e0f8d2a-93b1-4c55-8f7d-2b1d7e9c4a04 tobool=True,False,False/);
  parseDomainXml(out);
});

test('before_device_create: once per NIC in document order with that NIC\'s XML, VM + per-NIC custom properties; the result replaces each NIC in place', { skip }, async () => {
  const log = join(base, `nics-${process.pid}`);
  // vdsm's extnet hook, in essence: move the NIC to the libvirt network named by its "extnet" property.
  const dir = hooksDir({
    before_device_create: {
      '50_extnet': PYHOOK + `import os
import hooking
iface = hooking.read_domxml().documentElement
mac = iface.getElementsByTagName('mac')[0].getAttribute('address')
with open(${JSON.stringify(log)}, 'a') as f:
    f.write('%s %s site=%s vm=%s\\n' % (iface.tagName, mac, os.environ.get('site', '-'), os.environ.get('vmName')))
net = os.environ.get('extnet')
if net:
    doc = hooking.read_domxml()
    iface = doc.documentElement
    iface.setAttribute('type', 'network')
    src = iface.getElementsByTagName('source')[0]
    src.removeAttribute('bridge')
    src.setAttribute('network', net)
    hooking.write_domxml(doc)
`,
    },
    before_vm_start: { '10_seen': PYHOOK + `import hooking, shutil, os\nshutil.copy(os.environ['_hook_domxml'], ${JSON.stringify(log + '.vm')})\n` },
  });
  const out = (await tweak(
    [XML, { hooks: true, custom: { site: 'ams1' }, nic_custom: { '02:00:39:46:00:01': { extnet: 'ovs-guest-1021', site: 'nic-value-loses' } } }],
    ctx(dir),
  )) as string;
  assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), [
    'interface 0e:00:a9:fe:02:91 site=ams1 vm=r-4-VM',
    'interface 02:00:39:46:00:01 site=ams1 vm=r-4-VM',
    'interface 1e:00:f4:00:00:22 site=ams1 vm=r-4-VM',
  ]);
  const nics = childElements(devices(parseDomainXml(out))!, 'interface');
  assert.deepEqual(
    nics.map((n) => [n.getAttribute('type'), firstChild(n, 'mac')!.getAttribute('address'), firstChild(n, 'source')!.getAttribute('bridge') || firstChild(n, 'source')!.getAttribute('network')]),
    [
      ['bridge', '0e:00:a9:fe:02:91', 'cloud0'],
      ['network', '02:00:39:46:00:01', 'ovs-guest-1021'],
      ['bridge', '1e:00:f4:00:00:22', 'cloudbr0'],
    ],
  );
  // The bandwidth limits of the changed NIC came back with it; before_vm_start saw the merged domain.
  assert.match(out, /<source network=['"]ovs-guest-1021['"]\/>[\s\S]*<inbound average=['"]25600['"]/);
  assert.match(readFileSync(log + '.vm', 'utf8'), /network=['"]ovs-guest-1021['"]/);
});

test('before_device_create on a two-NIC domain: one run per NIC; a NIC hook must leave one <interface>', { skip }, async () => {
  const two = readFileSync(join(import.meta.dirname, '../golden/domain/corpus/cs-vhostuser.xml'), 'utf8');
  const macs = childElements(devices(parseDomainXml(two))!, 'interface').map((n) => firstChild(n, 'mac')!.getAttribute('address'));
  assert.equal(macs.length, 2);
  const log = join(base, `two-${process.pid}`);
  const dir = hooksDir({ before_device_create: { '10_count': PYHOOK + `import hooking, os\nopen(${JSON.stringify(log)}, 'a').write(os.environ.get('role', '-') + ' ' + hooking.read_domxml().getElementsByTagName('mac')[0].getAttribute('address') + '\\n')\n` } });
  await tweak([two, { hooks: true, nic_custom: { [macs[1]!]: { role: 'storage' } } }], ctx(dir));
  assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), [`- ${macs[0]}`, `storage ${macs[1]}`]);
  const bad = hooksDir({ before_device_create: { '10_bad': PYHOOK + `open(__import__('os').environ['_hook_domxml'], 'w').write('<disk/>')\n` } });
  await assert.rejects(tweak([two, { hooks: true }], ctx(bad)), (e: BrickError) => e.fault === 'HOOK_FAILED' && /10_bad exited 0 but left XML brick cannot use for NIC .*<disk>/.test(e.message));
  await assert.rejects(tweak([two, { hooks: true, nic_custom: { '02:00:00:00:00:99': { a: 'b' } } }], ctx(dir)), (e: BrickError) => e.fault === 'NOT_FOUND' && /nic_custom: no <interface> with MAC 02:00:00:00:00:99/.test(e.message));
});

test('exit codes as vdsm: rc 1 fails the start after the chain; rc 2 stops the chain; hooking.exit_hook defaults to 2', { skip }, async () => {
  const mark = join(base, `after-${process.pid}`);
  const one = hooksDir({ before_vm_start: { '10_one': PYHOOK + 'import hooking\nhooking.exit_hook("license server unreachable", 1)\n', '20_next': PYHOOK + `open(${JSON.stringify(mark)}, 'w').write('ran')\n` } });
  await assert.rejects(tweak([XML, { hooks: true }], ctx(one)), (e: BrickError) => e.fault === 'HOOK_FAILED' && /10_one exited 1: license server unreachable/.test(e.message));
  assert.equal(readFileSync(mark, 'utf8'), 'ran', 'rc 1 does not stop the chain');
  rmSync(mark);
  const two = hooksDir({ before_vm_start: { '10_two': PYHOOK + 'import hooking\nhooking.exit_hook("not on this host")\n', '20_next': PYHOOK + `open(${JSON.stringify(mark)}, 'w').write('ran')\n` } });
  await assert.rejects(tweak([XML, { hooks: true }], ctx(two)), (e: BrickError) => e.fault === 'HOOK_FAILED' && /10_two exited 2: not on this host/.test(e.message));
  assert.equal(existsSync(mark), false, 'rc 2 stops the chain');
});

test('exec failures fail the start: a python2 shebang on a host without python2 (rc 127), a missing interpreter, a script that cannot be executed (rc 126)', { skip }, async () => {
  assert.equal(existsSync('/usr/bin/python2'), false, 'this test needs a host without /usr/bin/python2');
  const dir = hooksDir({ before_vm_start: { '10_py2': '#!/usr/bin/python2\nimport hooking\nprint "old"\n' } });
  await assert.rejects(tweak([XML, { hooks: true }], ctx(dir)), (e: BrickError) => {
    assert.equal(e.fault, 'HOOK_FAILED');
    assert.match(e.message, /10_py2 exited 127: it could not be executed \(exit 127: its interpreter \/usr\/bin\/python2 is missing or not executable on this host\)/);
    return true;
  });
  const noexec = hooksDir({ before_vm_start: { '10_dir_interp': `#!${base}\necho hi\n` } });
  await assert.rejects(tweak([XML, { hooks: true }], ctx(noexec)), (e: BrickError) => e.fault === 'HOOK_FAILED' && /10_dir_interp exited 126: it could not be executed/.test(e.message));
  const dev = hooksDir({ before_device_create: { '10_py2': '#!/usr/bin/python2\nimport hooking\n' } });
  await assert.rejects(tweak([XML, { hooks: true }], ctx(dev)), (e: BrickError) => e.fault === 'HOOK_FAILED' && /before_device_create hooks failed for NIC 0e:00:a9:fe:02:91.*exited 127/.test(e.message));
});

test('PYTHONPATH as a custom property is honoured (before brick\'s hooking dir); LD_PRELOAD and interpreter search paths are refused', { skip }, async () => {
  const lib = mkdtempSync(join(base, 'lib-'));
  writeFileSync(join(lib, 'sitehelpers.py'), 'ROLE = "from-custom-pythonpath"\n');
  const out = join(base, `pp-${process.pid}`);
  const dir = hooksDir({ before_vm_start: { '10_pp': PYHOOK + `import os, sitehelpers, hooking\nopen(${JSON.stringify(out)}, 'w').write(sitehelpers.ROLE + ' ' + os.environ['PYTHONPATH'])\n` } });
  await tweak([XML, { hooks: true, custom: { PYTHONPATH: lib } }], ctx(dir));
  assert.equal(readFileSync(out, 'utf8'), `from-custom-pythonpath ${lib}:${HOOKING_DIR}`);
  for (const name of ['LD_PRELOAD', 'LD_LIBRARY_PATH', 'PYTHONHOME', 'PYTHONSTARTUP', 'PERL5LIB', 'PERL5OPT', 'RUBYLIB', 'NODE_OPTIONS', 'GCONV_PATH']) {
    await assert.rejects(tweak([XML, { hooks: true, custom: { [name]: '/tmp/x' } }], ctx(dir)), (e: BrickError) => e.fault === 'INVALID_PARAMS' && new RegExp(`"${name}" is reserved`).test(e.message), name);
    await assert.rejects(tweak([XML, { hooks: true, nic_custom: { '*': { [name]: '/tmp/x' } } }], ctx(dir)), (e: BrickError) => e.fault === 'INVALID_PARAMS' && new RegExp(`nic_custom.*"${name}" is reserved`).test(e.message), name);
  }
});

test('hooking module, the rest of vdsm\'s API: read_json/write_json, execCmd (lines or raw, never a shell), log, launch flags; it compiles', { skip }, async () => {
  const { execFileSync } = await import('node:child_process');
  const dir = mkdtempSync(join(base, 'api-'));
  const json = join(dir, 'data.json');
  writeFileSync(json, JSON.stringify({ request: { networks: { ovirtmgmt: { bridged: true } } } }));
  const script = `
import hooking, json, sys
d = hooking.read_json()
d['request']['networks']['ovirtmgmt']['mtu'] = 9000
hooking.write_json(d)
rc, out, err = hooking.execCmd(['/bin/echo', 'a;b $(x)'])
assert (rc, out, err) == (0, ['a;b $(x)'], []), (rc, out, err)
rc, out, err = hooking.execCmd(['/bin/cat'], data='raw\\n', raw=True)
assert (rc, out) == (0, b'raw\\n'), (rc, out)
try:
    hooking.execCmd('/bin/echo hi')
    raise SystemExit('a command string was accepted')
except TypeError:
    pass
assert hooking.load_vm_launch_flags_from_file('x') == 0
hooking.dump_vm_launch_flags_to_file('x', 0)
assert [hooking.tobool(v) for v in (True, 'TRUE', 'on', '1', 2, 'false', '0', '', None, 'junk')] == [True] * 5 + [False] * 5
hooking.log('logged line')
`;
  const r = execFileSync(PY, ['-c', script], { env: { PYTHONPATH: HOOKING_DIR, PYTHONDONTWRITEBYTECODE: '1', _hook_json: json, PATH: '/usr/bin:/bin' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(r, '');
  assert.deepEqual(JSON.parse(readFileSync(json, 'utf8')), { request: { networks: { ovirtmgmt: { bridged: true, mtu: 9000 } } } });
  execFileSync(PY, ['-c', 'import sys; compile(open(sys.argv[1]).read(), sys.argv[1], "exec")', join(HOOKING_DIR, 'hooking.py')], { env: { PATH: '/usr/bin:/bin' } });
  // Without the hook's environment a hook gets a clear message and exit 2, not a KeyError.
  assert.throws(() => execFileSync(PY, ['-c', 'import hooking; hooking.read_domxml()'], { env: { PYTHONPATH: HOOKING_DIR, PYTHONDONTWRITEBYTECODE: '1', PATH: '/usr/bin:/bin' }, stdio: 'pipe' }), (e: { status: number; stderr: Buffer }) => e.status === 2 && /\$_hook_domxml is not set/.test(String(e.stderr)));
});
