// server.generate_credentials on the agent's first start: what a second start at the same time,
// a credential path that cannot be written and an unusable certificate do. generateCredentials
// with the real openssl, and `brick serve` as a real process for the exit code an admin (and
// systemd's RestartPreventExitStatus=1) sees.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { defaultConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createLogger } from '../../src/shared/log.js';
import { run as realRun, type Runner } from '../../src/shared/run.js';
import { BrickError } from '../../src/shared/errors.js';
import { generateCredentials, selfSignedCertificate } from '../../src/agent-extension/credentials.js';
import { repoRoot } from '../fixtures/exec.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'brick-credentials-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const log = createLogger({ svc: 'test', level: 'silent' });

function config(sub: string, server: Partial<Config['server']>): Config {
  const c = defaultConfig();
  Object.assign(c.server, { listen: '127.0.0.1:0', password_file: join(dir, sub, 'password'), tls_cert: join(dir, sub, 'tls/cert.pem'), tls_key: join(dir, sub, 'tls/key.pem'), ...server });
  return c;
}

const pairMatches = (cert: string, key: string) =>
  new X509Certificate(readFileSync(cert)).publicKey.export({ type: 'spki', format: 'pem' }) ===
  createPublicKey(readFileSync(key)).export({ type: 'spki', format: 'pem' });

test('a start that generates while another start puts its pair in place keeps the other pair, and says it made none', async () => {
  // Two `brick serve` at once (the unit and an admin's run by hand): the one that lost the port
  // used to rename its own pair over the pair the running agent was serving (2 of 8 tries), so
  // brick call/status, which trust tls_cert, were refused (DEPTH_ZERO_SELF_SIGNED_CERT).
  const c = config('race', { password: 'inline' });
  let other = '';
  const run: Runner = async (cmd, args, opts) => {
    // The other start finishes its pair while this one's openssl signs.
    if (!other) {
      await selfSignedCertificate(c.server.tls_cert, c.server.tls_key, c, realRun);
      other = readFileSync(c.server.tls_cert, 'utf8');
    }
    return realRun(cmd, args, opts);
  };
  const got = await generateCredentials(c, log, run);
  assert.deepEqual(got, {});
  assert.equal(readFileSync(c.server.tls_cert, 'utf8'), other, 'the certificate the other start made was replaced');
  assert.ok(pairMatches(c.server.tls_cert, c.server.tls_key), 'the key on disk is not the certificate\'s');
  assert.deepEqual(readdirSync(join(dir, 'race/tls')).sort(), ['cert.pem', 'key.pem'], 'temp files left');
});

test('first start: a password (0600, whole) and a matching pair; a second start generates nothing', async () => {
  const c = config('first', {});
  const got = await generateCredentials(c, log, realRun);
  assert.equal(got.passwordFile, c.server.password_file);
  assert.equal(readFileSync(c.server.password_file, 'utf8'), got.password + '\n');
  assert.equal(got.tlsCert, c.server.tls_cert);
  assert.ok(pairMatches(c.server.tls_cert, c.server.tls_key));
  const cert = readFileSync(c.server.tls_cert, 'utf8');
  assert.deepEqual(await generateCredentials(c, log, realRun), {});
  assert.equal(readFileSync(c.server.tls_cert, 'utf8'), cert);
  assert.deepEqual(readdirSync(join(dir, 'first')).sort(), ['.brick-generated', 'password', 'tls']);
  assert.deepEqual(readdirSync(join(dir, 'first/tls')).sort(), ['.brick-generated', 'cert.pem', 'key.pem']);
});

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

