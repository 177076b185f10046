// The fencer's own MD5 (src/fencer/md5.ts, used for the Ovm3 host guid) against RFC 1321's test
// suite and node:crypto, at every length around the padding boundaries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { md5 } from '../../src/fencer/md5.js';
import { javaNameUuid } from '../../src/fencer/host-id.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('md5: the RFC 1321 test suite', () => {
  const suite: [string, string][] = [
    ['', 'd41d8cd98f00b204e9800998ecf8427e'],
    ['a', '0cc175b9c0f1b6a831c399e269772661'],
    ['abc', '900150983cd24fb0d6963f7d28e17f72'],
    ['message digest', 'f96b697d7cb7938d525a2f31aaf161d0'],
    ['abcdefghijklmnopqrstuvwxyz', 'c3fcd3d76192e4007dfb496cca67e13b'],
    ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', 'd174ab98d277d9f5a5611c2c9f419d9f'],
    ['12345678901234567890123456789012345678901234567890123456789012345678901234567890', '57edf4a22be3c955ac49da2e2107b67a'],
  ];
  for (const [text, digest] of suite) assert.equal(hex(md5(Buffer.from(text))), digest, JSON.stringify(text));
});

test('md5: the same as node:crypto for every length 0..300 and for larger random inputs', () => {
  for (let n = 0; n <= 300; n++) {
    const b = randomBytes(n);
    assert.equal(hex(md5(b)), createHash('md5').update(b).digest('hex'), `length ${n}`);
  }
  for (const n of [1000, 4096, 65537]) {
    const b = randomBytes(n);
    assert.equal(hex(md5(b)), createHash('md5').update(b).digest('hex'), `length ${n}`);
  }
});

test("javaNameUuid: Java's UUID.nameUUIDFromBytes", () => {
  // java.util.UUID.nameUUIDFromBytes("192.168.1.10".getBytes()) and ("".getBytes())
  const v3 = (s: string) => {
    const b = createHash('md5').update(s).digest();
    b[6] = (b[6] & 0x0f) | 0x30;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = b.toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };
  for (const ip of ['192.168.1.10', '10.0.0.1', '', '172.16.254.254']) assert.equal(javaNameUuid(ip), v3(ip), ip);
  assert.equal(javaNameUuid(''), 'd41d8cd9-8f00-3204-a980-0998ecf8427e');
});
