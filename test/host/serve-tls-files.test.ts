// `brick serve` with TLS files that exist but cannot serve: a key of another certificate, a key or
// certificate that is not PEM, the two swapped. Each is the admin's configuration: exit 1 with one
// line naming the key (systemd's RestartPreventExitStatus=1 then does not restart it in a loop),
// never exit 2 with a stack trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../fixtures/serve-process.js';
import { selfSignedCertificate } from '../../src/agent-extension/credentials.js';
import { run } from '../../src/shared/run.js';
import { scratchDir } from '../fixtures/scratch.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'src/cli/main.ts');
const dir = scratchDir('brick-serve-tls-');

function serveOnce(config: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = execFile(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--config', config], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    );
    c.stdin?.end();
  });
}

test('TLS files that do not make a usable pair: exit 1, one line naming server.tls_cert / server.tls_key', async () => {
  await selfSignedCertificate(join(dir, 'a.crt'), join(dir, 'a.key'), undefined, run);
  await selfSignedCertificate(join(dir, 'b.crt'), join(dir, 'b.key'), undefined, run);
  writeFileSync(join(dir, 'garbage.pem'), 'not a PEM file\n');
  const port = await freePort();
  const cases: Array<[string, string, string, RegExp]> = [
    ['key of another certificate', 'a.crt', 'b.key', /^brick: server\.tls_key \S+b\.key is not the key of the certificate in server\.tls_cert \S+a\.crt/],
    ['key not PEM', 'a.crt', 'garbage.pem', /^brick: server\.tls_key \S+garbage\.pem: not a usable private key \(/],
    ['certificate not PEM', 'garbage.pem', 'a.key', /^brick: server\.tls_cert \S+garbage\.pem: not a usable certificate \(/],
    ['swapped', 'a.key', 'a.crt', /^brick: server\.tls_cert \S+a\.key: not a usable certificate \(/],
  ];
  for (const [what, cert, key, message] of cases) {
    const config = join(dir, 'brick.toml');
    writeFileSync(
      config,
      `[server]\nlisten = "127.0.0.1:${port}"\npassword = "tls-pw"\ngenerate_credentials = false\ntls_cert = "${join(dir, cert)}"\ntls_key = "${join(dir, key)}"\n`,
    );
    const r = await serveOnce(config);
    assert.equal(r.code, 1, `${what}: exit 1 (a user error), got ${r.code}:\n${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line:\n${r.stderr}`);
    assert.match(r.stderr, message, what);
    assert.doesNotMatch(r.stderr, /\bat \S+ \(/, `${what}: no stack trace`);
  }
});
