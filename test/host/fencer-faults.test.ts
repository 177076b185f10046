// Fault injection against the REAL fencer program (reference/fencing.md rule 17): a FUSE pool frozen
// with SIGSTOP (a real hang: probes block in the kernel), a crashed FUSE server (fast ENOTCONN
// errors), a vanished mount, probes slower than the deadline by ε for a long run, the fencer itself
// frozen, and a fencer whose libuv threadpool is poisoned. The fence bound fence_after_s + 1 s is
// asserted from the moment of the fault: the last verified heartbeat is before it, so brick has the
// whole second of margin for scheduling; nothing here weakens it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { BindfsPool, FencerRun, SHORT, removeRoot, sleep, tempRoot, waitFor, fuseSuite } from './fencer-harness.js';

const { skip, cleanups } = fuseSuite();
const BOUND_MS = (SHORT.fence_after_s + 1) * 1000;

async function setup(name: string, opts: ConstructorParameters<typeof FencerRun>[3] = {}, poolOpts: { heartbeat?: 'ovm' | 'kvm'; fence_when?: 'in-use' | 'always' } = {}) {
  const root = tempRoot(`fencer-${name}`);
  const pool = new BindfsPool(root);
  const fencer = new FencerRun(root, [{ path: pool.mnt, ...poolOpts }], SHORT, opts);
  cleanups.push(() => removeRoot(root), () => pool.cleanup(), () => fencer.kill());
  await pool.mount();
  return { root, pool, fencer };
}

/** Time from `t0` until the fake sysrq trigger holds `key`. */
async function fenceDetectedAfter(f: FencerRun, t0: number, key = 'b'): Promise<number> {
  await waitFor(`sysrq '${key}'`, () => f.sysrqText().includes(key), BOUND_MS + 5000, 10);
  return performance.now() - t0;
}

test('frozen FUSE pool (bindfs SIGSTOP): sysrq b within fence_after_s + 1 s, marker first, petting stops', { skip }, async () => {
  const { pool, fencer } = await setup('freeze');
  fencer.start();
  await fencer.armed();
  await sleep(1000); // a few verified heartbeats
  assert.equal(fencer.sysrqText(), '', 'no fence while the pool is healthy');
  const ageAtFreezeMs = fencer.lastOkAgeMs();
  const t0 = performance.now();
  pool.freeze();
  const took = await fenceDetectedAfter(fencer, t0);
  assert.ok(took <= BOUND_MS, `fenced ${Math.round(took)} ms after the freeze; bound ${BOUND_MS} ms`);
  assert.ok(took >= SHORT.fence_after_s * 1000 - ageAtFreezeMs - 300, `fenced too early: ${Math.round(took)} ms after the freeze, the last verified heartbeat ${Math.round(ageAtFreezeMs)} ms old then`);
  assert.equal(fencer.sysrqText(), 'b');
  const marker = JSON.parse(execFileSync('cat', [join(fencer.markerDir, 'fence-marker.json')], { encoding: 'utf8' }));
  assert.equal(marker.pool, pool.mnt);
  assert.equal(marker.action, 'reboot');
  // Petting has stopped for good, and never with the magic close.
  const size = fencer.watchdogSize();
  await sleep(1000);
  assert.equal(fencer.watchdogSize(), size, 'the watchdog must not be petted after the fence');
  assert.ok(!fencer.watchdogBytes().includes('V'), 'no magic close after a fence');
  assert.match(fencer.log(), /FENCING this host: pool .* no verified heartbeat for/);
  const st = fencer.state();
  assert.equal(st.pools[0].state, 'expired');
  assert.ok(st.fenced && st.fenced.pool === pool.mnt);
  assert.equal(st.watchdog.petting, false);
  // SIGTERM after a fence keeps the watchdog armed (no 'V').
  await fencer.stop();
  assert.ok(!fencer.watchdogBytes().includes('V'));
});

