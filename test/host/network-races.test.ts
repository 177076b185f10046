// brick's network calls raced, repeated and killed through a real `brick serve`, on real iproute2 in
// namespaces this test makes (and a private userspace Open vSwitch):
// - calls on overlapping names sent at once end as ONE of their serial orders: the same replies and
//   the same host as that order run one call at a time (every order is run serially first, in the
//   same namespace from the same start, to know them);
// - an ensure asked again changes nothing: no netlink event between two markers of the test's own
//   (`ip monitor`), the same ifindex;
// - serve SIGKILLed (with its ip children, as systemd stops the unit) at any point of a change that
//   needs confirmation: the next start puts back exactly that change, and what an admin changed
//   meanwhile stays.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ipn, linksJson, needsRootAndIp, prerequisite, randomNs, netScratch } from '../fixtures/network-ctx.js';
import { freePort, startServe } from '../fixtures/serve-process.js';
import { haveUserspaceOvs, startOvs, type Ovs } from '../fixtures/ovs.js';
import { XmlRpcClient } from '../../src/agent-extension/client.js';
import { XmlRpcFault } from '../../src/agent-extension/codec.js';

const skip = needsRootAndIp();
const skipOvs = skip || prerequisite(haveUserspaceOvs(), 'needs root, ovsdb-server and ovs-vswitchd (openvswitch-switch)');

const { dir, namespaces, children } = netScratch('brick-netrace-');

const PW = 'netrace-pw';

/** A serve config for this namespace (and OVS); its own state directory. */
async function serveConfig(name: string, network: string): Promise<{ file: string; url: string; stateDir: string }> {
  const port = await freePort();
  const stateDir = mkdtempSync(join(dir, `${name}-state-`));
  const file = join(dir, `${name}.toml`);
  writeFileSync(
    file,
    `[server]\nlisten = "127.0.0.1:${port}"\ntls_cert = ""\ntls_key = ""\npassword = "${PW}"\npassword_file = ""\n` +
      `[network]\n${network}\n[fencer]\nstate_dir = "${stateDir}"\n`,
  );
  return { file, url: `http://127.0.0.1:${port}/`, stateDir };
}

type Call = [method: string, ...args: unknown[]];

/** A reply as the test compares it: the struct, or the fault's code and text. */
async function outcome(c: XmlRpcClient, [m, ...args]: Call): Promise<string> {
  try {
    return JSON.stringify(await c.call(m, ...args));
  } catch (e) {
    if (e instanceof XmlRpcFault) return `fault ${e.faultCode}: ${e.faultString}`;
    throw e;
  }
}

