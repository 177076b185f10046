// The standing `ip` reader's protocol (src/network/host/ip-reader.ts) against a scripted session:
// how replies are framed (one stdout line per found line, "Command failed -:N" per missing one, in
// whichever order the two pipes deliver), and that anything unexpected makes it answer undefined
// (the caller then reads with its own process) and start a new child, never a guessed reply.
// The real `ip` is in test/host/ip-reader.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IpReader } from '../../src/network/host/ip-reader.js';
import type { Runner, Session } from '../../src/shared/run.js';
import { isBrickError } from '../../src/shared/errors.js';

type Answer = { out?: string[]; err?: string[]; exit?: boolean; silent?: boolean };
/** Lines found print `[{"ifname":NAME}]`; names starting "no" are missing, as ip says it. */
const ipLike = (line: string, n: number): Answer => {
  const name = line.split(' ').pop()!;
  if (name.startsWith('no') || name.length > 15) return { err: [`Device "${name}" does not exist.`, `Command failed -:${n}`] };
  return { out: [`[{"ifname":"${name}"}]`] };
};

interface Fake {
  runner: Runner;
  sessions: { args: readonly string[]; written: string[]; killed: boolean }[];
}

function fakeRunner(script: (line: string, n: number) => Answer = ipLike, extra?: (s: { emitOut: (l: string) => void }) => void): Fake {
  const sessions: Fake['sessions'] = [];
  const runner = (async () => {
    throw new Error('no one-shot commands here');
  }) as unknown as Runner;
  runner.session = async (_cmd, args) => {
    const rec = { args, written: [] as string[], killed: false };
    sessions.push(rec);
    let h: Parameters<Session['on']>[0] | undefined;
    let n = 0;
    let ended = false;
    let hung = false; // a line that hangs holds up every line after it, as in a real ip
    const end = () => {
      if (ended) return;
      ended = true;
      setImmediate(() => h?.exit('ended'));
    };
    const s: Session = {
      pid: process.pid, // its namespace is this process's: the host's
      command: 'ip -json -details -force -batch -',
      write(text) {
        if (ended) return false;
        for (const line of text.split('\n').slice(0, -1)) {
          rec.written.push(line);
          const a = script(line, ++n);
          hung ||= a.silent === true;
          if (hung) continue;
          // stderr first: the reader must not depend on which pipe is read first
          setImmediate(() => {
            for (const l of a.err ?? []) h?.err(l);
            setImmediate(() => {
              for (const l of a.out ?? []) h?.out(l);
              if (a.exit) end();
            });
          });
        }
        return true;
      },
      on(handlers) {
        h = handlers;
      },
      kill() {
        rec.killed = true;
        end();
      },
    };
    extra?.({ emitOut: (l) => h?.out(l) });
    return s;
  };
  return { runner, sessions };
}

const bounds = { timeoutMs: 5_000 };

test('a reply is the found lines; missing ones are counted by their "Command failed" line numbers, across requests', async () => {
  const f = fakeRunner();
  const r = new IpReader(f.runner, '', 'link');
  assert.deepEqual(await r.read(['link show dev a', 'link show dev noX', 'link show dev b'], bounds), ['[{"ifname":"a"}]', '[{"ifname":"b"}]']);
  // Line numbers go on in the same child (after the first request's end mark): 5, 6, 7.
  assert.deepEqual(await r.read(['link show dev noY', 'link show dev c', 'link show master d'], bounds), ['[{"ifname":"c"}]', '[{"ifname":"d"}]']);
  assert.deepEqual(await r.read(['link show dev noZ'], bounds), []);
  assert.equal(f.sessions.length, 1, 'one child for all three');
  assert.deepEqual(f.sessions[0].args, ['-json', '-details', '-force', '-batch', '-']);
  r.close();
});

test('a missing if<N> (iproute2 reads it as an index: "No such device", not "does not exist") is a missing line too, in the same child', async () => {
  const f = fakeRunner((line, n) =>
    /if\d+$/.test(line) ? { err: ['RTNETLINK answers: No such device', 'Cannot send link get request: No such device', `Command failed -:${n}`] } : ipLike(line, n),
  );
  const r = new IpReader(f.runner, '', 'link');
  assert.deepEqual(await r.read(['link show dev a', 'link show dev if7', 'link show dev b'], bounds), ['[{"ifname":"a"}]', '[{"ifname":"b"}]']);
  assert.deepEqual(await r.read(['link show dev if2'], bounds), []);
  assert.equal(f.sessions.length, 1, 'one child: nothing unexpected');
  assert.equal(f.sessions[0].killed, false);
  r.close();
});

