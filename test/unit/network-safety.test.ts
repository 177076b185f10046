// A network call's deadline, through the real dispatcher and the real network methods, with a
// recording runner standing in for `ip`: every command gets the call's remaining time and signal,
// a batch stopped part-way is undone, a call stopped while it waits for a lock changes nothing, and
// the TIMEOUT fault says what changed. Safe apply's pending undo on disk: written before the change,
// removed when settled, rolled back by the next start.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Dispatcher } from '../../src/agent-extension/dispatch.js';
import { methods } from '../../src/network/methods.js';
import { linkKey } from '../../src/network/host/context.js';
import { netHost } from '../../src/network/host/netns.js';
import { SafeApply, bootId, ownerRuns, pendingPath, readPending, undoToReplay } from '../../src/network/host/safe-apply.js';
import { KeyedLock } from '../../src/shared/keyed-lock.js';
import { recordingRunner, type RecordedCall } from '../../src/shared/run.js';
import { BrickError } from '../../src/shared/errors.js';
import { createLogger } from '../../src/shared/log.js';
import { networkConfig } from '../fixtures/network-ctx.js';

const log = createLogger({ svc: 'test', level: 'silent' });
/** An `ip -batch` that changes the host (reads are `ip -json ... -batch`). */
const applies = (c: RecordedCall) => c.args.includes('-batch') && !c.args.includes('-json');

/** Like run(): a command still running when the call's signal aborts is killed and throws TIMEOUT. */
const hangUntilStopped = (c: RecordedCall) =>
  new Promise<never>((_, reject) => {
    const stop = () => reject(new BrickError('TIMEOUT', `ip ${c.args.join(' ')}: killed`, { started: true }));
    if (c.opts.signal?.aborted) stop();
    else c.opts.signal?.addEventListener('abort', stop, { once: true });
    if (!c.opts.signal) setTimeout(() => reject(new BrickError('TIMEOUT', 'no signal: killed by its own timeout', { started: true })), c.opts.timeoutMs);
  });

function dispatcher(runner: ReturnType<typeof recordingRunner>, timeoutS: number, locks = new KeyedLock()) {
  const config = networkConfig({});
  config.server.call_timeout_s = timeoutS;
  return new Dispatcher({ config, log, methods, run: runner, locks });
}

async function fault(p: Promise<unknown>): Promise<BrickError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof BrickError, String(e));
    return e;
  }
  assert.fail('expected a fault');
}

describe('network call deadlines', () => {
  it('a batch that hangs is killed at the call deadline and undone; the fault says nothing changed', async () => {
    const r = recordingRunner((c) => (applies(c) && !c.args.includes('-force') ? hangUntilStopped(c) : { stdout: c.args.includes('-json') ? '[]' : '' }));
    const t0 = performance.now();
    const f = await fault(dispatcher(r, 0.4).call('network_ensure_bridge', ['br0', {}]));
    const ms = performance.now() - t0;
    assert.equal(f.fault, 'TIMEOUT');
    assert.match(f.message, /no result within 0.4 s/);
    assert.match(f.message, /stopped part-way and its 3 step\(s\) were undone: nothing was changed/);
    assert.ok(ms < 4000, `the fault came ${ms} ms after the call, not after the stop grace`);
    const undo = r.calls.filter((c) => applies(c) && c.args.includes('-force'));
    assert.deepEqual(
      undo.map((c) => c.opts.input),
      ['link del dev br0\n'], // the inverse of "link add", "alias", "up": deleting it
    );
    // Every command but the undo ran within the call's time and with its signal.
    for (const c of r.calls.filter((c) => !(applies(c) && c.args.includes('-force')))) {
      assert.ok(c.opts.signal, `${c.args.join(' ')} has the call's signal`);
      assert.ok(c.opts.timeoutMs <= 400, `${c.args.join(' ')} bounded by the call: ${c.opts.timeoutMs} ms`);
    }
  });

  it('a call stopped while it waits for a lock on the bridge never runs a command after its deadline', async () => {
    const r = recordingRunner((c) => ({ stdout: c.args.includes('-json') ? '[]' : '' }));
    const locks = new KeyedLock();
    let open!: () => void;
    const held = locks.with(linkKey('br1'), () => new Promise<void>((res) => (open = res)));
    const f = await fault(dispatcher(r, 0.3, locks).call('network_ensure_bridge', ['br1', {}]));
    assert.equal(f.fault, 'TIMEOUT');
    assert.match(f.message, /waiting for another change on net:link:br1 to finish; nothing was changed/);
    const before = r.calls.length;
    open();
    await held;
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(r.calls.filter(applies).length, 0, 'no batch ran');
    assert.equal(r.calls.length, before, 'nothing ran once the lock was free');
    // The lock is usable again.
    assert.equal(await locks.with(linkKey('br1'), async () => 'free'), 'free');
  });

  it('a read stopped by the deadline: TIMEOUT says nothing was changed', async () => {
    const r = recordingRunner((c) => (c.args.includes('-details') ? hangUntilStopped(c) : { stdout: '[]' }));
    const f = await fault(dispatcher(r, 0.3).call('network_ensure_vlan_bridge', ['eth0', 10]));
    assert.equal(f.fault, 'TIMEOUT');
    assert.match(f.message, /nothing was changed/);
    assert.equal(r.calls.filter(applies).length, 0);
  });
});