function permutations<T>(xs: readonly T[]): T[][] {
  if (xs.length <= 1) return [[...xs]];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

/**
 * Every serial order of `calls` from the state `reset` makes: the replies (in `calls`' order) and
 * the host after. Then `rounds` times all at once: each must be one of them.
 */
async function raceAgainstSerial(c: XmlRpcClient, calls: Call[], reset: () => Promise<unknown>, state: () => Promise<string>, rounds: number): Promise<void> {
  const serial = new Map<string, string>();
  for (const order of permutations(calls.map((_, i) => i))) {
    await reset();
    const replies: string[] = [];
    for (const i of order) replies[i] = await outcome(c, calls[i]);
    serial.set(JSON.stringify({ replies, host: await state() }), order.join(''));
  }
  const orders = permutations(calls.map((_, i) => i));
  for (let round = 0; round < rounds; round++) {
    await reset();
    // Sent at once, in another order each round (the first sent tends to get its locks first).
    const replies: string[] = [];
    await Promise.all(orders[round % orders.length].map(async (i) => (replies[i] = await outcome(c, calls[i]))));
    const got = JSON.stringify({ replies, host: await state() });
    assert.ok(serial.has(got), `round ${round}: not the outcome of any serial order:\n${got}\nserial outcomes:\n${[...serial.keys()].join('\n')}`);
  }
}

/** The links as a change would touch them: name, kind, master, alias, UP, MTU (no ifindex: a re-made link is equal). */
async function linuxState(ns: string): Promise<string> {
  return JSON.stringify(
    (await linksJson(ns))
      .map((l) => [l.ifname, l.linkinfo?.info_kind ?? '', l.master ?? '', l.ifalias ?? '', l.flags.includes('UP'), l.mtu])
      .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
  );
}

/**
 * Run `fn` with `ip monitor` watching the namespace; returns the netlink events fn caused. The
 * monitor is known to be listening when it prints the test's first marker, and to have printed
 * all of fn's events when it prints the second (a bridge added, then deleted).
 */
async function eventsDuring(ns: string, fn: () => Promise<void>): Promise<string[]> {
  const mon = spawn('ip', ['-n', ns, '-o', 'monitor', 'link', 'address', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  let stopped = false;
  const waiting = new Set<() => void>();
  mon.stdout.on('data', (d) => {
    out += d;
    for (const w of [...waiting]) w();
  });
  const seen = (re: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => re.test(out) && (waiting.delete(check), resolve());
      waiting.add(check);
      mon.once('exit', () => stopped || reject(new Error(`ip monitor exited: ${out}`)));
      check();
    });
  try {
    const marker = `mk${process.pid % 10000}`;
    // The monitor opens its socket a moment after it starts: add markers until one is seen.
    const listening = seen(new RegExp(`: ${marker}[:@]`));
    for (let i = 0; ; i++) {
      await ipn(ns, 'link', 'add', marker, 'type', 'bridge');
      await ipn(ns, 'link', 'del', marker);
      if (await Promise.race([listening.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 200))])) break;
      if (i > 100) throw new Error('ip monitor never saw the marker');
    }
    // Every marker event printed so far (some may still come), then fn, then the end marker.
    const end = `me${process.pid % 10000}`;
    await ipn(ns, 'link', 'add', 'mkflush', 'type', 'bridge');
    await seen(/: mkflush[:@]/);
    await ipn(ns, 'link', 'del', 'mkflush');
    await seen(/Deleted.*: mkflush[:@]/);
    const from = out.length;
    await fn();
    await ipn(ns, 'link', 'add', end, 'type', 'bridge');
    await seen(new RegExp(`: ${end}[:@]`));
    await ipn(ns, 'link', 'del', end);
    const between = out.slice(from, out.search(new RegExp(`^.*: ${end}[:@]`, 'm')));
    return between.split('\n').filter(Boolean);
  } finally {
    stopped = true;
    mon.kill('SIGKILL');
  }
}

