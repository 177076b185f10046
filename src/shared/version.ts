// Filled in by the bundler (scripts/build-bundle.mjs); in development read from package.json/git.
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

declare const __BRICK_VERSION__: string | undefined;
declare const __BRICK_COMMIT__: string | undefined;

function devVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return '0.0.0-dev';
  }
}

function devCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

export const BRICK_VERSION: string = typeof __BRICK_VERSION__ === 'string' ? __BRICK_VERSION__ : devVersion();
export const BUILD_COMMIT: string = typeof __BRICK_COMMIT__ === 'string' ? __BRICK_COMMIT__ : devCommit();