test('what a start generates is recorded beside it ("sha256  name", what the .deb\'s purge removes); what it did not make is not', async () => {
  const c = config('record', {});
  await generateCredentials(c, log, realRun);
  assert.equal(readFileSync(join(dir, 'record/.brick-generated'), 'utf8'), `${sha256(c.server.password_file)}  password\n`);
  assert.equal(
    readFileSync(join(dir, 'record/tls/.brick-generated'), 'utf8'),
    `${sha256(c.server.tls_key)}  key.pem\n${sha256(c.server.tls_cert)}  cert.pem\n`,
  );
  assert.equal(statSync(join(dir, 'record/.brick-generated')).mode & 0o777, 0o600);
  // sha256sum reads the record as its own format and finds every file as brick wrote it.
  assert.match(await new Promise<string>((res, rej) => execFile('sha256sum', ['-c', '.brick-generated'], { cwd: join(dir, 'record/tls') }, (e, out) => (e ? rej(e) : res(out)))), /^key\.pem: OK\ncert\.pem: OK\n$/);
  // The admin removes the password; the next start makes a new one and adds its line.
  rmSync(c.server.password_file);
  await generateCredentials(c, log, realRun);
  assert.deepEqual(readFileSync(join(dir, 'record/.brick-generated'), 'utf8').split('\n').filter(Boolean).map((l) => l.split('  ')[1]), ['password', 'password']);
  assert.ok(readFileSync(join(dir, 'record/.brick-generated'), 'utf8').endsWith(`${sha256(c.server.password_file)}  password\n`));
  // Files the admin provided: nothing generated, nothing recorded.
  const own = config('own', {});
  mkdirSync(join(dir, 'own/tls'), { recursive: true });
  writeFileSync(own.server.password_file, 'mine\n', { mode: 0o600 });
  await selfSignedCertificate(own.server.tls_cert, own.server.tls_key, own, realRun);
  assert.deepEqual(await generateCredentials(own, log, realRun), {});
  assert.deepEqual(readdirSync(join(dir, 'own')).sort(), ['password', 'tls']);
  assert.deepEqual(readdirSync(join(dir, 'own/tls')).sort(), ['cert.pem', 'key.pem']);
});

