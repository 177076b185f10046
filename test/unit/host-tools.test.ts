// The host-tool registry (src/shared/host-tools.ts): versions compared the way old userlands print
// them, where each tool comes from (host, brick's own copy, too old, missing), and run() giving
// UNSUPPORTED naming the tool instead of a spawn error. The last tests use this machine's real tools.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HOST_TOOLS,
  hostToolsReport,
  iproute2Version,
  resetHostToolsForTest,
  resolveTool,
  toolSpec,
  versionAtLeast,
  type ProbeDeps,
} from '../../src/shared/host-tools.js';
import { childEnv, run } from '../../src/shared/run.js';
import { isBrickError } from '../../src/shared/errors.js';

test('versions compare as numbers, and iproute2 snapshot dates against the release date', () => {
  assert.equal(versionAtLeast('8.4', '8.20'), false); // OL6 coreutils has no dd status=none
  assert.equal(versionAtLeast('8.22', '8.20'), true); // EL7
  assert.equal(versionAtLeast('5.97', '6.0'), false); // OL5: no conv=fsync
  assert.equal(versionAtLeast('9.1', '8.5'), true);
  assert.equal(versionAtLeast('1.0.2k', '1.0.2'), true);
  assert.equal(versionAtLeast('2.23.2', '2.34'), false);
  assert.equal(versionAtLeast('anything', ''), true);
  assert.equal(iproute2Version('ip utility, iproute2-6.1.0, libbpf 1.1.2'), '6.1.0');
  assert.equal(iproute2Version('ip utility, iproute2-ss130716'), 'ss130716'); // EL7 3.10 era
  assert.equal(versionAtLeast('ss130716', '4.13'), false);
  assert.equal(versionAtLeast('ss170905', '4.13'), true); // 4.13.0's snapshot: -json
  assert.equal(versionAtLeast('ss100224', '3.0'), false); // OL6: no ip netns
});

test('every registered tool states its flags with the oldest version, and minVersion is the largest of them', () => {
  const names = new Set<string>();
  for (const t of HOST_TOOLS) {
    assert.ok(!names.has(t.name), `${t.name} listed twice`);
    names.add(t.name);
    assert.ok(t.flags.length > 0 && t.oldUserland && t.usedBy && t.package, t.name);
    for (const f of t.flags) assert.ok(versionAtLeast(t.minVersion, f.since), `${t.name}: ${f.flag} needs ${f.since} > minVersion ${t.minVersion}`);
    if (t.versionArgs) assert.ok(t.parseVersion, `${t.name}: versionArgs without parseVersion`);
  }
  // The flags the issue names, each with a decision.
  for (const [tool, flag] of [['ip', '-json'], ['wdctl', '--settimeout N'], ['timeout', '--kill-after=S'], ['dd', 'status=none'], ['xl', 'list -l (JSON)']] as const)
    assert.ok(toolSpec(tool)!.flags.some((f) => f.flag === flag), `${tool} ${flag}`);
});

function fakeDeps(files: Record<string, string | undefined>): ProbeDeps {
  return {
    exists: (p) => p in files,
    version: async (p) => files[p],
    privateBinDir: '/usr/lib/brick/bin',
  };
}

test('where a tool comes from: the host when new enough, else brick\'s own copy, else the old one with its missing flags, else missing', async () => {
  const dd = toolSpec('dd')!;
  const newDd = await resolveTool(dd, fakeDeps({ '/bin/dd': 'dd (coreutils) 8.22\n', '/usr/lib/brick/bin/dd': 'dd (coreutils) 9.1\n' }));
  assert.deepEqual([newDd.source, newDd.path, newDd.version], ['host', '/bin/dd', '8.22']);

  const ol6 = await resolveTool(dd, fakeDeps({ '/bin/dd': 'dd (GNU coreutils) 8.4\n', '/usr/lib/brick/bin/dd': 'dd (GNU coreutils) 9.1\n' }));
  assert.deepEqual([ol6.source, ol6.path, ol6.version], ['brick', '/usr/lib/brick/bin/dd', '9.1']);
  assert.match(ol6.note, /8\.4, older than 8\.20/);

  const ol5 = await resolveTool(dd, fakeDeps({ '/bin/dd': 'dd (coreutils) 5.97\n' }));
  assert.deepEqual([ol5.source, ol5.missingFlags], ['host-too-old', ['conv=fsync', 'status=none']]);

  const none = await resolveTool(toolSpec('wdctl')!, fakeDeps({}));
  assert.equal(none.source, 'missing');
  const onlyOwn = await resolveTool(toolSpec('wdctl')!, fakeDeps({ '/usr/lib/brick/bin/wdctl': 'wdctl from util-linux 2.38.1\n' }));
  assert.deepEqual([onlyOwn.source, onlyOwn.version], ['brick', '2.38.1']);
  // EL7: ip 4.11 has no -json, brick's own ip is used.
  const el7 = await resolveTool(toolSpec('ip')!, fakeDeps({ '/usr/sbin/ip': 'ip utility, iproute2-ss170501\n', '/usr/lib/brick/bin/ip': 'ip utility, iproute2-6.1.0\n' }));
  assert.deepEqual([el7.source, el7.path], ['brick', '/usr/lib/brick/bin/ip']);
  // An optional tool that is absent says where that is normal.
  const xl = await resolveTool(toolSpec('xl')!, fakeDeps({}));
  assert.match(xl.note, /normal on KVM hosts/);
});