test('the namespace goes first on the command line', async () => {
  const f = fakeRunner();
  const r = new IpReader(f.runner, 'ns1', 'link');
  await r.read(['link show dev a'], bounds); // answered, then refused: this process is not in ns1
  assert.deepEqual(f.sessions[0].args.slice(0, 2), ['-n', 'ns1']);
  r.close();
});

test('a reply from a child that is not in the namespace asked for is not used; on a first reply the check is not trusted again', async () => {
  const f = fakeRunner();
  const r = new IpReader(f.runner, 'brick-no-such-ns-' + process.pid, 'link');
  assert.equal(await r.read(['link show dev a'], bounds), undefined);
  assert.equal(f.sessions[0].killed, true);
  // A new child that says the same on its first reply would be a child per read for nothing: off.
  assert.equal(await r.read(['link show dev a'], bounds), undefined);
  assert.equal(f.sessions.length, 1);
  // (A mismatch after good replies, a namespace made again under its name: test/host/ip-reader.test.ts.)
});

test('a child whose namespace cannot be looked at turns the reader off: no new child per read', async () => {
  const f = fakeRunner();
  const real = f.runner.session!;
  f.runner.session = async (cmd, args) => ({ ...(await real(cmd, args)), pid: 2 ** 22 + 1 }); // no such /proc entry
  const r = new IpReader(f.runner, '', 'link');
  assert.equal(await r.read(['link show dev a'], bounds), undefined);
  assert.equal(await r.read(['link show dev a'], bounds), undefined);
  assert.equal(f.sessions.length, 1);
});

test('anything unexpected: undefined, the child killed, the next read in a new child', async () => {
  const cases: [string, (line: string, n: number) => Answer][] = [
    ['an unknown message on stderr', (l, n) => (l.endsWith('b') ? { err: ['Dump was interrupted and may be inconsistent.'], out: ['[]'] } : ipLike(l, n))],
    ['a line number outside the request', (l, n) => (l.endsWith('b') ? { err: [`Command failed -:${n + 7}`] } : ipLike(l, n))],
    ['two answers for one line', (l, n) => (l.endsWith('b') ? { out: ['[]'], err: [`Command failed -:${n}`] } : ipLike(l, n))],
    ['the child ends in the middle', (l, n) => (l.endsWith('b') ? { exit: true } : ipLike(l, n))],
  ];
  for (const [what, script] of cases) {
    let broken = true;
    const f = fakeRunner((l, n) => (broken ? script(l, n) : ipLike(l, n)));
    const r = new IpReader(f.runner, '', 'link');
    assert.equal(await r.read(['link show dev a', 'link show dev b'], bounds), undefined, what);
    assert.equal(f.sessions[0].killed || what === 'the child ends in the middle', true, what);
    broken = false;
    assert.deepEqual(await r.read(['link show dev c'], bounds), ['[{"ifname":"c"}]'], what);
    assert.equal(f.sessions.length, 2, `${what}: a new child`);
    r.close();
  }
});

test('output while nothing was asked ends the child', async () => {
  let emit: (l: string) => void = () => {};
  const f = fakeRunner(ipLike, (s) => (emit = s.emitOut));
  const r = new IpReader(f.runner, '', 'link');
  await r.read(['link show dev a'], bounds);
  emit('[{"ifname":"late"}]');
  assert.equal(f.sessions[0].killed, true);
  assert.deepEqual(await r.read(['link show dev b'], bounds), ['[{"ifname":"b"}]']);
  assert.equal(f.sessions.length, 2);
  r.close();
});

test('only read-only show lines of interface names are sent; anything else is undefined and starts nothing', async () => {
  const f = fakeRunner();
  const r = new IpReader(f.runner, '', 'link');
  for (const l of ['addr show dev a', 'addr show', 'link show dev', 'link show all', 'link set dev a down', 'link show dev a b', 'link show dev "a"', 'link show dev a#', 'addr flush dev a', 'link show dev abcdefghijklmnop', 'route show'])
    assert.equal(await r.read([l], bounds), undefined, l);
  assert.equal(await r.read([], bounds), undefined);
  assert.equal(f.sessions.length, 0);
  const addr = new IpReader(f.runner, '', 'addr');
  assert.equal(await addr.read(['link show dev a'], bounds), undefined, 'links are not asked of an address reader');
  assert.deepEqual(await addr.read(['addr show dev a'], bounds), ['[{"ifname":"a"}]']);
  assert.equal(f.sessions.at(-1)!.written.at(-1), 'addr show dev brick-end-of-reply', 'its end mark is an addr line too');
  addr.close();
  const noSessions = (async () => ({ code: 0, stdout: '', stderr: '' })) as Runner;
  assert.equal(await new IpReader(noSessions, '', 'link').read(['link show dev a'], bounds), undefined);
});

