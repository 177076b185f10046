#!/bin/sh
# The guest boots, loads every module the scenarios use, and brick runs.
. /e2e/lib.sh
mods crc32c_generic
for m in 8021q bonding bridge veth dummy softdog nf_tables sch_netem sch_prio cls_u32 nfs nfsv4 nfsd; do check "modprobe-$m" modprobe "$m"; done
data brick-version brick --version
nfs_up
check nfs-write shx 'echo hello > /mnt/pool/x && cat /srv/pool/x'
