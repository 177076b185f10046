#!/usr/bin/busybox sh
# PID 1 of the end-to-end guest: mount the basics, load modules, run the scenario named on the kernel
# command line (e2e.scenario=NAME), report on the console, power off. A reset (sysrq b, softdog) ends
# qemu instead (-no-reboot), so the host tells a fence from a clean end by the missing "end" line.
/usr/bin/busybox mkdir -p /bbin
/usr/bin/busybox --install -s /bbin
export PATH=/usr/sbin:/usr/bin:/bbin HOME=/root LANG=C
. /e2e/lib.sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /dev/shm
hostname brick-e2e
ip link set lo up
say boot "uptime=$(cut -d' ' -f1 /proc/uptime)" "kernel=$(uname -r)"
scenario=$(arg scenario)
if [ -x "/e2e/scenarios/$scenario.sh" ]; then
  "/e2e/scenarios/$scenario.sh"
  rc=$?
else
  say fail "no scenario named '$scenario'"
  rc=127
fi
say end "rc=$rc"
sync
poweroff -f