describe('linuxbridge through a real brick serve', { skip }, () => {
  let ns = '';
  let client: XmlRpcClient;
  let serve: ReturnType<typeof startServe>;
  before(async () => {
    ns = randomNs('brick-race');
    namespaces.push(ns);
    execFileSync('ip', ['netns', 'add', ns]);
    // No IPv6: its addresses (DAD) come by themselves a second after a link goes up, and the
    // no-event check below must only see what brick does.
    execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    for (const [a, b] of [['up0', 'up0p'], ['up1', 'up1p'], ['ul0', 'ul0p']]) {
      await ipn(ns, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b);
      await ipn(ns, 'link', 'set', a, 'up');
      await ipn(ns, 'link', 'set', b, 'up');
    }
    await ipn(ns, 'address', 'add', '192.0.2.1/24', 'dev', 'ul0');
    const cfg = await serveConfig('lb', `backend = "linuxbridge"\nnamespace = "${ns}"\nvlan_bridge_name = "{bridge}.{vlan}"`);
    serve = startServe(cfg.file, children);
    await serve.listening;
    client = new XmlRpcClient({ url: cfg.url, user: 'oracle', password: PW });
  });
  after(() => {
    client?.close();
    serve?.child.kill('SIGTERM');
  });

  /** Back to the start: only lo and the veth pairs, every one up and no port. */
  const reset = async () => {
    for (const l of await linksJson(ns)) if (!['lo', 'up0', 'up0p', 'up1', 'up1p', 'ul0', 'ul0p'].includes(l.ifname)) await ipn(ns, 'link', 'del', 'dev', l.ifname).catch(() => {});
    for (const p of ['up0', 'up1']) await ipn(ns, 'link', 'set', 'dev', p, 'nomaster');
  };

  it('the same ensure 10 times at once: one makes the bridge and takes the uplink, nine change nothing and say so', async () => {
    await reset();
    const replies = (await Promise.all(Array.from({ length: 10 }, () => client.call('network_ensure_bridge', 'brs0', { uplink: 'up0' })))) as any[];
    const made = replies.filter((r) => r.changed);
    assert.equal(made.length, 1, JSON.stringify(replies));
    assert.deepEqual(made[0].changes, ['created bridge brs0', "marked brs0 as brick's", 'set brs0 mtu 1500', 'brought brs0 up', 'made up0 a port of brs0']);
    for (const r of replies.filter((x) => !x.changed)) assert.deepEqual(r.changes, []);
    const links = await linksJson(ns);
    assert.equal(links.filter((l) => l.ifname === 'brs0').length, 1);
    assert.equal(links.find((l) => l.ifname === 'up0')?.master, 'brs0');
  });

  it('ensure bridge X, ensure a VLAN bridge on X and remove X at once, X absent and X there: each round is one serial order, replies and host', async () => {
    const calls: Call[] = [
      ['network_ensure_bridge', 'brx', { uplink: 'up1' }],
      ['network_ensure_vlan_bridge', 'brx', 10, {}],
      ['network_remove_bridge', 'brx'],
    ];
    await raceAgainstSerial(client, calls, reset, () => linuxState(ns), 4);
    await raceAgainstSerial(client, calls, async () => (await reset(), await client.call(...calls[0])), () => linuxState(ns), 4);
  });

  let prevExists = false;
  it('ensure and remove of one bridge, three of each at once: one serial order each round, nothing half-made', async () => {
    await reset();
    for (let round = 0; round < 5; round++) {
      const calls: Call[] = Array.from({ length: 6 }, (_, i) => (i % 2 ? ['network_remove_bridge', 'brr'] : ['network_ensure_bridge', 'brr', { uplink: 'up1' }]));
      const replies = (await Promise.all(calls.map(([m, ...a]) => client.call(m, ...a)))) as any[];
      const made = replies.filter((r, i) => i % 2 === 0 && r.changed).length;
      const removed = replies.filter((r, i) => i % 2 === 1 && r.removed).length;
      const links = await linksJson(ns);
      const br = links.find((l) => l.ifname === 'brr');
      const had = Number(prevExists);
      // Serial: each "made" follows an absent bridge, each "removed" a present one.
      const exists = had + made - removed;
      assert.ok(exists === 0 || exists === 1, `round ${round}: made ${made}, removed ${removed}, had ${had}: ${JSON.stringify(replies)}`);
      assert.equal(Boolean(br), exists === 1, `round ${round}: the replies say the bridge ${exists ? 'exists' : 'is gone'}`);
      if (br) {
        assert.deepEqual([br.ifalias, br.flags.includes('UP'), links.find((l) => l.ifname === 'up1')?.master], ['brick:bridge', true, 'brr'], 'whole');
        for (const r of replies.filter((x, i) => i % 2 === 0 && x.changed)) assert.equal(r.changes.length, 5);
      } else assert.equal(links.find((l) => l.ifname === 'up1')?.master, undefined, 'the uplink released');
      prevExists = Boolean(br);
    }
  });

  it('every ensure asked again: no netlink event, the same ifindex, changed false', async () => {
    await reset();
    const first: Call[] = [
      ['network_ensure_bridge', 'brp0', { uplink: 'up0', stp: false }],
      ['network_setup_control', 'ctl0', '169.254.0.1/16'],
      ['network_ensure_vxlan_bridge', 'ul0', 4243, {}],
      ['network_ensure_vxlan_bridge', 'ul0', 4244, { remote: '192.0.2.9' }],
      ['network_ensure_bridge', 'brp1', { mtu: 1400 }],
    ];
    for (const [m, ...a] of first) assert.equal(((await client.call(m, ...a)) as any).changed, true, `${m}: first time`);
    const index = async () => Object.fromEntries((await linksJson(ns)).map((l) => [l.ifname, l.ifindex]));
    // The kernel's own events after a change (carrier as ports start forwarding) die down first.
    for (let i = 0, quiet = 0; quiet < 2; i++) {
      const ev = await eventsDuring(ns, () => new Promise((r) => setTimeout(r, 500)));
      quiet = ev.length ? 0 : quiet + 1;
      assert.ok(i < 100, 'the namespace never went quiet');
    }
    const before = await index();
    const replies: any[] = [];
    const events = await eventsDuring(ns, async () => {
      for (const [m, ...a] of first) replies.push(await client.call(m, ...a));
    });
    assert.deepEqual(events, [], 'no link, address or route changed');
    for (const r of replies) assert.deepEqual([r.changed, r.changes], [false, []], JSON.stringify(r));
    assert.deepEqual(await index(), before);
  });
});

