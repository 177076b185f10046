// A listing whose netlink dump the kernel interrupted ("Dump was interrupted and may be
// inconsistent.", exit 0 from iproute2 6.1) is read again, never used (src/shared/ip-dump.ts); the
// real kernel's side is test/host/ip-dump.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DUMP_ATTEMPTS, ipOnlyReads, uninterruptedDump } from '../../src/shared/ip-dump.js';
import { BrickError } from '../../src/shared/errors.js';
import { recordingRunner, type RunResult } from '../../src/shared/run.js';
import { netHost } from '../../src/network/host/netns.js';
import { networkConfig, testCtx, call } from '../fixtures/network-ctx.js';
import { rejects } from '../fixtures/faults.js';

const INTR = 'Dump was interrupted and may be inconsistent.\n';
const reads = (answers: Array<Partial<RunResult> | Error>) => {
  let n = 0;
  const read = async (): Promise<RunResult> => {
    const a = answers[Math.min(n++, answers.length - 1)];
    if (a instanceof Error) throw a;
    return { code: 0, stdout: '', stderr: '', ...a };
  };
  return { read, count: () => n };
};

describe('uninterruptedDump', () => {
  it('reads again while the dump was interrupted and answers the first whole one', async () => {
    const r = reads([{ stdout: 'partial 1', stderr: INTR }, { stdout: 'partial 2', stderr: INTR }, { stdout: 'whole' }]);
    const got = await uninterruptedDump(r.read, 'ip -json link show');
    assert.equal(got.stdout, 'whole');
    assert.equal(r.count(), 3);
  });

  it(`gives up after ${DUMP_ATTEMPTS} interrupted reads in a row: COMMAND_FAILED saying why and that nothing changed`, async () => {
    const r = reads([{ stdout: 'partial', stderr: INTR }]);
    await rejects(uninterruptedDump(r.read, 'ip -json link show'), 'COMMAND_FAILED', new RegExp(`ip -json link show: the kernel interrupted its dump ${DUMP_ATTEMPTS} times in a row.*nothing was changed`));
    assert.equal(r.count(), DUMP_ATTEMPTS);
    const seven = reads([...Array.from({ length: DUMP_ATTEMPTS - 1 }, () => ({ stderr: INTR })), { stdout: 'whole' }]);
    assert.equal((await uninterruptedDump(seven.read, 'ip')).stdout, 'whole');
    assert.equal(seven.count(), DUMP_ATTEMPTS);
  });

  it('an iproute2 that exits non-zero on an interrupted dump (the runner threw with its stderr) is read again too', async () => {
    const r = reads([new BrickError('COMMAND_FAILED', `ip -json addr show: exit 1: ${INTR}`), { stdout: 'whole' }]);
    assert.equal((await uninterruptedDump(r.read, 'ip')).stdout, 'whole');
    assert.equal(r.count(), 2);
  });

  it('any other answer or error is the caller\'s, after one read', async () => {
    const failed = reads([{ code: 1, stderr: 'Cannot find device "x"\n' }]);
    assert.equal((await uninterruptedDump(failed.read, 'ip')).code, 1);
    assert.equal(failed.count(), 1);
    const timeout = reads([new BrickError('TIMEOUT', 'ip: killed')]);
    await rejects(uninterruptedDump(timeout.read, 'ip'), 'TIMEOUT', /killed/);
    assert.equal(timeout.count(), 1);
  });

  it('ipOnlyReads: show/list commands and batches of them only', () => {
    assert.equal(ipOnlyReads(['-json', '-details', 'link', 'show']), true);
    assert.equal(ipOnlyReads(['-json', '-4', 'route', 'show', 'table', 'main']), true);
    assert.equal(ipOnlyReads(['-json', 'addr', 'list']), true);
    assert.equal(ipOnlyReads(['link', 'set', 'br0', 'up']), false);
    assert.equal(ipOnlyReads(['-json', '-details', '-force', '-batch', '-'], 'link show dev br0\nlink show master br0\n'), true);
    assert.equal(ipOnlyReads(['-batch', '-'], 'link add br0 type bridge\nlink show dev br0\n'), false);
    assert.equal(ipOnlyReads(['-batch', '-']), false);
  });
});

describe('the network layer never plans from an interrupted dump', () => {
  it('netHost.ip reads a listing again until it is whole; a change command runs once', async () => {
    let linkReads = 0;
    const r = recordingRunner((c) => {
      if (c.args.includes('show') && ++linkReads <= 2) return { stdout: '[]', stderr: INTR };
      return { stdout: '[{"ifindex":1,"ifname":"lo","flags":[],"mtu":65536}]' };
    });
    const host = netHost(networkConfig({}), r);
    const got = await host.ip(['-json', '-details', 'link', 'show']);
    assert.match(got.stdout, /"lo"/);
    assert.equal(r.calls.length, 3);
    await host.ip(['link', 'set', 'lo', 'up']);
    assert.equal(r.calls.length, 4, 'a change is never repeated');
  });

  it('network_ensure_bridge whose reads stay interrupted fails with COMMAND_FAILED and runs no change', async () => {
    const r = recordingRunner((c) => (c.args.includes('-json') ? { stdout: '[]', stderr: INTR } : {}));
    await rejects(call(testCtx(networkConfig({}), { runner: r }), 'network_ensure_bridge', 'br9', {}), 'COMMAND_FAILED', /interrupted its dump \d+ times in a row/);
    const changes = r.calls.filter((c) => c.cmd === 'ip' && !c.args.includes('-json'));
    assert.deepEqual(changes.map((c) => c.args.join(' ')), [], 'no ip change command ran');
  });
});
