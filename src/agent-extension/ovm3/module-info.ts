// call (echo), get_module_version and get_ovs_version.
import { readFile } from 'node:fs/promises';
import { BrickError } from '../../shared/errors.js';

/** The Ovm3 module API level brick implements (cloudstack.py's getModuleVersion()). */
export const OVM3_MODULE_VERSION = '0.1';
export const OVS_RELEASE = '/etc/ovs-release';

/** The version at the end of /etc/ovs-release's first line, e.g. "Oracle VM server release 3.2.1" → "3.2.1" (pure). */
export function ovsReleaseVersion(text: string): string | undefined {
  const first = text.split('\n')[0]?.trim() ?? '';
  return /[\d.]+$/.exec(first)?.[0];
}

export async function readOvsVersion(file = OVS_RELEASE): Promise<string | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : ovsReleaseVersion(text);
}

export async function getOvsVersion(file = OVS_RELEASE): Promise<string> {
  const v = await readOvsVersion(file);
  if (v === undefined) throw new BrickError('UNSUPPORTED', `${file}: missing or without a version; this is not an Oracle VM Server host`);
  return v;
}
