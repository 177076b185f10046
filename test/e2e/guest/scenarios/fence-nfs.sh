#!/bin/sh
# NFS loss: cut the pool's NFS with an nftables DROP on port 2049. The fencer must reset the guest
# (sysrq b) within fence_after_s + 1 s of the cut; the host times it as "cut" line -> qemu exit.
. /e2e/lib.sh
nfs_up
fencer_up
wait_heartbeats 4
data state-before cat /run/brick/fencer.json
# the cut's time: /proc/uptime read just before nft runs (the bound is then measured generously)
read before _ < /proc/uptime
say cut "uptime=$before nft drop tcp 2049"
cut_nfs
read after _ < /proc/uptime
say cut-done "uptime=$after"
ticker
sleep $(( $(arg fence_after_s) + 30 ))
fail "still running $(( $(arg fence_after_s) + 30 )) s after the NFS cut: not fenced"
