#!/usr/bin/env bash
# Run brick on its sandbox config (examples/sandbox.toml): the agent on http://127.0.0.1:8898 and
# the fencer in log-only mode on a local directory. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
mkdir -p /tmp/brick-sandbox/{files,hooks/before_vm_start,pool,run,lib}
: > /tmp/brick-sandbox/sysrq-trigger
BRICK=(node --import tsx src/cli/main.ts)
[ -x dist/brick ] && [ "${BRICK_SANDBOX_DEV:-}" != 1 ] && BRICK=(dist/brick)
"${BRICK[@]}" fencer --config examples/sandbox.toml --log-format pretty &
fencer=$!
trap 'kill $fencer 2>/dev/null; wait $fencer 2>/dev/null' EXIT INT TERM
"${BRICK[@]}" serve --config examples/sandbox.toml --log-format pretty
