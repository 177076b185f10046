// What brick-fencer.service's sandbox does to a directory: systemd's ProtectSystem=, ProtectHome=,
// PrivateTmp=, ReadOnlyPaths=, InaccessiblePaths=, ReadWritePaths= (and their systemd 219 names
// ...Directories=) and the unit's own StateDirectory=/RuntimeDirectory=... (writable under
// ProtectSystem=strict). Pure: the settings come from `systemctl show` or the unit file text (both
// are Key=value lines), the verdict is a function of them and a path.
import { posix } from 'node:path';

export interface UnitSandbox {
  protectSystem: string;
  protectHome: string;
  privateTmp: boolean;
  readOnly: string[];
  inaccessible: string[];
  readWrite: string[];
  /** StateDirectory=, RuntimeDirectory=... as absolute paths. */
  ownDirs: string[];
}

const LISTS: Record<string, keyof Pick<UnitSandbox, 'readOnly' | 'inaccessible' | 'readWrite'>> = {
  ReadOnlyPaths: 'readOnly',
  ReadOnlyDirectories: 'readOnly',
  InaccessiblePaths: 'inaccessible',
  InaccessibleDirectories: 'inaccessible',
  ReadWritePaths: 'readWrite',
  ReadWriteDirectories: 'readWrite',
};
const OWN_DIRS: Record<string, string> = {
  StateDirectory: '/var/lib',
  RuntimeDirectory: '/run',
  CacheDirectory: '/var/cache',
  LogsDirectory: '/var/log',
  ConfigurationDirectory: '/etc',
};
const TRUE = new Set(['yes', 'true', 'on', '1']);
const FALSE = new Set(['no', 'false', 'off', '0', '']);

/**
 * Key=value lines (a unit file with its drop-ins in order, or `systemctl show` output) into the
 * sandbox. As systemd reads them: list settings add up, an empty assignment empties the list; a
 * path's "-" (ignore if missing) and "+" (relative to RootDirectory) prefixes are dropped.
 */
export function parseUnitSandbox(text: string): UnitSandbox {
  const s: UnitSandbox = { protectSystem: 'no', protectHome: 'no', privateTmp: false, readOnly: [], inaccessible: [], readWrite: [], ownDirs: [] };
  const own: Record<string, string[]> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';') || line.startsWith('[')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    const words = value.split(/\s+/).filter(Boolean);
    if (key === 'ProtectSystem') s.protectSystem = TRUE.has(value) ? 'yes' : FALSE.has(value) ? 'no' : value;
    else if (key === 'ProtectHome') s.protectHome = TRUE.has(value) ? 'yes' : FALSE.has(value) ? 'no' : value;
    else if (key === 'PrivateTmp') s.privateTmp = TRUE.has(value);
    else if (key in LISTS) {
      const k = LISTS[key];
      s[k] = value === '' ? [] : [...s[k], ...words.map((w) => posix.normalize(w.replace(/^[-+]+/, '')))];
    } else if (key in OWN_DIRS) own[key] = value === '' ? [] : [...(own[key] ?? []), ...words.map((w) => posix.join(OWN_DIRS[key], w.split(':')[0]))];
  }
  s.ownDirs = Object.values(own).flat();
  return s;
}

export type SandboxAccess = 'writable' | 'read-only' | 'inaccessible' | 'private';

export interface SandboxVerdict {
  access: SandboxAccess;
  /** The unit setting that decides it, as the admin would write it ("ProtectSystem=full"). */
  by?: string;
}

interface Rule {
  path: string;
  access: SandboxAccess;
  by: string;
}

// At the same path the stricter setting wins (systemd drops the later duplicate of its sorted list).
const STRICTNESS: Record<SandboxAccess, number> = { inaccessible: 0, 'read-only': 1, private: 2, writable: 3 };

function rules(s: UnitSandbox): Rule[] {
  const r: Rule[] = [];
  const ps = `ProtectSystem=${s.protectSystem}`;
  if (s.protectSystem === 'strict') {
    r.push({ path: '/', access: 'read-only', by: ps });
    // The API filesystems stay as they are (ProtectKernelTunables= and friends are other settings).
    for (const p of ['/dev', '/proc', '/sys']) r.push({ path: p, access: 'writable', by: ps });
  }
  if (s.protectSystem === 'yes' || s.protectSystem === 'full' || s.protectSystem === 'strict') for (const p of ['/usr', '/boot', '/efi']) r.push({ path: p, access: 'read-only', by: ps });
  if (s.protectSystem === 'full' || s.protectSystem === 'strict') r.push({ path: '/etc', access: 'read-only', by: ps });
  const ph = `ProtectHome=${s.protectHome}`;
  const homeAccess: SandboxAccess | undefined = s.protectHome === 'read-only' ? 'read-only' : s.protectHome === 'yes' ? 'inaccessible' : s.protectHome === 'tmpfs' ? 'private' : undefined;
  if (homeAccess) for (const p of ['/home', '/root', '/run/user']) r.push({ path: p, access: homeAccess, by: ph });
  if (s.privateTmp) for (const p of ['/tmp', '/var/tmp']) r.push({ path: p, access: 'private', by: 'PrivateTmp=yes' });
  for (const p of s.readOnly) r.push({ path: p, access: 'read-only', by: `ReadOnlyPaths=${p}` });
  for (const p of s.inaccessible) r.push({ path: p, access: 'inaccessible', by: `InaccessiblePaths=${p}` });
  for (const p of s.readWrite) r.push({ path: p, access: 'writable', by: `ReadWritePaths=${p}` });
  for (const p of s.ownDirs) r.push({ path: p, access: 'writable', by: `the unit's own ${p}` });
  return r;
}

const under = (path: string, top: string) => top === '/' || path === top || path.startsWith(top + '/');

/** What the unit's sandbox makes of `path` (absolute): the most specific setting that covers it decides. */
export function sandboxVerdict(s: UnitSandbox, path: string): SandboxVerdict {
  const p = posix.normalize(path);
  let best: Rule | undefined;
  for (const r of rules(s)) {
    if (!under(p, r.path)) continue;
    if (!best || r.path.length > best.path.length || (r.path.length === best.path.length && STRICTNESS[r.access] < STRICTNESS[best.access])) best = r;
  }
  return best ? { access: best.access, by: best.by } : { access: 'writable' };
}
