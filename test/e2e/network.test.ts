// brick's network calls on a real kernel (Debian's, under qemu), which this build machine's kernel
// cannot do (no 8021q, no bonding): brick serve + brick call inside the guest, each result checked
// there with iproute2 (`ip -d link`, routes, ping through a bond), never with brick's own view.
// The guest script is test/e2e/guest/scenarios/network.sh; each "ok"/"fail" line is one check.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { ensureImage, type GuestImage } from './image.js';
import { Vm } from './vm.js';
import { vmUnavailable, guestChecks, recordE2e, figure, secondsBetween } from './support.js';

const skip = vmUnavailable();

const EXPECTED = [
  // VLAN bridge on a bridge whose uplink is the virtio NIC
  'ensure-bridge', 'xenbr0-has-eth0', 'vlan-create', 'vlan-device-8021q', 'vlan-device-on-eth0', 'vlan-device-in-bridge',
  'vlan-bridge-is-bridge', 'vlan-bridge-up', 'vlan-again-unchanged',
  // bond uplink
  'bond-vlan-create', 'bond-vlan-device', 'bond-mode', 'bond-active', 'bond-vlan-ping', 'bond-failover-active-changed', 'bond-failover-ping',
  // GC
  'gc-dry-run', 'gc-dry-run-changed-nothing', 'gc-removes-unused', 'gc-removed-bridge', 'gc-removed-vlan-device', 'gc-kept-guest-bridge',
  'gc-kept-user-bridge', 'gc-kept-bond', 'gc-after-guest-left', 'gc-removed-xenbr0.100', 'gc-kept-xenbr0', 'gc-idempotent',
  // control0
  'control-setup', 'control0-bridge', 'control0-up', 'control0-address', 'control0-only-route', 'control0-nozeroconf', 'control0-ifcfg-removed',
  'control-again-unchanged',
];

describe('e2e: network calls on a real kernel', { skip, timeout: 15 * 60_000 }, () => {
  let image: GuestImage;
  before(async () => {
    image = await ensureImage();
  }, { timeout: 10 * 60_000 });

  it('VLAN bridges on a virtio NIC and on a bond, GC, control0: checked with ip -d link in the guest', { timeout: 8 * 60_000 }, async () => {
    const vm = new Vm(image, { scenario: 'network', nic: true, hardLimitMs: 7 * 60_000 });
    try {
      const exit = await vm.exited;
      const { ok, failed } = guestChecks(vm);
      assert.deepEqual(failed, [], `guest checks failed; console: ${vm.logPath}`);
      assert.equal(exit.clean, true, `the guest did not finish its script; console: ${vm.logPath}`);
      assert.deepEqual(EXPECTED.filter((n) => !ok.includes(n)), [], `checks that never reported ok; console: ${vm.logPath}`);
      const vlan = JSON.parse(vm.data('vlan-links') ?? '[]') as { ifname: string; master?: string; linkinfo?: { info_kind?: string; info_data?: { protocol?: string; id?: number } } }[];
      assert.equal(vlan[0]?.linkinfo?.info_kind, 'vlan');
      assert.equal(vlan[0]?.linkinfo?.info_data?.id, 100);
      assert.equal(vlan[0]?.linkinfo?.info_data?.protocol, '802.1Q');
      assert.equal(vlan[0]?.master, 'xenbr0.100');
      const serve = vm.events.find((e) => e.event === 'serve-up');
      const boot = vm.events.find((e) => e.event === 'boot');
      if (serve && boot) {
        recordE2e([figure('network_scenario_s', 'network scenario in the guest (serve up to the last check, ' + EXPECTED.length + ' checks)', 's', [secondsBetween(serve.hostMs, exit.hostMs)])]);
      }
    } finally {
      vm.kill();
    }
  });
});
