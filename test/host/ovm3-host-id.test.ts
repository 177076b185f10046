// The fencer's default host id for `ovm` heartbeats is the guid CloudStack's Ovm3 module gives this
// host (Ovm3Discoverer: UUID.nameUUIDFromBytes(host IP), a name-based MD5 UUID, version 3), so
// check_dom0_storage_health_check and peers agree with no config; `kvm` keeps the IP. The expected
// values are computed independently here, by Python's hashlib, from Java's definition.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { defaultHostId, javaNameUuid } from '../../src/fencer/host-id.js';

const CI = process.env.CI === 'true';
const PY = '/usr/bin/python3';
if (!existsSync(PY) && CI) throw new Error(`${PY} missing (scripts/install-test-deps.sh installs python3)`);

// java.util.UUID.nameUUIDFromBytes: md5 of the bytes; version nibble := 3; variant bits := 10.
const PYTHON = `
import hashlib, sys, uuid
for ip in sys.argv[1:]:
    b = bytearray(hashlib.md5(ip.encode('utf-8')).digest())
    b[6] = (b[6] & 0x0f) | 0x30
    b[8] = (b[8] & 0x3f) | 0x80
    u = uuid.UUID(bytes=bytes(b))
    assert u.version == 3 and u.variant == uuid.RFC_4122
    print(u)
`;

test('default ovm host id = Java UUID.nameUUIDFromBytes(IP) for three IPs (expected values from Python hashlib); kvm keeps the IP', { skip: existsSync(PY) ? false : `${PY} missing` }, () => {
  const ips = ['192.168.1.64', '10.1.1.25', '172.16.254.3'];
  const expected = execFileSync(PY, ['-c', PYTHON, ...ips], { encoding: 'utf8' }).trim().split('\n');
  assert.equal(expected.length, 3);
  ips.forEach((ip, i) => {
    assert.equal(javaNameUuid(ip), expected[i], ip);
    assert.equal(defaultHostId('ovm', ip), expected[i], ip);
    assert.equal(defaultHostId('kvm', ip), ip);
  });
  assert.equal(new Set(expected).size, 3);
});
