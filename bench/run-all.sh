#!/usr/bin/env bash
# `npm run bench`: run every benchmark (one script per area), then write bench/RESULTS.md.
# Benchmarks are not tests: they print figures and never fail on a timing.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
bash scripts/install-test-deps.sh
mkdir -p bench/out
failed=()
for f in bench/*.ts; do
  case "$(basename "$f")" in lib.ts|report.ts) continue ;; esac
  echo "== $f"
  start=$(date +%s)
  if ! timeout 600 node --import tsx "$f"; then failed+=("$f"); fi
  echo "   ($(( $(date +%s) - start )) s)"
done
node --import tsx bench/report.ts
if ((${#failed[@]})); then echo "bench: these did not finish: ${failed[*]}" >&2; exit 1; fi
