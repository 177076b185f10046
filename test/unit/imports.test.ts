// The import graph of src/: no cycle, and no feature (network/, fencer/) importing the XML-RPC server
// (agent-extension/). The checker is the shared tool ../shared/tools/imports/imports.py (CI has
// shared/ beside the checkout); without it this test fails rather than pass unchecked.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const tool = resolve(repo, '../shared/tools/imports/imports.py');

describe('import graph', () => {
  it('src/ has no import cycle and no import from a feature into agent-extension/', () => {
    assert.ok(existsSync(tool), `the import checker is missing: ${tool} (CI checks shared/ out beside the repo)`);
    const r = spawnSync('python3', [tool, 'src'], { cwd: repo, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.error, undefined, `could not run python3 ${tool}: ${r.error?.message}`);
    assert.equal(r.status, 0, `imports.py reports:\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /0 cycles, 0 upward imports/);
  });
});
