// The documents generated from the config schema (README "Config reference", packaging/brick.toml)
// must match it, and the packaged config must be valid both as shipped and with every key uncommented.
// When a test here fails after a schema change: node --import tsx scripts/config-reference.ts --write
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import {
  BEGIN,
  END,
  PACKAGED_CONFIG_PATH,
  PACKAGED_SETTINGS,
  README_PATH,
  configReferenceMarkdown,
  packagedConfigToml,
  readmeWithReference,
  schemaKeys,
} from '../../scripts/config-reference.js';
import { parseConfigText } from '../../src/config/load.js';

const REGENERATE = 'run: node --import tsx scripts/config-reference.ts --write';

test('the README config reference is exactly what the generator makes from the schema', () => {
  const readme = readFileSync(README_PATH, 'utf8');
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  assert.ok(a >= 0 && b > a, `README.md has no config-reference section; ${REGENERATE}`);
  assert.equal(readme.slice(a, b + END.length + 1), configReferenceMarkdown(), `README config reference is stale; ${REGENERATE}`);
  assert.equal(readmeWithReference(readme), readme, 'regenerating changes nothing');
});

test('every schema key is documented: in the README table and with a description', () => {
  const md = configReferenceMarkdown();
  for (const k of schemaKeys()) {
    assert.ok(k.description.trim(), `${k.section}.${k.key} has no description in src/config/schema.ts`);
    assert.match(md, new RegExp(`^\\| \`${k.key}\` \\|`, 'm'), `${k.section}.${k.key} missing from the reference`);
  }
});

test('packaging/brick.toml is exactly what the generator makes from the schema', () => {
  assert.equal(readFileSync(PACKAGED_CONFIG_PATH, 'utf8'), packagedConfigToml(), `packaging/brick.toml is stale; ${REGENERATE}`);
});

test('the packaged brick.toml is valid as shipped: HTTPS with generated credentials, everything else default', () => {
  const text = packagedConfigToml();
  const r = parseConfigText(text, 'brick.toml');
  assert.deepEqual(r.problems, []);
  assert.equal(r.config!.server.tls_cert, '/etc/brick/tls/cert.pem');
  assert.equal(r.config!.server.tls_key, '/etc/brick/tls/key.pem');
  assert.equal(r.config!.server.generate_credentials, true);
  assert.deepEqual(r.config!.fencer.pool, []);
});

/** Uncomment every "#key = value" line (and the example [[fencer.pool]]) unless the key is set already. */
function uncommentAll(text: string): { text: string; keys: string[] } {
  const keys: string[] = [];
  let section = '';
  const active = new Set<string>();
  for (const line of text.split('\n')) {
    const h = /^\[+([^\]]+)\]+$/.exec(line);
    if (h) section = h[1];
    const k = /^([a-z_]+) = /.exec(line);
    if (k) active.add(`${section}.${k[1]}`);
  }
  section = '';
  const out = text.split('\n').map((line) => {
    const h = /^#?\[+([^\]]+)\]+$/.exec(line);
    if (h) {
      section = h[1];
      return line.replace(/^#/, '');
    }
    const k = /^#([a-z_]+) = /.exec(line);
    if (!k) return line;
    keys.push(`${section}.${k[1]}`);
    return active.has(`${section}.${k[1]}`) ? line : line.slice(1);
  });
  return { text: out.join('\n'), keys };
}

test('uncommenting every key of the packaged brick.toml gives a valid config, and its keys are exactly the schema\'s', () => {
  const { text, keys } = uncommentAll(packagedConfigToml());
  const doc = parseToml(text) as Record<string, Record<string, unknown>>; // well-formed TOML, no duplicate keys
  assert.equal((doc.fencer.pool as unknown[]).length, 1, 'the example pool uncomments to one [[fencer.pool]]');
  assert.deepEqual(parseConfigText(text, 'uncommented').problems, []);
  assert.deepEqual(
    keys.sort(),
    schemaKeys()
      .map((k) => `${k.section}.${k.key}`)
      .sort(),
  );
  // The commented values are the schema defaults (what you get by leaving them commented).
  const defaults = parseConfigText(packagedConfigToml()).config!;
  const all = parseConfigText(text).config!;
  assert.deepEqual({ ...all, fencer: { ...all.fencer, pool: [] } }, defaults);
});

