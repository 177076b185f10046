#!/usr/bin/env bash
# `npm run build:rpm`: build dist/brick-<version>-<release>.x86_64.rpm from the single binary with
# rpmbuild, offline. The version comes from package.json; BRICK_RPM_RELEASE overrides the release
# (default 1), BRICK_RPM_OUTDIR the output directory (default dist), BRICK_RPM_PAYLOAD the payload
# compression (default w2.xzdio, which EL8's rpm reads), BRICK_RPM_SPECDIR the directory brick.spec and
# the scriptlet files it includes are taken from (default packaging/rpm; tests build a variant). Builds
# dist/brick first unless BRICK_RPM_USE_BINARY=1 and it exists. Prints the RPM's path.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"
version=$(node -p 'require("./package.json").version')
release=${BRICK_RPM_RELEASE:-1}
case "$version" in *-*) echo "build-rpm: package.json version $version has a '-', which RPM versions may not" >&2; exit 1 ;; esac

if [ "${BRICK_RPM_USE_BINARY:-0}" != 1 ] || [ ! -x dist/brick ]; then
  node scripts/build-binary.mjs
fi

top=$(mktemp -d "${TMPDIR:-/tmp}/brick-rpmbuild.XXXXXX")
trap 'rm -rf "$top"' EXIT
mkdir -p "$top"/{SOURCES,SPECS,BUILD,BUILDROOT,RPMS,SRPMS}
cp dist/brick "$top/SOURCES/brick"
cp packaging/brick.toml packaging/systemd/brick-agent.service packaging/systemd/brick-fencer.service \
   packaging/tmpfiles.d/brick.conf README.md packaging/man/brick.8 \
   packaging/monitoring/brick-alerts.yml packaging/monitoring/brick-grafana.json \
   src/agent-extension/domain/hooking.py "$top/SOURCES/"
cp packaging/bash-completion/brick "$top/SOURCES/brick.bash-completion"
specdir=${BRICK_RPM_SPECDIR:-packaging/rpm}
cp "$specdir/brick.spec" "$top/SPECS/"
cp "$specdir/restart-after-upgrade.sh" "$top/SOURCES/"

rpmbuild -bb --target x86_64 --quiet \
  --define "_topdir $top" \
  --define "brick_version $version" \
  --define "brick_release $release" \
  --define "_binary_payload ${BRICK_RPM_PAYLOAD:-w2.xzdio}" \
  "$top/SPECS/brick.spec" >&2

rpm_file=$(find "$top/RPMS" -name "brick-$version-$release.x86_64.rpm" -print -quit)
[ -n "$rpm_file" ] || { echo "build-rpm: rpmbuild produced no brick-$version-$release.x86_64.rpm" >&2; exit 1; }
outdir=${BRICK_RPM_OUTDIR:-dist}
mkdir -p "$outdir"
tmp_out=$(mktemp "$outdir/.brick-rpm.XXXXXX")
cp "$rpm_file" "$tmp_out"
chmod 0644 "$tmp_out"
mv -f "$tmp_out" "$outdir/brick-$version-$release.x86_64.rpm"
echo "$outdir/brick-$version-$release.x86_64.rpm"