test('slow but successful probes (probe_timeout_s − 0.5 s each, 12 s): never fenced, always petted', { skip }, async (t) => {
  const delay = SHORT.probe_timeout_s - 0.5;
  // The premise: every probe, the injected delay plus its child processes, ends under
  // probe_timeout_s. On a loaded machine the children (normal priority, as shipped) can take over
  // the 0.5 s left (CI at load 10-12: the pool expired), and the fencer rightly counts a timeout.
  // The fencer's own figures tell which it was: a run with a probe that timed out (its log and
  // state: no answer within probe_timeout_s) is not this scenario and runs again; a run in which
  // every probe succeeded is held to everything below. Any other probe failure is a failure.
  const missed: string[] = [];
  for (let attempt = 1; attempt <= 5; attempt++) {
    const { fencer } = await setup(`slow${attempt}`);
    fencer.start({ BRICK_TEST_PROBE_DELAY_S: String(delay) });
    await fencer.armed();
    const s0 = fencer.state().pools[0];
    const timedOut = () => {
      const p = fencer.state().pools[0];
      if (p.probes_failed === s0.probes_failed) return undefined;
      assert.match(p.last_error ?? '', /no answer within/, `a slow probe failed, not by its timeout: ${fencer.log()}`);
      return `run ${attempt}: a probe timed out after ${p.probe_latency_ms.last} ms (delay ${delay} s, timeout ${SHORT.probe_timeout_s} s)`;
    };
    let lastSize = fencer.watchdogSize();
    const end = performance.now() + 12_000;
    let maxAge = 0;
    let miss: string | undefined;
    while (performance.now() < end && !miss) {
      await sleep(1000);
      miss = timedOut();
      if (miss) break;
      const size = fencer.watchdogSize();
      assert.ok(size > lastSize, 'the watchdog is petted every second');
      lastSize = size;
      const p = fencer.state().pools[0];
      maxAge = Math.max(maxAge, p.last_ok_age_s);
      assert.notEqual(p.state, 'expired');
    }
    miss ??= timedOut();
    if (miss) {
      missed.push(miss);
      fencer.kill();
      continue;
    }
    const p = fencer.state().pools[0];
    assert.equal(fencer.sysrqText(), '', `fenced on slow storage: ${fencer.log()}`);
    assert.ok(p.probes_ok - s0.probes_ok >= 4, `slow probes still verified: ${p.probes_ok - s0.probes_ok}`);
    assert.ok(p.probe_latency_ms.min >= delay * 1000, `probes really took ≥ ${delay} s: ${JSON.stringify(p.probe_latency_ms)}`);
    assert.ok(p.probe_latency_ms.max < SHORT.probe_timeout_s * 1000, `probes took < ${SHORT.probe_timeout_s} s: ${JSON.stringify(p.probe_latency_ms)}`);
    assert.ok(maxAge < SHORT.fence_after_s, `max heartbeat age ${maxAge} s`);
    assert.match(fencer.log(), /TEST ONLY: BRICK_TEST_PROBE_DELAY_S/);
    assert.equal(await fencer.stop(), 0);
    assert.equal(fencer.watchdogBytes().at(-1), 'V'.charCodeAt(0), 'a clean stop ends with the magic close');
    if (missed.length) t.diagnostic(`runs again after a probe timed out: ${missed.join('; ')}`);
    return;
  }
  assert.fail(`the scenario did not happen: in every run the machine pushed a probe past probe_timeout_s:\n${missed.join('\n')}`);
});

test('crashed FUSE server (fast ENOTCONN errors, like EIO/ESTALE): fenced within fence_after_s + 1 s', { skip }, async () => {
  const { pool, fencer } = await setup('enotconn');
  fencer.start();
  await fencer.armed();
  await sleep(700);
  const t0 = performance.now();
  pool.crash();
  const took = await fenceDetectedAfter(fencer, t0);
  assert.ok(took <= BOUND_MS, `fenced ${Math.round(took)} ms after the crash; bound ${BOUND_MS}`);
  assert.ok(fencer.state().pools[0].probes_failed >= 3, 'fast failures were retried, not waited on');
  assert.match(fencer.log(), /Transport endpoint is not connected|not mounted|filesystem changed/);
});

test('vanished mount (lazy unmount leaves a bare local directory): fenced within fence_after_s + 1 s', { skip }, async () => {
  const { pool, fencer } = await setup('vanish', {}, { heartbeat: 'kvm' });
  fencer.start();
  await fencer.armed();
  assert.ok(execFileSync('cat', [join(pool.src, 'KVMHA', 'hb-host-under-test')], { encoding: 'utf8' }).match(/^\d+\n$/), 'kvm format: integer epoch');
  await sleep(700);
  const t0 = performance.now();
  execFileSync('fusermount', ['-u', '-z', pool.mnt]);
  const took = await fenceDetectedAfter(fencer, t0);
  assert.ok(took <= BOUND_MS, `fenced ${Math.round(took)} ms after the unmount; bound ${BOUND_MS}`);
  assert.match(fencer.log(), /root filesystem|filesystem changed/);
});

test('fencer frozen with SIGSTOP: the watchdog stops being petted (and is not disarmed); resumes on SIGCONT', { skip }, async () => {
  const { fencer } = await setup('stall');
  fencer.start();
  await fencer.armed();
  fencer.proc!.kill('SIGSTOP');
  await sleep(300); // a write already in flight lands
  const size = fencer.watchdogSize();
  await sleep(2000);
  assert.equal(fencer.watchdogSize(), size, 'a frozen fencer must not pet');
  assert.ok(!fencer.watchdogBytes().includes('V'), 'and must not have disarmed the watchdog');
  fencer.proc!.kill('SIGCONT');
  await waitFor('petting again', () => fencer.watchdogSize() > size, 3000);
  assert.equal(fencer.sysrqText(), '');
  assert.equal(await fencer.stop(), 0);
});

