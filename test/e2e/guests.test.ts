// Real guests from the XML brick defines: a private libvirtd (qemu:///system, test/fixtures/libvirtd.ts)
// boots the e2e harness's Debian kernel and initramfs (test/e2e/image.ts) by direct kernel boot under
// TCG, with a raw disk and a serial console written to a file that this test reads. Every call goes
// to brick over XML-RPC (a real server with every method, as the orchestrator calls it).
//
// KVM path: domain_define with the tweaks a CloudStack VM gets (extnet to a libvirt network fronting
// a bridge in libvirtd's netns, macspoof, extraconfig, qemu_cmdline -device pvpanic), virsh start; the
// guest boots to its init and says so, its disk is the raw file, it pings the bridge's address; the
// tap is in that bridge, pvpanic is on QEMU's command line, the filterref is gone from the live XML.
//
// DPDK path: dpdk_add_port twice (server and client mode) on a netdev bridge of a private OVS-DPDK
// (test/fixtures/ovs-dpdk.ts), two guests defined with the dpdk tweak (hugepage memory shared with
// OVS, vhost-user NICs) and started by libvirt; each NIC gets an address and one guest pings the
// other through OVS-DPDK; then dpdk_del_port and the ping stops. define → first ping is a figure.
//
// The guest script is test/e2e/guest/scenarios/libvirt-guest.sh. Console lines and ping statistics
// are printed in the test output. Hugepages for the guests are reserved here and given back.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { readFile, writeFile, open } from 'node:fs/promises';
import { ensureImage, type GuestImage } from './image.js';
import { vmUnavailable, recordE2e, figure } from './support.js';
import type { Figure } from '../../bench/lib.js';
import { startLibvirtd, PrerequisiteError, type Libvirtd } from '../fixtures/libvirtd.js';
import { startOvsDpdk, type OvsDpdk } from '../fixtures/ovs-dpdk.js';
import { reserveHugepages } from '../fixtures/hugepages.js';
import { startTestServer, type TestServer } from '../fixtures/server.js';
import { allMethods } from '../../src/agent-extension/methods.js';

const CI = process.env.CI === 'true';
const skip = vmUnavailable();
/** Guest RAM: the initramfs (busybox, iproute2, kernel modules, NFS tools: 36 MB) unpacks into it. */
const GUEST_MB = 256;
const nowMs = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Figures go to bench/out/guests.json (bench/guests.ts repeats the test for more samples). */
const recordGuests = (figures: Figure[]) =>
  recordE2e(figures, `guests: qemu TCG, ${GUEST_MB} MB guests, ${loadavg()[0].toFixed(2)} load average (1 min) when measured`, 'guests');

/** A serial console libvirt writes to a file; E2E lines become events stamped when read. */
class Console {
  readonly lines: { hostMs: number; text: string }[] = [];
  private offset = 0;
  private partial = '';
  constructor(readonly name: string, readonly path: string) {}

  async poll(): Promise<void> {
    const fh = await open(this.path, 'r').catch(() => undefined);
    if (!fh) return;
    try {
      const buf = Buffer.alloc(1 << 16);
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
        if (!bytesRead) break;
        this.offset += bytesRead;
        const text = this.partial + buf.subarray(0, bytesRead).toString('utf8');
        const parts = text.split(/\r?\n/);
        this.partial = parts.pop() ?? '';
        const at = nowMs();
        for (const p of parts) if (p.trim()) this.lines.push({ hostMs: at, text: p.replace(/\r/g, '') });
      }
    } finally {
      await fh.close();
    }
  }

  events(event?: string): { hostMs: number; event: string; text: string }[] {
    const out: { hostMs: number; event: string; text: string }[] = [];
    for (const l of this.lines) {
      const m = /^E2E \d+\.\d+ (\S+) ?(.*)$/.exec(l.text);
      if (m && (!event || m[1] === event)) out.push({ hostMs: l.hostMs, event: m[1], text: m[2] });
    }
    return out;
  }

  /** The text of the first `event` line (disk, nic, addr...). */
  data(event: string): string | undefined {
    return this.events(event)[0]?.text;
  }

  /** Wait for an event matching pred; fail with the console's tail after ms, or at once on a guest "fail". */
  async waitFor(pred: (e: { hostMs: number; event: string; text: string }) => boolean, ms: number, what: string) {
    const until = Date.now() + ms;
    for (;;) {
      await this.poll();
      const fail = this.events('fail')[0];
      if (fail) throw new Error(`guest ${this.name} failed: ${fail.text}\n${this.tail()}`);
      const hit = this.events().find(pred);
      if (hit) return hit;
      if (Date.now() > until) throw new Error(`guest ${this.name}: no ${what} within ${ms / 1000} s; console ${this.path}:\n${this.tail()}`);
      await sleep(200);
    }
  }

  tail(n = 25): string {
    return this.lines.slice(-n).map((l) => `  | ${l.text}`).join('\n');
  }

  print(): void {
    for (const l of this.lines) process.stdout.write(`guest ${this.name} | ${l.text}\n`);
  }
}