test('children get no loader variables of brick\'s own start (LD_PRELOAD, LD_LIBRARY_PATH, NODE_OPTIONS)', async () => {
  assert.deepEqual(childEnv({ PATH: '/bin', LD_PRELOAD: '/x.so', LD_LIBRARY_PATH: '/usr/lib/brick/lib', NODE_OPTIONS: '--inspect', FOO: 'bar' }), { PATH: '/bin', FOO: 'bar' });
  assert.equal(childEnv(undefined).PATH, '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  const r = await run('env', [], { timeoutMs: 5000, env: { PATH: '/usr/bin:/bin', LD_LIBRARY_PATH: '/usr/lib/brick/lib', KEEP: '1' } });
  assert.match(r.stdout, /^KEEP=1$/m);
  assert.doesNotMatch(r.stdout, /LD_LIBRARY_PATH/);
});

test('a call that needs a missing tool gets UNSUPPORTED naming the tool, never a spawn error', async () => {
  try {
    resetHostToolsForTest(fakeDeps({}));
    await assert.rejects(run('wdctl', ['--settimeout', '30', '/dev/watchdog'], { timeoutMs: 5000 }), (e) => {
      assert.ok(isBrickError(e) && e.fault === 'UNSUPPORTED', String(e));
      assert.match(e.message, /^wdctl \(util-linux\) is needed for fencer: set the watchdog timeout/);
      return true;
    });
    await assert.rejects(run('dd', ['if=/dev/null'], { timeoutMs: 5000, netns: 'x' }), (e) => isBrickError(e) && e.fault === 'UNSUPPORTED' && /^dd \(coreutils\)/.test(e.message));
    // OL6: timeout 8.4 has no --kill-after and brick has no copy of its own here: UNSUPPORTED naming
    // the tool, its version and the flag, not timeout's usage error; a call without the flag runs.
    resetHostToolsForTest({ exists: (p) => p === '/usr/bin/timeout', version: async () => 'timeout (GNU coreutils) 8.4\n', privateBinDir: '/nonexistent' });
    await assert.rejects(run('timeout', ['--kill-after', '1s', '1s', '/bin/true'], { timeoutMs: 5000 }), (e) => {
      assert.ok(isBrickError(e) && e.fault === 'UNSUPPORTED', String(e));
      assert.match(e.message, /^timeout --kill-after: \/usr\/bin\/timeout is 8\.4; "--kill-after=S" needs coreutils 8\.5 or later/);
      return true;
    });
    assert.equal((await run('timeout', ['5', '/bin/true'], { timeoutMs: 5000 })).code, 0);
  } finally {
    resetHostToolsForTest();
  }
  await assert.rejects(run('brick-no-such-tool', [], { timeoutMs: 5000 }), (e) => isBrickError(e) && e.fault === 'UNSUPPORTED' && /^brick-no-such-tool: not installed/.test(e.message));
});

test('on this machine (Debian 12) every coreutils/iproute2/util-linux tool brick runs is the host\'s own, with its version', async () => {
  const report = await hostToolsReport();
  const by = new Map(report.map((t) => [t.name, t]));
  for (const name of ['ip', 'dd', 'mv', 'stat', 'mkdir', 'timeout', 'wdctl', 'openssl']) {
    const t = by.get(name)!;
    assert.equal(t.source, 'host', `${name}: ${JSON.stringify(t)}`);
    assert.match(t.path, /^\/(usr\/)?s?bin\//);
    assert.match(t.version, /^\d/, name);
  }
  assert.equal(report.length, HOST_TOOLS.length);
});

test('every tool in the registry is one brick runs, and what the portable build carries is the registry\'s carried set plus chrt (for the init scripts)', async () => {
  // A tool no code runs still costs: brick carries it (a binary and its libraries in
  // /usr/lib/brick), probes it at start, and doctor and host_capabilities report it. cat stayed
  // after the fencer's instance lock stopped running it.
  const { readdirSync, readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { repoRoot } = await import('../fixtures/exec.js');
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
  const src = files(join(repoRoot, 'src'))
    .filter((f) => f !== join(repoRoot, 'src', 'shared', 'host-tools.ts'))
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
  const unused = HOST_TOOLS.filter((t) => !src.includes(`'${t.name}'`)).map((t) => t.name);
  assert.deepEqual(unused, [], 'tools no code outside the registry names');
  const { CARRIED_TOOLS } = (await import('../../scripts/build-portable.mjs' as string)) as { CARRIED_TOOLS: string[] };
  const carried = HOST_TOOLS.filter((t) => t.carried).map((t) => t.name);
  assert.deepEqual([...CARRIED_TOOLS].sort(), [...carried, 'chrt'].sort());
});
