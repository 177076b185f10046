#!/usr/bin/env bash
# `npm run bench`: run every benchmark (one script per area), then write bench/RESULTS.md.
# Benchmarks are not tests: they print figures and never fail on a timing.
#   1. build dist/brick when it is missing or older than any source (the footprint figures and the
#      fencer bench measure the binary, not tsx);
#   2. start bench/idle-rss.ts in the background: `brick serve` and `brick fencer` idle for
#      BENCH_IDLE_S (600) seconds while the other benches run, so the 10 minutes overlap them;
#   3. run every other bench/*.ts, one after another (each under a 600 s timeout);
#   4. wait for the idle sample, then render bench/RESULTS.md from bench/out/*.json.
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

echo "== bench/idle-rss.ts (background, ${BENCH_IDLE_S:-600} s)"
node --import tsx bench/idle-rss.ts "${BENCH_IDLE_S:-600}" &
idle=$!
trap 'kill $idle 2>/dev/null' EXIT

for f in bench/*.ts; do
  case "$(basename "$f")" in lib.ts|report.ts|idle-rss.ts) continue ;; esac
  echo "== $f"
  start=$(date +%s)
  if ! timeout 600 node --import tsx "$f"; then failed+=("$f"); fi
  echo "   ($(( $(date +%s) - start )) s)"
done
echo "== waiting for bench/idle-rss.ts ($(( $(date +%s) - BENCH_STARTED_AT )) s into the run)"
if ! wait $idle; then failed+=(bench/idle-rss.ts); fi
trap - EXIT
node --import tsx bench/report.ts
echo "bench: $(( $(date +%s) - BENCH_STARTED_AT )) s in all"
if ((${#failed[@]})); then echo "bench: these did not finish: ${failed[*]}" >&2; exit 1; fi