interface PingRound {
  hostMs: number;
  round: number;
  transmitted: number;
  received: number;
  text: string;
}

function pingRounds(c: Console): PingRound[] {
  return c.events('ping').map((e) => {
    const m = /round=(\d+) .*?(\d+) packets transmitted, (\d+) packets received/.exec(e.text);
    return { hostMs: e.hostMs, round: Number(m?.[1] ?? -1), transmitted: Number(m?.[2] ?? 0), received: Number(m?.[3] ?? 0), text: e.text };
  });
}

/** A raw disk whose first bytes name it; the guest reads them back from /dev/vda. */
async function rawDisk(path: string, marker: string): Promise<void> {
  const buf = Buffer.alloc(1 << 20);
  buf.write(marker);
  await writeFile(path, buf);
}

/** A KVM domain as CloudStack's LibvirtComputingResource writes it, booting the e2e kernel directly. */
function domainXml(o: { name: string; mac: string; disk: string; console: string; image: GuestImage; cmdline: string }): string {
  return `<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>${o.name}</name>
  <uuid>${randomUUID()}</uuid>
  <description>Debian GNU/Linux 12 (64-bit)</description>
  <memory unit='KiB'>${GUEST_MB * 1024}</memory>
  <currentMemory unit='KiB'>${GUEST_MB * 1024}</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${o.image.kernel}</kernel>
    <initrd>${o.image.baseInitrd}</initrd>
    <cmdline>${o.cmdline}</cmdline>
  </os>
  <features>
    <acpi/>
    <apic/>
    <pae/>
  </features>
  <cpu mode='maximum'/>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source file='${o.disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='bridge'>
      <mac address='${o.mac}'/>
      <source bridge='cloudbr0'/>
      <model type='virtio'/>
      <filterref filter='no-mac-spoofing'/>
    </interface>
    <serial type='file'>
      <source path='${o.console}'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

function cmdline(name: string, args: Record<string, string>): string {
  return [
    'console=ttyS0', 'loglevel=3', 'panic=-1', 'nokaslr', 'mitigations=off', 'tsc=reliable', 'no_timer_check',
    'e2e.scenario=libvirt-guest', `e2e.name=${name}`, ...Object.entries(args).map(([k, v]) => `e2e.${k}=${v}`),
  ].join(' ');
}

describe('e2e: guests booted by libvirt from the XML brick defines', { skip, timeout: 20 * 60_000 }, () => {
  let image: GuestImage;
  let lv: Libvirtd | undefined;
  let startErr: unknown;
  const id = randomBytes(3).toString('hex');

  before(async () => {
    image = await ensureImage();
    try {
      lv = await startLibvirtd({ hugepages: true });
    } catch (e) {
      startErr = e;
      if (CI || !(e instanceof PrerequisiteError)) throw e;
    }
  }, { timeout: 12 * 60_000 });

  after(async () => {
    await lv?.stop();
  });

  const domains: string[] = [];
  const cleanDomains = async () => {
    for (const d of domains.splice(0)) {
      await lv!.virsh(['destroy', d], { allowFailure: true });
      await lv!.virsh(['undefine', d], { allowFailure: true });
    }
  };

  it('KVM path: extnet, macspoof, extraconfig and qemu_cmdline; the guest boots and pings on the libvirt network', { timeout: 6 * 60_000 }, async (t) => {
    if (!lv) return t.skip(`libvirtd could not start here: ${(startErr as Error).message}`);
    const bridge = `brk${id}`;
    await lv.ip(['link', 'add', bridge, 'type', 'bridge']);
    await lv.ip(['addr', 'add', '198.18.22.1/24', 'dev', bridge]);
    await lv.ip(['link', 'set', bridge, 'up']);
    const net = `guest-${id}`;
    const netXml = `${lv.dir}/net.xml`;
    await writeFile(netXml, `<network><name>${net}</name><forward mode='bridge'/><bridge name='${bridge}'/></network>\n`);
    await lv.virsh(['net-define', netXml]);
    await lv.virsh(['net-start', net]);

    const srv = await startTestServer({ domain: { libvirt_uri: lv.uri } }, allMethods());
    const name = `i-2-22-VM-${id}`;
    const mac = '02:00:4c:5e:22:01';
    const disk = `${lv.dir}/${name}.raw`;
    const consolePath = `${lv.dir}/${name}.console`;
    await rawDisk(disk, `brick-disk ${name}`);
    const xml = domainXml({ name, mac, disk, console: consolePath, image, cmdline: cmdline(name, { addr: '198.18.22.10/24', peer: '198.18.22.1' }) });
    const tweaks = {
      extnet: { [mac]: net },
      macspoof: true,
      extraconfig: encodeURIComponent('<memoryBacking>\n  <nosharepages/>\n</memoryBacking>\n'),
      qemu_cmdline: ['-device', 'pvpanic'],
    };
    const t0 = nowMs();
    const defined = (await srv.call('domain_define', xml, tweaks)) as { name: string; uuid: string; xml: string };
    domains.push(name);
    try {
      assert.equal(defined.name, name);
      const con = new Console('kvm', consolePath);
      await lv.virsh(['start', name]);
      const tStart = nowMs();
      try {
        const boot = await con.waitFor((e) => e.event === 'boot', 180_000, '"boot" line from the guest init');
        await con.waitFor((e) => e.event === 'ready', 120_000, '"ready" line');
        const ping = await con.waitFor((e) => e.event === 'ping' && / [1-9]\d* packets received/.test(e.text), 120_000, 'ping round with replies');
        process.stdout.write(`guest kvm: defined → boot line ${((boot.hostMs - t0) / 1000).toFixed(1)} s, → first ping replies ${((ping.hostMs - t0) / 1000).toFixed(1)} s (start at ${((tStart - t0) / 1000).toFixed(1)} s)\n`);

        // the guest's view: its disk is the raw file, its NIC has the MAC and the address
        assert.equal(con.data('disk'), `brick-disk ${name}`);
        assert.equal(con.data('nic'), `mac=${mac}`);
        assert.match(con.data('addr') ?? '', /"local":"198\.18\.22\.10","prefixlen":24/);

        // libvirt's live view: network NIC on the bridge, no filterref, the extraconfig element
        const live = (await lv.virsh(['dumpxml', name])).stdout;
        // (a running NIC on a bridge-mode network shows its actual type, 'bridge', with the network as source)
        const iface = [...live.matchAll(/<interface [\s\S]*?<\/interface>/g)].map((m) => m[0]).find((x) => x.includes(`'${mac}'`)) ?? '';
        assert.match(iface, new RegExp(`<source network='${net}'[^>]*bridge='${bridge}'`), `live interface:\n${iface || live}`);
        assert.doesNotMatch(live, /filterref/, 'macspoof: the no-mac-spoofing filterref must be gone from the live XML');
        assert.match(live, /<memoryBacking>\s*<nosharepages\/>\s*<\/memoryBacking>/);
        const tap = /<target dev='([^']+)'/.exec(iface)?.[1];
        assert.ok(tap, `live interface has a tap device:\n${iface}`);
        const link = JSON.parse((await lv.ip(['-j', 'link', 'show', 'dev', tap])).stdout) as { ifname: string; master?: string; address?: string }[];
        assert.equal(link[0]?.master, bridge, `tap ${tap} is in the network's bridge`);

        // QEMU's command line: pvpanic from qemu_cmdline, mem-merge=off from extraconfig's nosharepages
        const pid = await lv.qemuPid(name);
        assert.ok(pid, 'QEMU is running');
        const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
        const dev = argv.indexOf('pvpanic');
        assert.ok(dev > 0 && argv[dev - 1] === '-device', `-device pvpanic in QEMU's argv: ${argv.join(' ')}`);
        assert.ok(argv.some((a) => /mem-merge=off/.test(a)), `mem-merge=off (nosharepages) in QEMU's argv: ${argv.join(' ')}`);
        process.stdout.write(`guest kvm: ${pingRounds(con).map((r) => r.text).join('\n           ')}\n`);
        const secs = (ms: number) => [Math.round(ms - t0) / 1000];
        recordGuests([
          { ...figure('kvm_define_to_boot_s', 'KVM path: domain_define → the guest init\'s first console line (TCG, direct kernel boot)', 's', secs(boot.hostMs)), id: 'guests.kvm_define_to_boot_s' },
          { ...figure('kvm_define_to_ping_s', 'KVM path: domain_define → first ping replies on the libvirt network', 's', secs(ping.hostMs)), id: 'guests.kvm_define_to_ping_s' },
        ]);
      } finally {
        await con.poll().catch(() => {});
        con.print();
      }
    } finally {
      await cleanDomains();
      await lv.virsh(['net-destroy', net], { allowFailure: true });
      await lv.virsh(['net-undefine', net], { allowFailure: true });
      await lv.ip(['link', 'del', bridge], { allowFailure: true });
      await srv.close();
    }
  });

  it('DPDK path: two guests on vhost-user ports (server and client mode) ping through OVS-DPDK; dpdk_del_port stops it', { timeout: 8 * 60_000 }, async (t) => {
    if (!lv) return t.skip(`libvirtd could not start here: ${(startErr as Error).message}`);
    let ovs: OvsDpdk | undefined;
    let release: (() => Promise<void>) | undefined;
    let srv: TestServer | undefined;
    try {
      ovs = await startOvsDpdk();
    } catch (e) {
      if (CI) throw e;
      return t.skip(`OVS-DPDK could not start here: ${(e as Error).message}`);
    }
    const consoles: Console[] = [];
    try {
      // each guest's whole memory is 2 MB hugepages shared with OVS
      // 2 × GUEST_MB for the guests, plus room for one more OVS-DPDK fixture (72 pages) that a test
      // running at the same time may start: it takes free pages when it finds enough
      release = await reserveHugepages((2 * GUEST_MB) / 2 + 80);
      const bridge = await ovs.addBridge('bg');
      srv = await startTestServer({ domain: { libvirt_uri: lv.uri }, network: { ovs_rundir: ovs.rundir } }, allMethods());
      const t0 = nowMs();
      const portA = (await srv.call('dpdk_add_port', bridge, { mode: 'server' })) as Record<string, string>;
      const portB = (await srv.call('dpdk_add_port', bridge, { mode: 'client' })) as Record<string, string>;
      assert.equal(portA.guest_mode, 'client');
      assert.equal(portB.guest_mode, 'server');
      const guests: { key: string; mac: string; port: Record<string, string>; args: Record<string, string> }[] = [
        { key: 'a', mac: '02:00:4c:5e:22:0a', port: portA, args: { addr: '198.18.23.1/24' } },
        { key: 'b', mac: '02:00:4c:5e:22:0b', port: portB, args: { addr: '198.18.23.2/24', peer: '198.18.23.1' } },
      ];
      for (const g of guests) {
        const name = `i-2-23-VM-${id}${g.key}`;
        const disk = `${lv.dir}/${name}.raw`;
        const consolePath = `${lv.dir}/${name}.console`;
        await rawDisk(disk, `brick-disk ${name}`);
        const xml = domainXml({ name, mac: g.mac, disk, console: consolePath, image, cmdline: cmdline(name, g.args) });
        // QEMU 7.2 under TCG (no irqfd) segfaults in its vCPU thread when a vhost-user virtio-net
        // device with MSI-X starts (the guest driver's DRIVER_OK); with INTx it works. KVM hosts take
        // the irqfd path and are not affected. qemu_cmdline is the tweak for exactly such host quirks.
        const tweaks = {
          dpdk: { [g.mac]: { socket: g.port.socket, mode: g.port.guest_mode } },
          qemu_cmdline: ['-global', 'virtio-net-pci.vectors=0'],
        };
        const defined = (await srv.call('domain_define', xml, tweaks)) as { xml: string };
        domains.push(name);
        assert.match(defined.xml, /<interface type='vhostuser'>/);
        assert.match(defined.xml, /<access mode='shared'\/>/);
        consoles.push(new Console(`dpdk-${g.key}`, consolePath));
        await lv.virsh(['start', name]).catch(async (e) => {
          const free = (await readFile('/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages', 'utf8').catch(() => '?')).trim();
          throw new Error(`virsh start ${name} (free 2 MB hugepages now: ${free}): ${(e as Error).message}`);
        });
      }
      const [a, b] = consoles;
      for (const c of consoles) await c.waitFor((e) => e.event === 'ready', 240_000, '"ready" line');
      for (const [c, addr] of [[a, '198.18.23.1'], [b, '198.18.23.2']] as const) {
        assert.match(c.data('addr') ?? '', new RegExp(`"local":"${addr.replace(/\./g, '\\.')}","prefixlen":24`), `${c.name} has its address`);
      }
      const firstPing = await b.waitFor((e) => e.event === 'ping' && / [1-9]\d* packets received/.test(e.text), 180_000, 'ping round with replies');
      const defineToPing = Math.round(firstPing.hostMs - t0) / 1000;
      process.stdout.write(`guest dpdk: dpdk_add_port ×2 + domain_define ×2 + start → first ping replies: ${defineToPing.toFixed(1)} s\n`);
      // both vhost-user interfaces are up in OVS's view
      for (const p of [portA, portB]) {
        assert.equal((await ovs.vsctl(['get', 'Interface', p.port, 'link_state'])).stdout.trim(), 'up', `${p.port} link_state`);
      }
      // a few more good rounds, then cut guest a's port
      await b.waitFor((e) => e.event === 'ping' && e.hostMs > firstPing.hostMs && / 5 packets received/.test(e.text), 60_000, 'a full ping round');
      const tDel = nowMs();
      const del = (await srv.call('dpdk_del_port', portA.port)) as Record<string, unknown>;
      assert.equal(del.removed, true, JSON.stringify(del));
      // the round running at the cut may still see replies; every round that starts after it must not
      const afterCut = (r: PingRound) => r.hostMs > tDel;
      await b.waitFor(() => pingRounds(b).filter(afterCut).length >= 3, 90_000, 'three ping rounds after dpdk_del_port');
      const rounds = pingRounds(b);
      const later = rounds.filter(afterCut).slice(1);
      assert.ok(later.length >= 2);
      for (const r of later) assert.equal(r.received, 0, `ping round ${r.round} after dpdk_del_port still got replies: ${r.text}`);
      const before = rounds.filter((r) => !afterCut(r) && r.received > 0);
      assert.ok(before.length >= 2, 'ping worked before the cut');
      process.stdout.write(`guest dpdk: ping statistics (guest b → a through OVS-DPDK; port ${portA.port} deleted at +${((tDel - t0) / 1000).toFixed(1)} s):\n`);
      for (const r of rounds) process.stdout.write(`  +${((r.hostMs - t0) / 1000).toFixed(1)} s ${r.hostMs > tDel ? '(after del) ' : ''}${r.text}\n`);
      await srv.call('dpdk_del_port', portB.port);
      const stopped = rounds.find((r) => afterCut(r) && r.received === 0)!;
      recordGuests([
        { ...figure('dpdk_define_to_ping_s', 'DPDK path: dpdk_add_port ×2 → domain_define ×2 → virsh start ×2 → first ping replies between the guests', 's', [defineToPing]), id: 'guests.dpdk_define_to_ping_s' },
        { ...figure('dpdk_del_to_silence_s', 'DPDK path: dpdk_del_port → first ping round (5 pings, 0.2 s apart) with no reply', 's', [Math.round(stopped.hostMs - tDel) / 1000]), id: 'guests.dpdk_del_to_silence_s' },
      ]);
    } finally {
      for (const c of consoles) {
        await c.poll().catch(() => {});
        c.print();
      }
      await cleanDomains();
      await srv?.close();
      await ovs.stop();
      await release?.();
    }
  });
});