test('libuv threadpool poisoned (16 blocked FIFO opens): still pets, still fences within the bound', { skip }, async () => {
  const { root, pool, fencer } = await setup('poison');
  const fifo = join(root, 'poison.fifo');
  execFileSync('mkfifo', [fifo]);
  fencer.start({ BRICK_TEST_POISON_THREADPOOL: fifo, UV_THREADPOOL_SIZE: '4' });
  await fencer.armed();
  await sleep(1000);
  const size = fencer.watchdogSize();
  await sleep(1000);
  assert.ok(fencer.watchdogSize() > size, 'petting continues with the threadpool blocked');
  const t0 = performance.now();
  pool.freeze();
  const took = await fenceDetectedAfter(fencer, t0);
  assert.ok(took <= BOUND_MS, `fenced ${Math.round(took)} ms after the freeze; bound ${BOUND_MS}`);
  assert.match(fencer.log(), /TEST ONLY: BRICK_TEST_POISON_THREADPOOL/);
  assert.doesNotMatch(fencer.log(), /threadpool canary completed/, 'the poison really blocked the threadpool');
});

test('idle pool (no running VM uses it, libvirt asked): DEAD, no fence, still petted; fence_when = "always" fences', { skip }, async () => {
  const root = tempRoot('fencer-idle');
  const idle = new BindfsPool(root, 'idle');
  const always = new BindfsPool(root, 'always');
  cleanups.push(() => removeRoot(root), () => idle.cleanup(), () => always.cleanup());
  await idle.mount();
  await always.mount();
  // libvirt's test driver runs one domain ("test") whose disk is not on either pool.
  const f1 = new FencerRun(join(root, 'a'), [{ path: idle.mnt }], SHORT, { vm_query: 'libvirt', libvirt_uri: 'test:///default' });
  const f2 = new FencerRun(join(root, 'b'), [{ path: always.mnt, fence_when: 'always' }], SHORT, { vm_query: 'libvirt', libvirt_uri: 'test:///default' });
  cleanups.push(() => f1.kill(), () => f2.kill());
  f1.start();
  f2.start();
  await f1.armed();
  await f2.armed();
  await waitFor('libvirt answered', () => f1.state()?.pools[0].in_use === false, 10_000);
  const t0 = performance.now();
  idle.freeze();
  always.freeze();
  const took = await fenceDetectedAfter(f2, t0);
  assert.ok(took <= BOUND_MS, `fence_when=always fenced ${Math.round(took)} ms after the freeze`);
  await waitFor('idle pool DEAD', () => f1.state()?.pools[0].state === 'dead', 3000);
  const size = f1.watchdogSize();
  await sleep(1000);
  assert.ok(f1.watchdogSize() > size, 'an idle DEAD pool does not stop the petting');
  assert.equal(f1.sysrqText(), '', 'an idle pool never fences');
  assert.match(f1.log(), /is DEAD .* no running VM uses it/);
});

test('fencer killed (-9) and restarted while the pool is frozen: the new one stays armed and fences within the bound', { skip }, async () => {
  const { pool, fencer } = await setup('restart');
  fencer.start();
  await fencer.armed();
  await sleep(700);
  const t0 = performance.now();
  pool.freeze();
  fencer.proc!.kill('SIGKILL');
  await fencer.exit;
  assert.ok(!fencer.watchdogBytes().includes('V'), 'a killed fencer leaves the watchdog armed');
  fencer.lines = [];
  const t0Wall = Date.now() - (performance.now() - t0);
  fencer.start(); // systemd Restart=always
  await waitFor(`sysrq 'b'`, () => fencer.sysrqText().includes('b'), BOUND_MS + 20_000, 10);
  const took = performance.now() - t0;
  // The bound across a restart: fence_after_s + 1 s from the freeze, except that no start fences
  // before its first probe deadline (issue 17 item 1: the pool gets its fair chance to verify), so
  // a restart that itself takes long (a loaded machine) fences by its start + probe_timeout_s + 1 s.
  const startedAfter = fencer.state()!.started_at_ms - t0Wall;
  const bound = Math.max(BOUND_MS, startedAfter + (SHORT.probe_timeout_s + 1) * 1000);
  assert.ok(took <= bound, `fenced ${Math.round(took)} ms after the freeze across a restart (its start ${Math.round(startedAfter)} ms after); bound ${Math.round(bound)}`);
  assert.match(fencer.log(), /stays armed from the previous fencer/);
});
