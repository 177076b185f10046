// `brick serve` with network.gc_interval_s set collects brick's idle VXLAN bridges on its own, in
// the configured namespace, and leaves a person's bridge alone: the timer is wired into serve and
// takes the same locks as the calls.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { delNs, ipn, linksJson, networkConfig, needsRootAndIp, randomNs } from '../fixtures/network-ctx.js';
import { serve } from '../../src/agent-extension/serve.js';
import { XmlRpcClient } from '../../src/agent-extension/client.js';

const skip = needsRootAndIp();
const ns = randomNs('brick-gct');

before(async () => {
  if (skip) return;
  execFileSync('ip', ['netns', 'add', ns]);
  await ipn(ns, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1');
  await ipn(ns, 'link', 'set', 'up0', 'up');
  await ipn(ns, 'link', 'set', 'up1', 'up');
  await ipn(ns, 'addr', 'add', '192.0.2.1/24', 'dev', 'up0');
  await ipn(ns, 'link', 'add', 'brperson', 'type', 'bridge');
});
after(() => delNs(ns));

test('serve runs network_gc on its timer: brick\'s idle VXLAN bridge goes, a person\'s bridge stays', { skip }, async () => {
  const config = networkConfig({ namespace: ns, gc_interval_s: 1 });
  Object.assign(config.server, { listen: '127.0.0.1:0', password: 'gc-test-pw', password_file: '', generate_credentials: false, tls_cert: '', tls_key: '' });
  const stop = new AbortController();
  let url = '';
  const listening = new Promise<void>((resolve) => {
    void serve(config, { logFormat: 'json', logLevel: 'silent', signal: stop.signal, onListening: (u) => ((url = u), resolve()) }).then((code) =>
      assert.equal(code, 0),
    );
  });
  await listening;
  const client = new XmlRpcClient({ url, user: config.server.user, password: 'gc-test-pw' });
  try {
    const r = (await client.call('network_ensure_vxlan_bridge', 'up0', 4242, {})) as { bridge: string; changed: boolean };
    assert.equal(r.changed, true);
    const names = async () => (await linksJson(ns)).map((l) => l.ifname as string);
    assert.ok((await names()).includes(r.bridge), 'the VXLAN bridge exists right after the call');
    const deadline = Date.now() + 15_000;
    while ((await names()).includes(r.bridge) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 200));
    const left = await names();
    assert.ok(!left.includes(r.bridge), `the timer removed ${r.bridge}`);
    assert.ok(!left.includes('vxlan4242'), 'and its VXLAN device');
    assert.ok(left.includes('brperson'), "a person's bridge is left alone");
    assert.ok(left.includes('up0'), 'the uplink is left alone');
  } finally {
    client.close();
    stop.abort();
  }
});
