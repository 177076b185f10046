// domain_define stopped while it runs (its deadline passed, the client went away, brick serve
// stopping) changes nothing afterwards: the running hook is killed (with what it started), and
// virsh define never runs. Before, neither the hooks nor virsh were given the call's signal: the
// call answered TIMEOUT ("it may still change something") and the domain was defined seconds later.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfig } from '../../src/config/load.js';
import { Dispatcher } from '../../src/agent-extension/dispatch.js';
import { methods } from '../../src/agent-extension/domain/methods.js';
import { parseMethodResponse, serializeMethodCall, XmlRpcFault } from '../../src/agent-extension/codec.js';
import { run, type Runner } from '../../src/shared/run.js';
import { memoryLogger } from '../fixtures/server.js';
import { scratchDir } from '../fixtures/scratch.js';

const base = scratchDir('brick-domain-stopped-');
const XML = readFileSync(join(import.meta.dirname, '../golden/domain/kvm-small-input.xml'), 'utf8');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));

test('domain_define past its deadline: the hook is killed and virsh define never runs', { timeout: 120_000 }, async () => {
  const hooks = join(base, 'hooks');
  mkdirSync(join(hooks, 'before_vm_start'), { recursive: true });
  const pidFile = join(base, 'hook.pid');
  // The hook outlives the call's deadline (1 s) and the dispatcher's 5 s stop grace.
  writeFileSync(join(hooks, 'before_vm_start', '10_slow'), `#!/bin/sh\necho $$ > ${pidFile}\nsleep 9\n`);
  chmodSync(join(hooks, 'before_vm_start', '10_slow'), 0o755);
  const config = defaultConfig();
  config.server.call_timeout_s = 1;
  config.domain.hooks_dir = hooks;
  config.domain.hook_timeout_s = 60;
  config.domain.libvirt_uri = 'test:///default';
  const virsh: number[] = [];
  const recording: Runner = (cmd, args, opts) => {
    if (cmd === 'virsh') virsh.push(Date.now());
    return run(cmd, args, opts);
  };
  const { log } = memoryLogger();
  const d = new Dispatcher({ config, log, methods, run: recording });
  const reply = await d.handle(serializeMethodCall('domain_define', [XML, { hooks: true }]));
  assert.throws(
    () => parseMethodResponse(reply),
    (e: unknown) => e instanceof XmlRpcFault && /no result within 1 s/.test(e.faultString) && !/may still change/.test(e.faultString),
    String(reply),
  );
  const hookPid = Number(readFileSync(pidFile, 'utf8'));
  // However long the hook would have run: once it is gone, give virsh a moment to be started.
  for (let i = 0; i < 200 && alive(hookPid); i++) await sleep(100);
  assert.equal(alive(hookPid), false, 'the hook was killed');
  await sleep(1500);
  assert.deepEqual(virsh, [], 'virsh define ran after the call was stopped');
});