describe('Open vSwitch through a real brick serve', { skip: skipOvs }, () => {
  let ovs: Ovs;
  let client: XmlRpcClient;
  let serve: ReturnType<typeof startServe>;
  before(async () => {
    ovs = await startOvs();
    const cfg = await serveConfig('ovs', `backend = "openvswitch"\nnamespace = "${ovs.netns}"\novs_rundir = "${ovs.rundir}"\nvlan_bridge_name = "{bridge}.{vlan}"`);
    serve = startServe(cfg.file, children);
    await serve.listening;
    client = new XmlRpcClient({ url: cfg.url, user: 'oracle', password: PW });
  });
  after(async () => {
    client?.close();
    serve?.child.kill('SIGTERM');
    await serve?.exited;
    await ovs?.stop();
  });

  /** Bridges, ports (fake, tag, brick's mark) and interfaces, by name: what a change touches. */
  const ovsState = async (withUuids = false) => {
    // Without uuids: a row that refers to another refers to "uuid" (a re-made bridge is equal).
    const norm = (v: unknown): unknown => (Array.isArray(v) ? (v[0] === 'uuid' && !withUuids ? 'uuid' : v.map(norm)) : v);
    const table = async (t: string, cols: string) => JSON.parse((await ovs.vsctl(['--format=json', `--columns=${cols}`, 'list', t])).stdout).data.map((r: unknown[]) => JSON.stringify(norm(r)));
    return JSON.stringify({
      bridges: (await table('Bridge', `${withUuids ? '_uuid,' : ''}name,ports,external_ids,datapath_type`)).sort(),
      ports: (await table('Port', `${withUuids ? '_uuid,' : ''}name,tag,fake_bridge,external_ids`)).sort(),
      ifaces: (await table('Interface', `${withUuids ? '_uuid,ofport,' : ''}name,type`)).sort(),
    });
  };
  const reset = async () => {
    for (const b of (await ovs.vsctl(['list-br'])).stdout.split('\n').filter(Boolean)) await ovs.vsctl(['--if-exists', 'del-br', b]);
  };

  it('ensure bridge X, ensure a VLAN bridge on X and remove X at once, X absent and X there: each round is one serial order, replies and Open vSwitch', async () => {
    const calls: Call[] = [
      ['network_ensure_bridge', 'obx', { datapath_type: 'netdev' }],
      ['network_ensure_vlan_bridge', 'obx', 10, {}],
      ['network_remove_bridge', 'obx'],
    ];
    await raceAgainstSerial(client, calls, reset, () => ovsState(), 4);
    await raceAgainstSerial(client, calls, async () => (await reset(), await client.call(...calls[0])), () => ovsState(), 4);
  });

  it('ensure and remove of one VLAN bridge, four of each at once: the replies add up to the end state, which is whole or absent', async () => {
    await reset();
    await client.call('network_ensure_bridge', 'obv', { datapath_type: 'netdev' });
    let had = 0;
    for (let round = 0; round < 4; round++) {
      const calls: Call[] = Array.from({ length: 8 }, (_, i) => (i % 2 ? ['network_remove_vlan_bridge', 'obv.20'] : ['network_ensure_vlan_bridge', 'obv', 20, {}]));
      const replies = (await Promise.all(calls.map(([m, ...a]) => client.call(m, ...a)))) as any[];
      const made = replies.filter((r, i) => i % 2 === 0 && r.changed).length;
      const removed = replies.filter((r, i) => i % 2 === 1 && r.removed).length;
      const exists = had + made - removed;
      assert.ok(exists === 0 || exists === 1, `round ${round}: had ${had}, made ${made}, removed ${removed}`);
      const port = JSON.parse((await ovs.vsctl(['--format=json', '--columns=name,tag,fake_bridge,external_ids', 'list', 'Port'])).stdout).data.find((r: any[]) => r[0] === 'obv.20');
      assert.equal(Boolean(port), exists === 1, `round ${round}: the replies say obv.20 ${exists ? 'exists' : 'is gone'}`);
      if (port) assert.deepEqual([port[1], port[2], Object.fromEntries(port[3][1])['brick-owner']], [20, true, 'vlan-bridge'], 'whole: tagged, fake, marked');
      had = exists;
    }
  });

  it('every ensure asked again changes nothing in Open vSwitch: the same rows (uuids, ofports), changed false', async () => {
    await reset();
    const calls: Call[] = [
      ['network_ensure_bridge', 'obr', { datapath_type: 'netdev', stp: false, mtu: 1400 }],
      ['network_ensure_vlan_bridge', 'obr', 30, {}],
      ['network_ensure_bridge', 'obr', {}],
    ];
    for (const [m, ...a] of calls) await client.call(m, ...a);
    const before = await ovsState(true);
    for (const [m, ...a] of calls) {
      const r = (await client.call(m, ...a)) as any;
      assert.deepEqual([r.changed, r.changes], [false, []], `${m}: ${JSON.stringify(r)}`);
    }
    assert.equal(await ovsState(true), before);
  });
});