describe('safe apply on disk', () => {
  const undo = ['link set dev eth0 nomaster', 'link del dev br0'];

  it('the undo is on disk before the change is applied, and gone once confirmed', () => {
    const config = networkConfig({});
    const file = pendingPath(config);
    const sa = new SafeApply();
    const release = sa.reserve({ file, namespace: 'ns1', changes: ['made eth0 a port of br0'], undo });
    const rec = readPending(file)!;
    assert.deepEqual([rec.pid, rec.namespace, rec.undo, rec.deadline_ms, rec.boot_id], [process.pid, 'ns1', undo, 0, bootId()]);
    const h = netHost(config, recordingRunner());
    sa.arm(h, log, ['made eth0 a port of br0'], undo, 30, { file });
    assert.ok(readPending(file)!.deadline_ms > Date.now());
    release();
    assert.ok(existsSync(file), 'an armed change keeps its record');
    sa.confirm();
    assert.equal(existsSync(file), false);
  });

  it('a change that failed to apply leaves no record', () => {
    const file = pendingPath(networkConfig({}));
    const sa = new SafeApply();
    const release = sa.reserve({ file, namespace: '', changes: ['x'], undo });
    release();
    assert.equal(existsSync(file), false);
  });

  it('rollback on stop runs the undo and removes the record', async () => {
    const config = networkConfig({});
    const file = pendingPath(config);
    const r = recordingRunner();
    const sa = new SafeApply();
    sa.arm(netHost(config, r), log, ['c'], undo, 30, { file });
    await sa.rollbackNow();
    assert.deepEqual(r.calls.map((c) => c.opts.input), ['link set dev eth0 nomaster\nlink del dev br0\n']);
    assert.equal(existsSync(file), false);
    assert.equal(sa.hasPending, false);
  });

  it('at start: a record left by a dead process is rolled back in its namespace; another boot is dropped; a live owner keeps it', async () => {
    // The recording runner runs nothing: namespace "" (the host's) is only a name here.
    const config = networkConfig({ namespace: 'now-other' });
    const file = pendingPath(config);
    const record = (o: object) => writeFileSync(file, JSON.stringify({ version: 1, pid: 999_999_999, boot_id: bootId(), namespace: '', changes: ['c'], undo, deadline_ms: 1, ...o }));

    record({});
    const r = recordingRunner();
    const sa = new SafeApply();
    assert.equal(await sa.recover(config, r, log), 'rolled-back');
    assert.deepEqual(r.calls.map((c) => [c.args.join(' '), c.opts.input]), [['-force -batch -', 'link set dev eth0 nomaster\nlink del dev br0\n']]);
    assert.equal(existsSync(file), false);
    assert.throws(() => sa.confirm(), /rolled back at/);

    record({ boot_id: 'another-boot' });
    const r2 = recordingRunner();
    assert.equal(await new SafeApply().recover(config, r2, log), 'other-boot');
    assert.equal(r2.calls.length, 0);
    assert.equal(existsSync(file), false);

    record({ namespace: 'brick-gone-0b1c2d' });
    const r4 = recordingRunner();
    assert.equal(await new SafeApply().recover(config, r4, log), 'namespace-gone');
    assert.equal(r4.calls.length, 0, 'a namespace that is gone is not created again');
    assert.equal(existsSync(file), false);

    record({ pid: process.ppid });
    const r3 = recordingRunner();
    assert.equal(await new SafeApply().recover(config, r3, log), 'owner-alive');
    assert.equal(r3.calls.length, 0);
    assert.ok(existsSync(file));

    assert.equal(await new SafeApply().recover(networkConfig({}), recordingRunner(), log), 'none');
    assert.ok(readFileSync(join(config.fencer.state_dir, 'network-pending.json'), 'utf8'));
  });

  it('at start, a record of a change killed while applying (deadline 0): the uplink not yet enslaved (the witness) replays only the undo of the steps before the enslave (before: every undo line, putting back an address an admin removed meanwhile)', async () => {
    const config = networkConfig({ namespace: '' });
    const file = pendingPath(config);
    const full = ['route del default via 10.77.0.1 dev br0', 'address del 10.77.0.2/24 dev br0', 'address add 10.77.0.2/24 dev eth0', 'route add default via 10.77.0.1 dev eth0', 'link set dev eth0 nomaster', 'link del dev br0'];
    const witness = { dev: 'eth0', master: 'br0', undo_before: ['link del dev br0'] };
    // Pure: armed (applied whole) or enslaved: everything; not enslaved (or eth0 gone): the part before.
    assert.deepEqual(undoToReplay({ deadline_ms: 5, undo: full, witness }, undefined), { undo: full, partial: false });
    assert.deepEqual(undoToReplay({ deadline_ms: 0, undo: full, witness }, 'br0'), { undo: full, partial: false });
    assert.deepEqual(undoToReplay({ deadline_ms: 0, undo: full, witness }, undefined), { undo: ['link del dev br0'], partial: true });
    assert.deepEqual(undoToReplay({ deadline_ms: 0, undo: full, witness }, 'brother'), { undo: ['link del dev br0'], partial: true });
    assert.deepEqual(undoToReplay({ deadline_ms: 0, undo: full }, undefined), { undo: full, partial: false }, 'a record without a witness (an older brick): as before');

    const record = (master: string | undefined) => {
      writeFileSync(file, JSON.stringify({ version: 1, pid: 999_999_999, boot_id: bootId(), namespace: '', changes: ['c'], undo: full, deadline_ms: 0, witness }));
      return recordingRunner((c) => (c.args.includes('show') ? (master === 'gone' ? { code: 1, stderr: 'Device "eth0" does not exist.' } : { stdout: JSON.stringify([{ ifname: 'eth0', ...(master ? { master } : {}) }]) }) : {}));
    };
    for (const [master, replayed] of [
      [undefined, 'link del dev br0\n'],
      ['gone', 'link del dev br0\n'],
      ['br0', full.join('\n') + '\n'],
      ['not json', full.join('\n') + '\n'], // a look that fails: every line, as before
    ] as const) {
      const r = master === 'not json' ? (record(undefined), recordingRunner((c) => (c.args.includes('show') ? { stdout: '{' } : {}))) : record(master);
      assert.equal(await new SafeApply().recover(config, r, log), 'rolled-back');
      assert.deepEqual(r.calls.map((c) => c.args.join(' ')), ['-json link show dev eth0', '-force -batch -'], String(master));
      assert.equal(r.calls[1].opts.input, replayed, `eth0's master ${master}`);
      assert.equal(existsSync(file), false);
    }
    // A witness that is not one brick wrote: the record is not brick's.
    writeFileSync(file, JSON.stringify({ version: 1, pid: 999_999_999, boot_id: bootId(), namespace: '', changes: ['c'], undo: full, deadline_ms: 0, witness: { dev: 'eth0', master: 'br0', undo_before: 'x' } }));
    assert.throws(() => readPending(file), /not a pending network change brick wrote/);
  });

  it('at start: the writer is the record\'s pid AND start time (pid reuse is no live owner), our own pid is a previous process\'s, and another boot is dropped whatever has its pid now', async () => {
    const config = networkConfig({ namespace: 'now-other' });
    const file = pendingPath(config);
    const record = (o: object) => writeFileSync(file, JSON.stringify({ version: 1, pid: 999_999_999, boot_id: bootId(), namespace: '', changes: ['c'], undo, deadline_ms: 1, ...o }));
    const startOf = (pid: number) => { const t = readFileSync(`/proc/${pid}/stat`, 'utf8'); return t.slice(t.lastIndexOf(')') + 2).split(' ')[19]; };
    const recover = async () => {
      const r = recordingRunner();
      return [await new SafeApply().recover(config, r, log), r.calls.length];
    };
    // The writer died; its pid now belongs to another process (here: our parent, started at another time).
    record({ pid: process.ppid, start: '1' });
    assert.deepEqual(await recover(), ['rolled-back', 1], 'pid reused by another process: rolled back');
    // The writer itself still runs (same pid, same start time): left to it.
    record({ pid: process.ppid, start: startOf(process.ppid) });
    assert.deepEqual(await recover(), ['owner-alive', 0]);
    // A record written before it carried a start time: the pid alone, as before.
    record({ pid: process.ppid });
    assert.deepEqual(await recover(), ['owner-alive', 0]);
    // The previous process's pid came round to us: it is not us.
    record({ pid: process.pid, start: startOf(process.pid) === '1' ? '2' : '1' });
    assert.deepEqual(await recover(), ['rolled-back', 1]);
    // Another boot: dropped (the reboot undid it), even though a process has that pid now.
    record({ boot_id: 'another-boot', pid: process.ppid });
    assert.deepEqual(await recover(), ['other-boot', 0]);
    assert.equal(existsSync(file), false);
    // The same rule, pure.
    const f = { selfPid: 50, pidExists: true, pidStart: '700' };
    assert.equal(ownerRuns({ pid: 40, start: '700' }, f), true);
    assert.equal(ownerRuns({ pid: 40, start: '699' }, f), false, 'another start time');
    assert.equal(ownerRuns({ pid: 40 }, f), true, 'no start time recorded');
    assert.equal(ownerRuns({ pid: 40, start: '699' }, { ...f, pidStart: undefined }), true, 'its start time unreadable');
    assert.equal(ownerRuns({ pid: 40, start: '700' }, { ...f, pidExists: false }), false);
    assert.equal(ownerRuns({ pid: 50, start: '700' }, f), false, 'our own pid');
    // A record this process writes carries its start time.
    const sa = new SafeApply();
    const release = sa.reserve({ file, namespace: '', changes: ['c'], undo });
    assert.deepEqual([readPending(file)?.pid, readPending(file)?.start], [process.pid, startOf(process.pid)]);
    release();
  });
});
