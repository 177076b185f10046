#!/usr/bin/env bash
# `npm run bench`: run every benchmark (one script per area), then write bench/RESULTS.md.
# Benchmarks are not tests: they print figures and never fail on a timing.
#   1. build dist/brick when it is missing or older than any source (the footprint figures and the
#      fencer bench measure the binary, not tsx);
#   2. run bench/idle-rss.ts first, alone: `brick serve` and `brick fencer` idle for BENCH_IDLE_S
#      (60) seconds. Not beside the other benches: they read the binary back into the page cache
#      (footprint.ts evicts it and starts it 40 times), and the kernel's fault-around then maps more
#      of its cached pages into the idling programs: 65.4 MiB for serve beside footprint.ts against
#      59.95 alone, the same binary ten minutes apart (30 Nov), when the issue's figure is for a
#      binary not in the page cache;
#   3. run every other bench/*.ts, one after another (each under a 600 s timeout);
#   4. render bench/RESULTS.md from bench/out/*.json.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
export BENCH_STARTED_AT=$(date +%s)
export BENCH_LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
bash scripts/install-test-deps.sh
mkdir -p bench/out
rm -f bench/out/*.json # RESULTS.md shows this run only
failed=()

sources=(src scripts package.json); [[ -f package-lock.json ]] && sources+=(package-lock.json)
if [[ -x dist/brick ]]; then stale=$(find "${sources[@]}" -newer dist/brick -type f -print -quit); else stale=missing; fi
if [[ -n "$stale" ]]; then
  echo "== npm run build:binary (dist/brick ${stale:+stale: $stale})"
  start=$(date +%s)
  node scripts/build-binary.mjs || { echo "bench: npm run build:binary failed" >&2; exit 1; }
  echo "   ($(( $(date +%s) - start )) s)"
fi
export BRICK_BIN="$PWD/dist/brick" # the fencer harness runs the binary
export BENCH_NO_BUILD=1            # footprint.ts: the binary was just checked

echo "== bench/idle-rss.ts (alone, ${BENCH_IDLE_S:-60} s)"
start=$(date +%s)
if ! timeout 900 node --import tsx bench/idle-rss.ts "${BENCH_IDLE_S:-60}"; then failed+=(bench/idle-rss.ts); fi
echo "   ($(( $(date +%s) - start )) s)"

for f in bench/*.ts; do
  case "$(basename "$f")" in lib.ts|report.ts|idle-rss.ts) continue ;; esac
  echo "== $f"
  start=$(date +%s)
  if ! timeout 600 node --import tsx "$f"; then failed+=("$f"); fi
  echo "   ($(( $(date +%s) - start )) s)"
done
node --import tsx bench/report.ts
echo "bench: $(( $(date +%s) - BENCH_STARTED_AT )) s in all"
if ((${#failed[@]})); then echo "bench: these did not finish: ${failed[*]}" >&2; exit 1; fi