test('no answer within the deadline: TIMEOUT, the child killed; a stopped call: TIMEOUT, killed or not sent', async () => {
  const f = fakeRunner((l, n) => (l.endsWith('hang') ? { silent: true } : ipLike(l, n)));
  const r = new IpReader(f.runner, '', 'link');
  const e = await r.read(['link show dev hang'], { timeoutMs: 50 }).catch((x) => x);
  assert.ok(isBrickError(e) && e.fault === 'TIMEOUT', String(e));
  assert.match(e.message, /no answer within 50 ms; killed/);
  assert.equal(f.sessions[0].killed, true);

  const ac = new AbortController();
  const p = r.read(['link show dev hang'], { timeoutMs: 5_000, signal: ac.signal }).catch((x) => x);
  setTimeout(() => ac.abort(new Error('the call passed its deadline')), 20);
  const a = await p;
  assert.ok(isBrickError(a) && a.fault === 'TIMEOUT');
  assert.match(a.message, /killed: the call passed its deadline/);
  assert.equal(f.sessions[1].killed, true);

  const gone = AbortSignal.abort(new Error('the client went away'));
  const b = await r.read(['link show dev a'], { timeoutMs: 5_000, signal: gone }).catch((x) => x);
  assert.match(b.message, /not run: the client went away/);
  assert.equal(f.sessions.length, 2, 'nothing started for a call already stopped');
  // And the reader still answers afterwards.
  assert.deepEqual(await r.read(['link show dev a'], bounds), ['[{"ifname":"a"}]']);
  r.close();
});

test('a read waiting behind a stuck one stops with its call, and its deadline counts the wait', async () => {
  const f = fakeRunner((l, n) => (l.endsWith('hang') ? { silent: true } : ipLike(l, n)));
  const r = new IpReader(f.runner, '', 'link');
  const stuck = r.read(['link show dev hang'], { timeoutMs: 400 }).catch((x) => x);
  const ac = new AbortController();
  const queued = r.read(['link show dev a'], { timeoutMs: 5_000, signal: ac.signal }).catch((x) => x);
  const waitsTooLong = r.read(['link show dev b'], { timeoutMs: 100 }).catch((x) => x);
  ac.abort(new Error('the call passed its deadline'));
  const q = await Promise.race([queued, stuck.then(() => 'the stuck read ended first')]);
  assert.ok(isBrickError(q) && q.fault === 'TIMEOUT', String(q));
  assert.match(q.message, /not run: the call passed its deadline/);
  const s = await stuck;
  assert.match(s.message, /no answer within 400 ms; killed/);
  const w = await waitsTooLong;
  assert.ok(isBrickError(w) && w.fault === 'TIMEOUT', String(w));
  assert.match(w.message, /not run: waited 100 ms behind other reads/);
  assert.equal(f.sessions[0].written.filter((l) => !l.includes('end-of-reply')).join(), 'link show dev hang', 'neither of the two was sent');
  assert.deepEqual(await r.read(['link show dev c'], bounds), ['[{"ifname":"c"}]']);
  r.close();
});

test('a call stopped while the reader starts its child sends nothing', async () => {
  const f = fakeRunner();
  const ac = new AbortController();
  const real = f.runner.session!;
  f.runner.session = async (cmd, args) => {
    const s = await real(cmd, args);
    ac.abort(new Error('the client went away'));
    return s;
  };
  const r = new IpReader(f.runner, '', 'link');
  const e = await r.read(['link show dev a'], { timeoutMs: 5_000, signal: ac.signal }).catch((x) => x);
  assert.ok(isBrickError(e) && e.fault === 'TIMEOUT', String(e));
  assert.match(e.message, /not run: the client went away/);
  assert.deepEqual(f.sessions[0].written, []);
  r.close();
});

test('concurrent reads are answered one after another, each with its own lines', async () => {
  const f = fakeRunner();
  const r = new IpReader(f.runner, '', 'link');
  const names = Array.from({ length: 20 }, (_, i) => `d${i}`);
  const replies = await Promise.all(names.map((n, i) => r.read([`link show dev ${n}`, `link show dev no${i}`, `link show master ${n}`], bounds)));
  replies.forEach((rep, i) => assert.deepEqual(rep, [`[{"ifname":"d${i}"}]`, `[{"ifname":"d${i}"}]`]));
  assert.equal(f.sessions.length, 1);
  r.close();
});

test('a reader not asked for its idle time ends its child', async () => {
  const f = fakeRunner();
  const r = new IpReader(f.runner, '', 'link', 30);
  await r.read(['link show dev a'], bounds);
  for (let i = 0; i < 200 && !f.sessions[0].killed; i++) await new Promise((res) => setTimeout(res, 10));
  assert.equal(f.sessions[0].killed, true);
  assert.deepEqual(await r.read(['link show dev b'], bounds), ['[{"ifname":"b"}]']);
  assert.equal(f.sessions.length, 2);
  r.close();
});
