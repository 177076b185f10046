// The HTTP Basic password and the TLS certificate: read them, or (generate_credentials = true)
// create them on first start. The password never reaches the log.
import { randomBytes, createHash, timingSafeEqual, generateKeyPairSync } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { hostname } from 'node:os';
import type { Config } from '../config/schema.js';
import type { Logger } from '../shared/log.js';
import type { Runner } from '../shared/run.js';
import { BrickError } from '../shared/errors.js';
import { parseListen } from '../config/rules.js';
import { fsyncDir } from '../shared/atomic-write.js';

/** The password: server.password inline, else the first line of server.password_file. */
export function loadPassword(config: Config): string {
  const s = config.server;
  if (s.password) return s.password;
  let text: string;
  try {
    text = readFileSync(s.password_file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new BrickError(
      'NOT_FOUND',
      `server.password_file ${s.password_file}: cannot read it (${code ?? (e as Error).message}); create it (mode 0600) or set generate_credentials = true`,
    );
  }
  const pw = text.replace(/\r?\n$/, '');
  if (!pw) throw new BrickError('INVALID_PARAMS', `server.password_file ${s.password_file} is empty; put the password in it`);
  return pw;
}

/** Constant-time string compare (hashing first, so lengths do not leak either). */
export function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb);
}

/**
 * Whether an Authorization header is the expected one, in constant time: the loop always runs once
 * per character of the expected header (fixed for the server's life) and never stops early, so its
 * time depends neither on where the caller's header differs nor on its length. About 0.05 us, where
 * hashing the caller's header first cost 2 us (crypto.hash, measured alone; up to 8 us a call in a
 * server profile).
 */
export function sameHeader(header: string, expected: string): boolean {
  const n = header.length;
  let diff = n ^ expected.length;
  for (let i = 0; i < expected.length; i++) diff |= (i < n ? header.charCodeAt(i) : 0) ^ expected.charCodeAt(i);
  return diff === 0;
}

export interface GeneratedCredentials {
  /** Set when a new password file was written just now. */
  password?: string;
  passwordFile?: string;
  /** Set when a new certificate and key were written just now. */
  tlsCert?: string;
  tlsKey?: string;
}

/** What failed while creating a credential file, as a user error naming the key and the fix. */
function cannotCreate(key: string, path: string, e: unknown): BrickError {
  const err = e as NodeJS.ErrnoException;
  const why = err.code === 'EROFS' ? 'read-only file system' : err.code === 'EACCES' ? 'permission denied' : (err.code ?? err.message);
  return new BrickError('INVALID_PARAMS', `server.${key} ${path}: cannot create it (${why}); create it yourself, or point server.${key} to a writable place`);
}

function ensureParent(key: string, path: string): void {
  const dir = dirname(path);
  if (existsSync(dir)) return;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    // The recursive mkdir says ENOENT where the directory cannot be made (EROFS): ask once more
    // without it, for the error that says why.
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (again) {
      throw cannotCreate(key, path, (again as NodeJS.ErrnoException).code === 'ENOENT' ? e : again);
    }
  }
}

/**
 * Put `from` (a finished, fsynced file) at `path` unless something is there already: a hard link
 * never replaces a file, so a concurrent start (or the admin) that got there first keeps its file.
 * `from` is removed either way. True when it was put in place.
 */
function linkNew(from: string, path: string): boolean {
  try {
    linkSync(from, path);
    fsyncDir(dirname(path));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    discard(from);
  }
}

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Remove a temp file; nothing to report if it is not there (or cannot be: its directory is the problem). */
function discard(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    /* the error that brought us here is the one to report */
  }
}

/** A temp file name beside `path`, unique to this process and call. */
const tempBeside = (path: string, ext: string) => join(dirname(path), `.brick-new-${process.pid}-${randomBytes(4).toString('hex')}${ext}`);

/**
 * The key without its certificate is what another start sees between that start's two links
 * (key first, then certificate): give it a moment to finish before calling the pair broken.
 */
async function pairSettled(certPath: string, keyPath: string): Promise<void> {
  for (let i = 0; i < 100 && existsSync(keyPath) && !existsSync(certPath); i++) await new Promise((r) => setTimeout(r, 50));
}

/**
 * Each directory brick generates a credential in gets a record of it: `.brick-generated`, one
 * "sha256  name" line per file (sha256sum's format). The .deb's purge reads it (packaging/scripts.mjs
 * purgeGenerated) and removes a file named there only while its content is still what brick wrote:
 * a password or certificate the admin made, or put in place of brick's, is never brick's to remove.
 */
