// The standing `ip` readers (src/network/host/ip-reader.ts) against the real iproute2, in a
// namespace this test makes: what readLinks answers through them is exactly what one `ip` process
// per read answers; a namespace deleted and made again under the same name is read afresh, never
// through a reader left in the old one; and a reader ends when brick's process ends, however.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { delNs, ipn, networkConfig, needsRootAndIp, randomNs } from '../fixtures/network-ctx.js';
import { netHost, type NetHost } from '../../src/network/host/netns.js';
import { readLinks, type LinkQuery, type LinuxState } from '../../src/network/host/link-state.js';
import { ipReader } from '../../src/network/host/ip-reader.js';
import { run } from '../../src/shared/run.js';

const skip = needsRootAndIp();
const plain = (s: LinuxState) => ({ links: [...s.links.entries()].sort(), addrs: s.addrs.map((a) => JSON.stringify(a)).sort() });
/** The process runs (not gone, not a zombie waiting to be reaped). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

describe('standing ip readers on the real kernel', { skip }, () => {
  const ns = randomNs('brick-rd');
  let host: NetHost;
  let oneShot: NetHost;

  before(async () => {
    await run('ip', ['netns', 'add', ns], { timeoutMs: 10_000 });
    for (const args of [
      ['link', 'add', 'br0', 'type', 'bridge'],
      ['link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'u0'],
      ['link', 'add', 'p1', 'type', 'veth', 'peer', 'name', 'u1'],
      ['link', 'set', 'p0', 'master', 'br0'],
      ['link', 'set', 'p1', 'master', 'br0'],
      ['link', 'set', 'br0', 'alias', 'brick:bridge'],
      ['addr', 'add', '10.7.0.1/24', 'dev', 'u0'],
      ['addr', 'add', 'fd00:7::1/64', 'dev', 'u0'],
      ['link', 'set', 'u0', 'up'],
      ['link', 'set', 'p0', 'up'],
    ])
      await ipn(ns, ...args);
    const config = networkConfig({ namespace: ns, backend: 'linuxbridge' });
    host = netHost(config, run);
    oneShot = { ...host, ipQuery: undefined };
    assert.ok(host.ipQuery, 'the real runner has sessions');
  });
  after(async () => {
    ipReader(run, ns, 'link').close();
    ipReader(run, ns, 'addr').close();
    await delNs(ns);
  });

  const queries: LinkQuery[] = [
    { names: ['br0'] },
    { names: ['br0', 'nope0'], portsOf: ['br0'] },
    // A missing master last: one process's batch ends at it (linkQueryLines puts likely ones first).
    { names: ['nope1', 'br0', 'u0'], portsOf: ['br0', 'nope1'], addrsOf: ['u0', 'nope2'] },
    { names: ['u0'], addrsOf: ['u0'] },
    { names: ['nope3'], portsOf: ['nope3'], addrsOf: ['nope3'] },
    { names: ['p0', 'p1', 'u1'], portsOf: ['p0'] },
  ];

  it('answers every query exactly as one ip process per read does (addresses too, after many link reads)', async () => {
    for (let round = 0; round < 3; round++)
      for (const q of queries) assert.deepEqual(plain(await readLinks(host, q)), plain(await readLinks(oneShot, q)), JSON.stringify(q));
    const s = await readLinks(host, { names: ['br0'], portsOf: ['br0'], addrsOf: ['u0'] });
    assert.deepEqual([...s.links.keys()].sort(), ['br0', 'p0', 'p1', 'u0']);
    assert.deepEqual(s.addrs.filter((a) => a.scope === 'global').map((a) => a.address).sort(), ['10.7.0.1', 'fd00:7::1']);
    assert.equal(s.links.get('br0')?.owner, 'bridge');
    assert.equal(s.links.get('p0')?.master, 'br0');
    // A missing master first: the readers ask only masters they have just seen, so br0's ports are there.
    const first = await readLinks(host, { names: ['nope1', 'br0'], portsOf: ['nope1', 'br0'] });
    assert.deepEqual([...first.links.keys()].sort(), ['br0', 'p0', 'p1']);
    const link = ipReader(run, ns, 'link').pid;
    const addr = ipReader(run, ns, 'addr').pid;
    assert.ok(link && addr && link !== addr, 'a reader each for links and addresses');
  });

  it('a whole read (network_state, control0, GC) is the same through the readers as with a process each', async () => {
    const { readLinux } = await import('../../src/network/host/link-state.js');
    const answered: string[] = [];
    const spy: NetHost = {
      ...host,
      ipQuery: async (kind, lines) => {
        const r = await host.ipQuery!(kind, lines);
        answered.push(`${lines.join()}: ${r ? r.length : 'not answered'}`);
        return r;
      },
    };
    for (let round = 0; round < 2; round++) {
      const [a, b] = [await readLinux(spy), await readLinux(oneShot)];
      assert.deepEqual(plain(a), plain(b));
      assert.deepEqual(a.routes, b.routes);
      assert.ok(a.links.has('br0') && a.links.has('u1') && a.addrs.some((x) => x.address === '10.7.0.1'));
      assert.ok(a.routes.some((r) => r.dst === '10.7.0.0/24' && r.dev === 'u0'));
    }
    assert.deepEqual(answered.sort(), ['addr show: 1', 'addr show: 1', 'link show: 1', 'link show: 1'], 'the readers answered, one line each');
  });

  it('a namespace deleted and made again under the same name is read afresh', async () => {
    await readLinks(host, { names: ['br0'] });
    const old = ipReader(run, ns, 'link').pid!;
    await run('ip', ['netns', 'del', ns], { timeoutMs: 10_000 });
    await run('ip', ['netns', 'add', ns], { timeoutMs: 10_000 });
    await ipn(ns, 'link', 'add', 'br9', 'type', 'bridge');
    const s = await readLinks(host, { names: ['br0', 'br9'], portsOf: ['br0'] });
    assert.deepEqual([...s.links.keys()], ['br9'], 'the new namespace, not the old one the reader was in');
    for (let i = 0; i < 100 && alive(old); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(alive(old), false, 'the reader in the old namespace is gone');
    // The next read has a reader in the new namespace.
    assert.deepEqual([...(await readLinks(host, { names: ['br9', 'br0'] })).links.keys()], ['br9']);
    assert.notEqual(ipReader(run, ns, 'link').pid, undefined);
    assert.notEqual(ipReader(run, ns, 'link').pid, old);
  });

  it('a reader ends with the process that started it, even one killed with SIGKILL', async () => {
    const code = `
      import { netHost } from ${JSON.stringify(new URL('../../src/network/host/netns.ts', import.meta.url).pathname)};
      import { readLinks } from ${JSON.stringify(new URL('../../src/network/host/link-state.ts', import.meta.url).pathname)};
      import { ipReader } from ${JSON.stringify(new URL('../../src/network/host/ip-reader.ts', import.meta.url).pathname)};
      import { run } from ${JSON.stringify(new URL('../../src/shared/run.ts', import.meta.url).pathname)};
      const config = { network: { namespace: ${JSON.stringify(ns)}, command_timeout_s: 10, backend: 'linuxbridge', ovs_rundir: '' } };
      await readLinks(netHost(config, run), { names: ['br9'] });
      console.log(ipReader(run, ${JSON.stringify(ns)}, 'link').pid);
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (b) => {
        out += b;
        if (out.includes('\n')) resolve(Number(out.trim()));
      });
      child.on('exit', () => reject(new Error(`exited first: ${out}`)));
    });
    assert.ok(pid > 0 && alive(pid));
    child.kill('SIGKILL');
    for (let i = 0; i < 250 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(alive(pid), false, 'ip saw EOF on its stdin and ended');
  });
});
