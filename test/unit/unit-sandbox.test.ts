// What brick-fencer.service's sandbox makes of a directory, from the unit's settings alone: the
// shipped units (packaging/systemd, packaging/systemd-219) and variants an admin may write in a
// drop-in, in unit-file form and in `systemctl show` form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../fixtures/exec.js';
import { parseUnitSandbox, sandboxVerdict } from '../../src/cli/unit-sandbox.js';

const shipped = (dir: string) => parseUnitSandbox(readFileSync(join(repoRoot, 'packaging', dir, 'brick-fencer.service'), 'utf8'));

test('the shipped fencer units: the default state_dir and marker_dir are writable; /usr and /boot are not (ProtectSystem=true)', () => {
  for (const dir of ['systemd', 'systemd-219']) {
    const s = shipped(dir);
    for (const p of ['/run/brick', '/var/lib/brick', '/var/run/brick', '/etc/brick/state', '/srv/brick', '/usrlocal/brick'])
      assert.equal(sandboxVerdict(s, p).access, 'writable', `${dir}: ${p}`);
    for (const p of ['/usr/local/brick', '/usr', '/boot/brick'])
      assert.deepEqual(sandboxVerdict(s, p), { access: 'read-only', by: 'ProtectSystem=yes' }, `${dir}: ${p}`);
  }
});

test('ProtectSystem=full adds /etc; strict makes everything read-only but the API filesystems, the unit\'s own directories and ReadWritePaths=', () => {
  const full = parseUnitSandbox('[Service]\nProtectSystem=full\n');
  assert.deepEqual(sandboxVerdict(full, '/etc/brick/state'), { access: 'read-only', by: 'ProtectSystem=full' });
  assert.deepEqual(sandboxVerdict(full, '/var/lib/brick'), { access: 'writable' });
  const strict = parseUnitSandbox('ProtectSystem=strict\nStateDirectory=brick\nRuntimeDirectory=brick\nReadWritePaths=-/srv/fence\n');
  assert.deepEqual(sandboxVerdict(strict, '/var/lib/brick'), { access: 'writable', by: 'the unit\'s own /var/lib/brick' });
  assert.deepEqual(sandboxVerdict(strict, '/run/brick/sub'), { access: 'writable', by: 'the unit\'s own /run/brick' });
  assert.deepEqual(sandboxVerdict(strict, '/srv/fence/state'), { access: 'writable', by: 'ReadWritePaths=/srv/fence' });
  assert.deepEqual(sandboxVerdict(strict, '/var/lib/brick-marker'), { access: 'read-only', by: 'ProtectSystem=strict' }, 'a sibling with the same prefix is not under it');
  assert.deepEqual(sandboxVerdict(strict, '/run/other'), { access: 'read-only', by: 'ProtectSystem=strict' });
  assert.deepEqual(sandboxVerdict(strict, '/usr/lib/brick'), { access: 'read-only', by: 'ProtectSystem=strict' });
});

test('ReadOnlyPaths=/InaccessiblePaths=: the most specific setting decides; at the same path the stricter; an empty assignment resets the list', () => {
  const s = parseUnitSandbox('ReadOnlyPaths=/var/lib\nReadWritePaths=/var/lib/brick\nInaccessiblePaths=-/var/lib/brick/secret\nReadOnlyPaths=/srv/x\nReadWritePaths=/srv/x\n');
  assert.deepEqual(sandboxVerdict(s, '/var/lib/other'), { access: 'read-only', by: 'ReadOnlyPaths=/var/lib' });
  assert.deepEqual(sandboxVerdict(s, '/var/lib/brick'), { access: 'writable', by: 'ReadWritePaths=/var/lib/brick' });
  assert.deepEqual(sandboxVerdict(s, '/var/lib/brick/secret/m'), { access: 'inaccessible', by: 'InaccessiblePaths=/var/lib/brick/secret' });
  assert.deepEqual(sandboxVerdict(s, '/srv/x'), { access: 'read-only', by: 'ReadOnlyPaths=/srv/x' });
  const reset = parseUnitSandbox('ReadOnlyPaths=/var/lib\nReadOnlyPaths=\n');
  assert.deepEqual(sandboxVerdict(reset, '/var/lib/brick'), { access: 'writable' });
  // systemd 219's names, and `systemctl show`'s one line per list.
  assert.deepEqual(sandboxVerdict(parseUnitSandbox('ReadOnlyDirectories=/var/lib\n'), '/var/lib/brick'), { access: 'read-only', by: 'ReadOnlyPaths=/var/lib' });
  const shown = parseUnitSandbox('LoadState=loaded\nProtectSystem=no\nReadOnlyPaths=-/var/lib /srv\nReadWritePaths=\nStateDirectory=\n');
  assert.deepEqual(sandboxVerdict(shown, '/srv/brick'), { access: 'read-only', by: 'ReadOnlyPaths=/srv' });
  assert.deepEqual(sandboxVerdict(shown, '/var/lib/brick'), { access: 'read-only', by: 'ReadOnlyPaths=/var/lib' });
});

test('ProtectHome= and PrivateTmp=: /root read-only or hidden, a private /tmp', () => {
  assert.deepEqual(sandboxVerdict(parseUnitSandbox('ProtectHome=read-only\n'), '/root/brick'), { access: 'read-only', by: 'ProtectHome=read-only' });
  assert.deepEqual(sandboxVerdict(parseUnitSandbox('ProtectHome=yes\n'), '/home/brick'), { access: 'inaccessible', by: 'ProtectHome=yes' });
  assert.deepEqual(sandboxVerdict(parseUnitSandbox('ProtectHome=tmpfs\n'), '/root/brick'), { access: 'private', by: 'ProtectHome=tmpfs' });
  assert.deepEqual(sandboxVerdict(parseUnitSandbox('PrivateTmp=true\n'), '/var/tmp/brick'), { access: 'private', by: 'PrivateTmp=yes' });
  assert.deepEqual(sandboxVerdict(parseUnitSandbox('PrivateTmp=no\nProtectHome=no\n'), '/tmp/brick'), { access: 'writable' });
});