export const GENERATED_RECORD = '.brick-generated';

/** Add `path` (just generated) to its directory's record; a failure costs only the purge, so it is logged. */
function recordGenerated(path: string, log: Logger): void {
  const record = join(dirname(path), GENERATED_RECORD);
  try {
    const sum = createHash('sha256').update(readFileSync(path)).digest('hex');
    // One short O_APPEND write: concurrent starts each add their line whole.
    appendFileSync(record, `${sum}  ${basename(path)}\n`, { mode: 0o600 });
  } catch (e) {
    log.warn({ record, err: (e as NodeJS.ErrnoException).code ?? (e as Error).message }, `could not record ${path} as generated; a purge of the package keeps it`);
  }
}

/** Create what is missing, when generate_credentials = true; idempotent; never overwrites. */
export async function generateCredentials(config: Config, log: Logger, run: Runner): Promise<GeneratedCredentials> {
  const s = config.server;
  const out: GeneratedCredentials = {};
  if (!s.generate_credentials) return out;
  if (!s.password && s.password_file && !existsSync(s.password_file)) {
    ensureParent('password_file', s.password_file);
    const pw = randomBytes(18).toString('base64url');
    // Written whole and fsynced before it appears: a reader (a concurrent start, brick call) or a
    // crash never sees an empty password file; a concurrent start that won keeps its file.
    const tmp = tempBeside(s.password_file, '.pw');
    let created: boolean;
    try {
      writeFileSync(tmp, pw + '\n', { mode: 0o600, flag: 'wx', flush: true });
      created = linkNew(tmp, s.password_file);
    } catch (e) {
      discard(tmp);
      throw cannotCreate('password_file', s.password_file, e);
    }
    if (created) {
      recordGenerated(s.password_file, log);
      out.password = pw;
      out.passwordFile = s.password_file;
      log.info({ password_file: s.password_file }, 'generated a random password');
    }
  }
  if (s.tls_cert && s.tls_key) {
    await pairSettled(s.tls_cert, s.tls_key);
    const haveCert = existsSync(s.tls_cert);
    const haveKey = existsSync(s.tls_key);
    if (haveCert !== haveKey)
      throw new BrickError(
        'CONFLICT',
        `server.tls_cert ${s.tls_cert} ${haveCert ? 'exists' : 'is missing'} but server.tls_key ${s.tls_key} ${haveKey ? 'exists' : 'is missing'}; remove the one left over or provide both`,
      );
    if (!haveCert && (await selfSignedCertificate(s.tls_cert, s.tls_key, config, run))) {
      recordGenerated(s.tls_key, log);
      recordGenerated(s.tls_cert, log);
      out.tlsCert = s.tls_cert;
      out.tlsKey = s.tls_key;
      log.info({ tls_cert: s.tls_cert, tls_key: s.tls_key }, 'generated a self-signed TLS certificate');
    }
  }
  return out;
}

/**
 * A self-signed P-256 certificate for this host (and the listen address), put in place only if
 * none is there yet (false: another start's pair is there, not replaced). The key is made here
 * (node:crypto); openssl only signs, in a form every OpenSSL since 0.9.8 takes: the subjectAltName
 * in a config file (-config/-extensions) instead of -addext (1.1.1+), -key instead of -newkey ec
 * -pkeyopt (1.0.0+). See src/shared/host-tools.ts.
 */