test('a credential path that cannot be created is a user error naming the key, not an internal error', async () => {
  writeFileSync(join(dir, 'notadir'), '');
  for (const [key, server] of [
    ['password_file', { password_file: join(dir, 'notadir/password') }],
    ['tls_cert', { password: 'inline', tls_cert: join(dir, 'notadir/tls/cert.pem'), tls_key: join(dir, 'notadir/tls/key.pem') }],
  ] as const) {
    await assert.rejects(generateCredentials(config('x', server), log, realRun), (e: unknown) => {
      assert.ok(e instanceof BrickError, String(e));
      assert.equal(e.fault, 'INVALID_PARAMS');
      assert.match(e.message, new RegExp(`^server\\.${key} ${dir}/notadir/\\S+: cannot create it \\(ENOTDIR\\)`));
      return true;
    });
  }
});

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function serve(configPath: string): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), 'serve', '-c', configPath], { cwd: repoRoot, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

test('brick serve: an unwritable credential path, an empty or a mismatched certificate exit 1 with one line naming the key (no stack, no restart loop)', async () => {
  // Before: "brick: internal error: Error: EROFS ..." / "error:0480006C:PEM routines::no start
  // line" with a stack trace, exit 2, which brick-agent.service restarts every 2 s forever.
  const toml = (sub: string, extra = '') => {
    const p = join(dir, `${sub}.toml`);
    writeFileSync(
      p,
      `[server]\nlisten = "127.0.0.1:0"\n${extra || 'password = "pw"\n'}tls_cert = "${dir}/${sub}/cert.pem"\ntls_key = "${dir}/${sub}/key.pem"\n` +
        `[fencer]\nstate_dir = "${dir}/${sub}/run"\nmarker_dir = "${dir}/${sub}/lib"\nruntime_pools_file = "${dir}/${sub}/lib/rp.json"\n`,
    );
    return p;
  };
  const cases: Array<[string, RegExp]> = [];
  cases.push([toml('ro', `password_file = "${dir}/notadir/password"\n`), /^brick: server\.password_file \S+: cannot create it \(ENOTDIR\)/]);
  mkdirSync(join(dir, 'empty'));
  writeFileSync(join(dir, 'empty/cert.pem'), '');
  writeFileSync(join(dir, 'empty/key.pem'), '', { mode: 0o600 });
  // (The certificate is read first on its own: serve-tls-files.test.ts.)
  cases.push([toml('empty'), /^brick: server\.tls_cert \S+: not a usable certificate \(.*no start line\)/]);
  mkdirSync(join(dir, 'mismatch'));
  await selfSignedCertificate(join(dir, 'mismatch/cert.pem'), join(dir, 'mismatch/key.pem'), undefined, realRun);
  await selfSignedCertificate(join(dir, 'mismatch/other.pem'), join(dir, 'mismatch/other-key.pem'), undefined, realRun);
  writeFileSync(join(dir, 'mismatch/key.pem'), readFileSync(join(dir, 'mismatch/other-key.pem')));
  cases.push([toml('mismatch'), /^brick: server\.tls_key \S+ is not the key of the certificate in server\.tls_cert \S+ \(.*key values mismatch\)/]);
  for (const [p, expected] of cases) {
    const r = await serve(p);
    assert.equal(r.code, 1, `${p}: ${r.stderr}`);
    assert.match(r.stderr, expected);
    assert.doesNotMatch(r.stderr, /internal error|^\s+at /m);
  }
});

test('TLS files the HTTPS server cannot use are refused by loadTls, before the server is built: a 512-bit RSA key too', async () => {
  // createServer has no catch of its own for Node's TLS errors: loadTls tries the same
  // tls.createSecureContext on the same bytes, so whatever the HTTPS server would refuse is the
  // admin's INVALID_PARAMS naming the key first. A key below OpenSSL's security level (RSA-512 is
  // below every level from 1) fails with ERR_SSL_EE_KEY_TOO_SMALL, not an ERR_OSSL_* code.
  const d = join(dir, 'weak');
  mkdirSync(d);
  await realRun('openssl', ['req', '-x509', '-newkey', 'rsa:512', '-nodes', '-keyout', join(d, 'key.pem'), '-out', join(d, 'cert.pem'), '-subj', '/CN=weak', '-days', '1'], { timeoutMs: 30_000 });
  const c = config('weak', { password: 'pw', tls_cert: join(d, 'cert.pem'), tls_key: join(d, 'key.pem') });
  const { createServer } = await import('../../src/agent-extension/server.js');
  const tls = process.getBuiltinModule('node:tls');
  const pair = { cert: readFileSync(c.server.tls_cert), key: readFileSync(c.server.tls_key) };
  assert.throws(() => tls.createSecureContext(pair), (e: NodeJS.ErrnoException) => e.code === 'ERR_SSL_EE_KEY_TOO_SMALL', 'this Node takes a 512-bit key: the case shows nothing');
  assert.throws(
    () => createServer(c, { log }),
    (e: unknown) => e instanceof BrickError && e.fault === 'INVALID_PARAMS' && /^server\.tls_cert \S+cert\.pem: not a usable certificate \(.*ee key too small\)/.test(e.message),
  );
});

test('brick serve warns about a password file or TLS key that others can read, or that another user owns', { skip: process.getuid?.() !== 0 && 'needs root (chown)' }, async () => {
  // Before: only the password file's mode was looked at; a 0600 password file owned by another
  // user (who can read and replace it) and a world-readable TLS key started without a word.
  const d = join(dir, 'owners');
  mkdirSync(d);
  await selfSignedCertificate(join(d, 'cert.pem'), join(d, 'key.pem'), undefined, realRun);
  chmodSync(join(d, 'key.pem'), 0o644);
  writeFileSync(join(d, 'password'), 'pw\n', { mode: 0o600 });
  chownSync(join(d, 'password'), 65534, 65534);
  const p = join(d, 'brick.toml');
  writeFileSync(
    p,
    `[server]\nlisten = "127.0.0.1:0"\npassword_file = "${d}/password"\ntls_cert = "${d}/cert.pem"\ntls_key = "${d}/key.pem"\n` +
      `[fencer]\nstate_dir = "${d}/run"\nmarker_dir = "${d}/lib"\nruntime_pools_file = "${d}/lib/rp.json"\n`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), 'serve', '-c', p], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (out += b));
  const exited = new Promise((r) => child.on('exit', r));
  try {
    for (let i = 0; i < 300 && !/brick agent extension listening/.test(out) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, /brick agent extension listening/, out);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  const warns = out.split('\n').filter((l) => l.startsWith('<4>')).map((l) => JSON.parse(l.slice(3)).msg as string);
  assert.ok(warns.includes(`server.password_file ${d}/password is owned by uid 65534, not by uid 0 that brick runs as: that user can read and replace it; chown 0 ${d}/password`), warns.join('\n'));
  assert.ok(warns.includes(`server.tls_key ${d}/key.pem has mode 644; make it 0600 (chmod 600)`), warns.join('\n'));
});
