#!/usr/bin/env bash
# Install what the tests need on a fresh Debian 12 machine (as root). Idempotent: packages already
# present are skipped quickly. Every test prerequisite is listed here; CI has nothing else.
set -euo pipefail

PACKAGES=(
  iproute2 iputils-ping procps psmisc kmod            # network namespaces, bridges, veth, ping
  openvswitch-switch openvswitch-switch-dpdk            # userspace OVS and OVS-DPDK (vhost-user)
  librte-mempool-ring23                                 # DPDK's mempool driver (only recommended): without it OVS
                                                        # cannot make the mbuf pool a vhost-user guest's traffic needs
  libvirt-clients libvirt-daemon libxml2-utils          # virsh -c test:///default, virt-xml-validate
  libvirt-daemon-driver-xen libxen-dev gcc             # ../shared/tools/libxl-check: libvirt's own libxl driver as the Xen oracle
  bindfs fuse3                                          # the frozen-NFS stand-in (FUSE + SIGSTOP)
  python3-fusepy                                        # test/fixtures/faultfs.py: real EIO/ESTALE/EROFS
  python3                                               # the independent XML-RPC client and peer server
  openssh-server openssh-client                         # a real sshd for exec_domr & co.
  openssl                                               # TLS test certificates
  rpm systemd                                           # rpmbuild, systemd-analyze verify
  patchelf lintian                                      # the portable binary's loader/RPATH; .deb checks (build:packages)
  python3-seccomp                                       # ../shared/tools/oldkernel (old kernels' system calls)
  prometheus                                            # promtool test rules (packaging/monitoring)
  man-db bash-completion                                # man -l brick.8, the bash completion
  coreutils util-linux                                  # dd with O_DIRECT, timeout, setsid
  qemu-system-x86 busybox-static cpio xz-utils zstd     # the end-to-end VM
  libvirt-daemon libvirt-daemon-driver-qemu             # real guests: a private libvirtd (qemu:///system)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-test-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-test-deps: ok"