export async function selfSignedCertificate(certPath: string, keyPath: string, config: Config | undefined, run: Runner): Promise<boolean> {
  ensureParent('tls_cert', certPath);
  ensureParent('tls_key', keyPath);
  const tmpCert = tempBeside(certPath, '.crt');
  const tmpKey = tempBeside(keyPath, '.key');
  const tmpConf = tempBeside(keyPath, '.cnf');
  const names = new Set(['DNS:localhost', 'IP:127.0.0.1', 'IP:::1', `DNS:${hostname()}`]);
  const listen = config ? parseListen(config.server.listen) : undefined;
  if (listen && listen.host !== '0.0.0.0' && listen.host !== '::' && listen.host !== 'localhost') names.add(`IP:${listen.host}`);
  try {
    try {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      writeFileSync(tmpKey, privateKey.export({ type: 'sec1', format: 'pem' }), { mode: 0o600, flag: 'wx', flush: true });
      writeFileSync(
        tmpConf,
        ['[req]', 'distinguished_name = dn', 'prompt = no', '[dn]', '[brick_ext]', 'basicConstraints = critical,CA:FALSE',
          'keyUsage = critical,digitalSignature,keyEncipherment', 'extendedKeyUsage = serverAuth',
          `subjectAltName = ${[...names].join(',')}`, ''].join('\n'),
        { mode: 0o600 },
      );
    } catch (e) {
      throw cannotCreate('tls_key', keyPath, e);
    }
    await run(
      'openssl',
      ['req', '-new', '-x509', '-key', tmpKey, '-sha256', '-days', '3650', '-config', tmpConf, '-extensions', 'brick_ext',
        '-subj', `/CN=${hostname().slice(0, 60) || 'brick'}`, '-out', tmpCert],
      { timeoutMs: 30_000 },
    );
    fsyncFile(tmpCert); // openssl does not
    // Never replace a pair another start made meanwhile (it may be serving it already): the key
    // first, then its certificate; a start that finds the key taken uses the pair that won.
    if (!linkNew(tmpKey, keyPath)) {
      await pairSettled(certPath, keyPath);
      return false;
    }
    if (!linkNew(tmpCert, certPath)) {
      rmSync(keyPath, { force: true }); // ours, linked a moment ago: the certificate there is not for it
      throw new BrickError('CONFLICT', `server.tls_cert ${certPath} appeared while brick made a new key for it; remove it, or provide server.tls_key for it`);
    }
    return true;
  } finally {
    discard(tmpKey);
    discard(tmpCert);
    discard(tmpConf);
  }
}

/** Read the TLS pair when both are configured. */
export function loadTls(config: Config): { cert: Buffer; key: Buffer } | undefined {
  const s = config.server;
  if (!s.tls_cert || !s.tls_key) return undefined;
  const read = (key: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new BrickError('NOT_FOUND', `server.${key} ${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); or set generate_credentials = true`);
    }
  };
  const pair = { cert: read('tls_cert', s.tls_cert), key: read('tls_key', s.tls_key) };
  checkTlsPair(pair, s.tls_cert, s.tls_key);
  return pair;
}

/**
 * Files that are there but cannot serve (not PEM, swapped, a key of another certificate) are the
 * admin's to fix: a BrickError naming the key, where Node's own TLS error (thrown when the server
 * is made) ended brick serve as an internal failure (exit 2, a stack trace, restarted in a loop).
 */
function checkTlsPair(pair: { cert: Buffer; key: Buffer }, certPath: string, keyPath: string): void {
  const tls = process.getBuiltinModule('node:tls'); // only with TLS configured: a plain-HTTP agent never loads it
  const reason = (e: unknown) => String((e as Error).message).replace(/^error:[0-9A-F]+:/, '');
  try {
    tls.createSecureContext({ cert: pair.cert });
  } catch (e) {
    throw new BrickError('INVALID_PARAMS', `server.tls_cert ${certPath}: not a usable certificate (${reason(e)}); a PEM certificate is needed`);
  }
  try {
    tls.createSecureContext({ key: pair.key });
  } catch (e) {
    throw new BrickError('INVALID_PARAMS', `server.tls_key ${keyPath}: not a usable private key (${reason(e)}); an unencrypted PEM private key is needed`);
  }
  try {
    tls.createSecureContext({ cert: pair.cert, key: pair.key });
  } catch (e) {
    throw new BrickError('INVALID_PARAMS', `server.tls_key ${keyPath} is not the key of the certificate in server.tls_cert ${certPath} (${reason(e)})`);
  }
}

/**
 * Warnings for secret files others can read or change: the password file and the TLS key
 * readable by group or others, or owned by another user than the one brick runs as (that user
 * can read the secret and replace it).
 */
export function credentialWarnings(config: Config): string[] {
  const s = config.server;
  const out: string[] = [];
  const check = (key: string, path: string) => {
    let st;
    try {
      st = statSync(path);
    } catch {
      return; // reported by loadPassword / loadTls
    }
    const mode = st.mode & 0o777;
    if (mode & 0o077) out.push(`server.${key} ${path} has mode ${mode.toString(8)}; make it 0600 (chmod 600)`);
    const me = process.getuid?.();
    if (me !== undefined && st.uid !== me)
      out.push(`server.${key} ${path} is owned by uid ${st.uid}, not by uid ${me} that brick runs as: that user can read and replace it; chown ${me} ${path}`);
  };
  if (!s.password && s.password_file) check('password_file', s.password_file);
  if (s.tls_cert && s.tls_key) check('tls_key', s.tls_key);
  return out;
}