describe('serve SIGKILLed with a change that needs confirmation', { skip }, () => {
  /** serve's children (ip, the standing reader): killed with it, as systemd stops the unit's cgroup. */
  const childrenOf = (pid: number) =>
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1] === String(pid);
        } catch {
          return false;
        }
      })
      .map(Number);

  it('at any point of the call: the next start puts the host back as it was, and an admin change made meanwhile stays', async () => {
    const ns = randomNs('brick-rk');
    namespaces.push(ns);
    execFileSync('ip', ['netns', 'add', ns]);
    await ipn(ns, 'link', 'add', 'mgmt0', 'type', 'veth', 'peer', 'name', 'mgmt0p');
    await ipn(ns, 'link', 'add', 'adm0', 'type', 'veth', 'peer', 'name', 'adm0p');
    for (const l of ['mgmt0', 'mgmt0p', 'adm0', 'adm0p']) await ipn(ns, 'link', 'set', l, 'up');
    await ipn(ns, 'address', 'add', '10.77.0.2/24', 'dev', 'mgmt0');
    await ipn(ns, 'route', 'add', 'default', 'via', '10.77.0.1', 'dev', 'mgmt0');
    const cfg = await serveConfig('rk', `backend = "linuxbridge"\nnamespace = "${ns}"`);
    const lines = async () => ({
      links: (JSON.parse(await linuxState(ns)) as unknown[]).map((l) => JSON.stringify(l)).sort(),
      addrs: (await ipn(ns, '-4', '-o', 'addr', 'show')).split('\n').filter(Boolean).map((l) => l.split(/\s+/).slice(1, 4).join(' ')).sort(),
      routes: (await ipn(ns, '-4', 'route', 'show')).split('\n').map((l) => l.trim()).filter(Boolean).sort(),
    });
    type Lines = Awaited<ReturnType<typeof lines>>;
    const plus = (a: Lines, b: Lines, minus: Lines): Lines => {
      const k = (x: keyof Lines) => [...new Set([...a[x], ...b[x].filter((l) => !minus[x].includes(l))])].sort();
      return { links: k('links'), addrs: k('addrs'), routes: k('routes') };
    };
    // Kill points: the moment the undo record appears (written before the batch: the kill lands
    // before, in or after the batch, whichever the machine's load makes it), twice, then inside the
    // confirmation window (the call replied).
    const points = ['record', 'record', 'replied'] as const;
    let before = await lines();
    const phases: string[] = [];
    for (const [i, point] of points.entries()) {
      const s = startServe(cfg.file, children);
      await s.listening;
      const c = new XmlRpcClient({ url: cfg.url, user: 'oracle', password: PW, keepAlive: false });
      const record = join(cfg.stateDir, 'network-pending.json');
      const killed = new Promise<string>((resolve) => {
        const kill = (phase: string) => {
          // Stopped first, so it starts no child between the look at its children and the kill.
          s.child.kill('SIGSTOP');
          const kids = childrenOf(s.child.pid!);
          s.child.kill('SIGKILL');
          for (const k of kids) {
            try {
              process.kill(-k, 'SIGKILL'); // run.ts starts each child as its own process group
            } catch {
              try {
                process.kill(k, 'SIGKILL');
              } catch {}
            }
          }
          resolve(phase);
        };
        if (point === 'replied') return;
        const w = watch(cfg.stateDir, () => {
          if (!existsSync(record)) return;
          w.close();
          let phase = 'record unreadable';
          try {
            phase = JSON.parse(readFileSync(record, 'utf8')).deadline_ms === 0 ? 'applying' : 'window';
          } catch {}
          kill(phase);
        });
        void s.exited.then(() => w.close());
      });
      const reply = c.call('network_ensure_bridge', 'brmgmt', { uplink: 'mgmt0', confirm_within_s: 300 }).then(
        () => true,
        () => false,
      );
      if (point === 'replied') {
        assert.equal(await reply, true, 'the call replied');
        s.child.kill('SIGKILL');
        phases.push('window (replied)');
      } else phases.push(await killed);
      await s.exited;
      await reply;
      c.close();
      // What an admin does while brick is down: an address, a route and a bridge of their own; and
      // when the kill came before the uplink was enslaved (so before any address moved), a new
      // management address: the old one out, another in.
      const asKilled = await lines();
      const mgmt0 = asKilled.links.map((l) => JSON.parse(l)).find((l) => l[0] === 'mgmt0');
      const enslaved = mgmt0[2] === 'brmgmt';
      if (!enslaved) {
        const old = asKilled.addrs.find((a) => a.startsWith('mgmt0 '))!.split(' ')[2];
        await ipn(ns, 'address', 'del', old, 'dev', 'mgmt0');
        await ipn(ns, 'address', 'add', `10.77.0.${10 + i}/24`, 'dev', 'mgmt0');
        await ipn(ns, 'route', 'replace', 'default', 'via', '10.77.0.1', 'dev', 'mgmt0');
      }
      await ipn(ns, 'address', 'add', `10.88.${i}.1/24`, 'dev', 'adm0');
      await ipn(ns, 'route', 'add', `10.99.${i}.0/24`, 'via', `10.88.${i}.2`, 'dev', 'adm0');
      await ipn(ns, 'link', 'add', `bradm${i}`, 'type', 'bridge');
      const adminDone = await lines();
      const again = startServe(cfg.file, children);
      await again.listening;
      const after = await lines();
      again.child.kill('SIGTERM');
      assert.equal(await again.exited, 0);
      // Killed before the uplink was enslaved: only the bridge the call made (if it got that far) goes;
      // the addresses and routes are the admin's as they left them. After: the host before the
      // killed call, plus what the admin added.
      const expected = enslaved
        ? plus(before, adminDone, asKilled)
        : { ...adminDone, links: adminDone.links.filter((l) => JSON.parse(l)[0] !== 'brmgmt') };
      assert.deepEqual(after, expected, `killed at ${phases[i]} (${enslaved ? 'uplink enslaved' : 'uplink not yet enslaved'}): the killed call is undone, the admin's changes stay`);
      assert.deepEqual(readdirSync(cfg.stateDir).filter((f) => f.includes('network-pending')), [], 'no record left');
      before = after;
    }
    assert.equal(phases.at(-1), 'window (replied)');
  });
});