test('the packaged settings are real schema keys', () => {
  const known = new Set(schemaKeys().map((k) => `${k.section}.${k.key}`));
  for (const [section, kv] of Object.entries(PACKAGED_SETTINGS)) for (const key of Object.keys(kv)) assert.ok(known.has(`${section}.${key}`), `${section}.${key}`);
});

test('the systemd units use nothing newer than systemd 239 (EL8), so EL8 loads them without warnings', () => {
  // Directives (and values) added after systemd 239, with the version that added them.
  const newer: Record<string, number> = {
    ProtectKernelLogs: 244, RestrictSUIDSGID: 242, ProtectClock: 245, ProtectHostname: 242, ProtectProc: 247, ProcSubset: 247,
    OOMPolicy: 243, ExecCondition: 243, ExitType: 250, RestartSteps: 254, RestartMaxDelaySec: 254, RestrictFileSystems: 250,
    ManagedOOMSwap: 247, ManagedOOMMemoryPressure: 247, SystemCallLog: 247, LogFilterPatterns: 253, 'Type=exec': 240,
    TimeoutStartFailureMode: 246, TimeoutStopFailureMode: 246,
  };
  for (const unit of ['brick-agent.service', 'brick-fencer.service']) {
    const text = readFileSync(new URL(`../../packaging/systemd/${unit}`, import.meta.url), 'utf8');
    let section = '';
    for (const line of text.split('\n')) {
      const h = /^\[(\w+)\]$/.exec(line);
      if (h) section = h[1];
      const m = /^(\w+)=(.*)$/.exec(line);
      if (!m) continue;
      assert.ok(!(m[1] in newer), `${unit}: ${m[1]}= needs systemd ${newer[m[1]]}`);
      assert.ok(!(`${m[1]}=${m[2]}` in newer), `${unit}: ${m[1]}=${m[2]} needs systemd ${newer[`${m[1]}=${m[2]}`]}`);
      if (m[1].startsWith('StartLimit')) assert.equal(section, 'Unit', `${unit}: ${m[1]} belongs in [Unit]`);
    }
  }
});

test('no service definition sets a variable the binary drops: it would start twice (re-exec without it) and the setting would do nothing', async () => {
  const { runtimeVariables } = await import('../../src/cli/runtime-env.js');
  const files = ['systemd', 'systemd-219', 'upstart', 'sysv'].flatMap((d) =>
    readdirSync(new URL(`../../packaging/${d}/`, import.meta.url)).map((f) => `packaging/${d}/${f}`),
  );
  assert.ok(files.length >= 8, files.join(' '));
  let assignments = 0;
  for (const file of files) {
    const names = readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8')
      .split('\n')
      .filter((l) => !/^\s*#/.test(l))
      .map((l) => l.replace(/^Environment=/, 'Environment= ')) // systemd: Environment=A=1 B=2
      .flatMap((l) => [...l.matchAll(/(?:^|[\s;])(?:export\s+|env\s+)?([A-Za-z_][A-Za-z0-9_]*)=/g)].map((m) => m[1]))
      .filter((n) => /^[A-Z][A-Z0-9_]*$/.test(n));
    assignments += names.length;
    assert.deepEqual(runtimeVariables(Object.fromEntries(names.map((n) => [n, '1']))), [], `${file} sets ${names.join(', ')}`);
  }
  assert.ok(assignments > 0, 'the scan found the variables the files do set (TZ, PIDFILE, ...)');
  // The scan sees what the units used to carry.
  assert.deepEqual(runtimeVariables({ TZ: 'UTC', UV_THREADPOOL_SIZE: '16', UV_USE_IO_URING: '0' }), ['UV_THREADPOOL_SIZE', 'UV_USE_IO_URING']);
});
