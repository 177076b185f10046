// The man page brick(8) and the bash completion are generated from the command table that also
// makes each command's --help (src/cli/commands.ts): the shipped files must be exactly what the
// generator makes (`node --import tsx scripts/man-page.ts --write` after changing a command).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { bashCompletion, COMPLETION_PATH, MAN_GZ_PATH, MAN_PATH, manPage } from '../../scripts/man-page.js';
import { COMMANDS, EXIT_CODES } from '../../src/cli/commands.js';

const REGENERATE = 'run: node --import tsx scripts/man-page.ts --write';

test('packaging/man/brick.8 and packaging/bash-completion/brick are what the generator makes from the command table', () => {
  assert.equal(readFileSync(MAN_PATH, 'utf8'), manPage(), `brick.8 is stale; ${REGENERATE}`);
  assert.equal(gunzipSync(readFileSync(MAN_GZ_PATH)).toString('utf8'), manPage(), `brick.8.gz is stale; ${REGENERATE}`);
  assert.equal(readFileSync(COMPLETION_PATH, 'utf8'), bashCompletion(), `the completion is stale; ${REGENERATE}`);
});

test('the man page has every command, every option and every exit code; the completion every command and option', () => {
  const man = manPage();
  const comp = bashCompletion();
  for (const c of COMMANDS) {
    assert.ok(man.includes(`.SS ${c.name.replace(/-/g, '\\-')}\n`), c.name);
    assert.ok(comp.includes(`    ${c.name})\n`), c.name);
    for (const o of c.options) {
      if (o.name !== 'help') assert.ok(man.includes(`\\fB\\-\\-${o.name.replace(/-/g, '\\-')}\\fR`), `${c.name} --${o.name}`);
      assert.ok(comp.includes(`--${o.name}`), `completion: ${c.name} --${o.name}`);
    }
  }
  for (const e of EXIT_CODES) assert.ok(man.includes(`.TP\n\\fB${e.code}\\fR\n`), `exit ${e.code}`);
});
