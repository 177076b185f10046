// The name of this host in heartbeat file names when fencer.host_id is not set: what CloudStack
// peers look for. KVM names the file after the host's private IP (`KVMHA/hb-<ip>`); the Ovm3 module
// after the host guid, which Ovm3Discoverer makes as Java's UUID.nameUUIDFromBytes(ip).
import { networkInterfaces } from 'node:os';
import type { HeartbeatFormat } from './heartbeat-format.js';
import { md5 } from './md5.js';

/** Java's UUID.nameUUIDFromBytes: an MD5 (version 3) UUID of the bytes. */
export function javaNameUuid(text: string): string {
  const b = Buffer.from(md5(Buffer.from(text, 'utf8')));
  b[6] = (b[6] & 0x0f) | 0x30;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The first non-loopback, non-link-local IPv4 address, or undefined. */
export function primaryIPv4(ifaces = networkInterfaces()): string | undefined {
  for (const list of Object.values(ifaces))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('169.254.')) return a.address;
  return undefined;
}

export function defaultHostId(format: HeartbeatFormat, ip = primaryIPv4()): string | undefined {
  if (!ip) return undefined;
  return format === 'kvm' ? ip : javaNameUuid(ip);
}
