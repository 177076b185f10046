#!/bin/sh
# What the guest's kernel shows of writes pending to a dead NFS server (issue 18, item "find out what
# the kernel offers"). No fencer: this measures the kernel, for the README and for kill-vms' rules.
# Run by hand: node --import tsx bench/kill-vms.ts explore  (the console log holds the "data" lines)
#   1. a probe-like write (dd oflag=dsync conv=fsync) on a healthy mount: how long its inode stays on
#      the bdi's b_dirty list with 0 kB dirty (the "metadata-only dirty inode").
#   2. an O_DIRECT writer and a buffered writer on one export, a DROP cut, kill -9 both; the kernel's
#      facts (sunrpc tasks, bdi, tcp tx_queue, mountstats, vmstat after stat_refresh) after the kill,
#      after `ss -K` (e2e.action=ssk), after `umount -f` of a bind-held mount (e2e.action=umountf);
#      then the server restored, 60 s, and each file's hash on the server: did a killed writer's
#      write land late?
. /e2e/lib.sh
ACTION=$(arg action)
up() { read u _ < /proc/uptime; echo "$u"; }
alive() { [ -e "/proc/$1" ] && ! grep -q '^[0-9]* (.*) Z ' "/proc/$1/stat" 2>/dev/null; }
hash_f() { ( cd /srv/pool && sha256sum "$1" 2>/dev/null ) | cut -c1-16; }
vm_exact() { echo 1 > /proc/sys/vm/stat_refresh 2>/dev/null; grep -E '^nr_(dirty|writeback|writeback_temp) ' /proc/vmstat | tr '\n' ' '; }
facts() {
  data "$1-tasks" sh -c 'for c in /sys/kernel/debug/sunrpc/rpc_clnt/*; do echo "clnt $(basename $c) $(grep -h "^addr" $c/xprt/info 2>/dev/null): $(cat $c/tasks | head -n 12 | tr "\n" "|")"; done'
  data "$1-bdi" sh -c "grep -E 'Bdi(Writeback|Reclaimable|Dirtied|Written)|b_' /sys/kernel/debug/bdi/$DEV_A/stats | tr -s ' '"
  data "$1-tcp" sh -c "grep -i ':0801 ' /proc/net/tcp | head -n 6"
  data "$1-ss" ss -tni dst 127.0.0.2
  data "$1-mountstats" sh -c "sed -n '/mounted on \/mnt\/pool with/,/^device/p' /proc/self/mountstats | grep -E 'xprt:|WRITE:|COMMIT:'"
  data "$1-vmstat" vm_exact
  data "$1-meminfo" sh -c "grep -E '^(Dirty|Writeback):' /proc/meminfo | tr -s ' '"
}

mods nfsd nfsv4 nfsv3 nf_tables inet_diag tcp_diag
mkdir -p /srv/pool /mnt/pool /mnt/hold /var/lib/nfs/rpc_pipefs /var/lib/nfs/v4recovery /var/lib/nfs/sm /run/rpcbind /proc/fs/nfsd /sys/kernel/debug
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs -o size=200m tmpfs /srv/pool
must mount -t nfsd nfsd /proc/fs/nfsd
mount -t rpc_pipefs rpc_pipefs /var/lib/nfs/rpc_pipefs 2>/dev/null
printf '/srv/pool 127.0.0.0/8(rw,sync,no_root_squash,no_subtree_check,insecure,fsid=1)\n' > /etc/exports
: > /var/lib/nfs/etab
must rpcbind -w
must exportfs -ra
must rpc.mountd
must rpc.nfsd --grace-time 10 --lease-time 10 4
must mount.nfs 127.0.0.2:/srv/pool /mnt/pool -o "vers=3,proto=tcp,nolock,hard,noac,lookupcache=none,timeo=20,retrans=2"
DEV_A=$(grep ' /mnt/pool ' /proc/self/mountinfo | cut -d' ' -f3)
say nfs-up "dev $DEV_A"
data config sh -c "grep -E 'INET_DIAG_DESTROY|SUNRPC_DEBUG' /boot/config-* 2>/dev/null; sysctl vm.dirty_expire_centisecs vm.dirty_writeback_centisecs; nproc"

# ---- 1. a probe-like write on the healthy mount (e2e.part1=no skips it) ----
facts idle
if [ "$(arg part1)" != no ]; then
echo hb | dd of=/mnt/pool/hb.tmp bs=4096 oflag=dsync conv=fsync status=none
mv -f /mnt/pool/hb.tmp /mnt/pool/hb
t0=$(up)
facts probe-write
i=0
while grep -q '^b_dirty:[[:space:]]*[1-9]' /sys/kernel/debug/bdi/$DEV_A/stats && [ $i -lt 90 ]; do sleep 1; i=$((i + 1)); done
say probe-inode-dirty-for "$(awk -v a="$t0" -v b="$(up)" 'BEGIN { printf "%.1f", b - a }') s"
facts probe-clean
fi

# ---- 2. writers, cut, kill ----
# umountf: a second mount of the same superblock (made while the server answers) keeps kill_sb, and
# its sync on the dead server, from running when /mnt/pool itself is unmounted
[ "$ACTION" = umountf ] && must mount --bind /mnt/pool /mnt/hold
dd if=/dev/urandom of=/srv/pool/d.img bs=1M count=32 status=none
dd if=/dev/urandom of=/srv/pool/b.img bs=1M count=32 status=none
# slow feeders (64 KiB every 0.1 s) through FIFOs, so each dd is a simple background command ($! is dd)
mkfifo /tmp/fd /tmp/fb
sh -c 'i=0; while [ $i -lt 400 ]; do head -c 65536 /dev/zero; usleep 100000; i=$((i + 1)); done' > /tmp/fd &
sh -c 'i=0; while [ $i -lt 400 ]; do head -c 65536 /dev/zero; usleep 100000; i=$((i + 1)); done' > /tmp/fb &
/usr/bin/dd if=/tmp/fd of=/mnt/pool/d.img bs=64k iflag=fullblock oflag=direct conv=notrunc status=none &
WD=$!
/usr/bin/dd if=/tmp/fb of=/mnt/pool/b.img bs=64k iflag=fullblock conv=notrunc status=none &
WB=$!
sleep 4
data writers sh -c "cat /proc/$WD/cmdline /proc/$WB/cmdline | tr '\\0' ' '; grep -h wchar /proc/$WD/io /proc/$WB/io | tr '\\n' ' '"
facts writing
nft -f - <<NFT || fail "nft cut"
table inet e2e_cut {
  chain out { type filter hook output priority -10; policy accept; ip daddr 127.0.0.2 tcp dport 2049 drop; ip saddr 127.0.0.2 tcp sport 2049 drop; }
}
NFT
say cut "uptime=$(up)"
sleep 5
facts blocked
kill -9 $WD $WB
t0=$(up)
# the O_DIRECT writer dies at once; the buffered one may not (measured: it did not, in 20 s): where it waits
while alive $WD || alive $WB; do
  awk -v a="$t0" -v b="$(up)" 'BEGIN { exit !(b - a > 20) }' && break
  usleep 100000
done
for h in $WD $WB; do
  if alive $h; then data stuck-writer sh -c "echo pid $h $(tr '\0' ' ' < /proc/$h/cmdline); grep -E '^(State|SigPnd|ShdPnd):' /proc/$h/status; echo wchan \$(cat /proc/$h/wchan); cat /proc/$h/stack"
  else say writer-gone "pid $h"; fi
done
say holders-gone "uptime=$(up) (or 20 s passed)"
sleep 2
facts killed
HD_CUT=$(hash_f d.img); HB_CUT=$(hash_f b.img)
case "$ACTION" in
  ssk)
    data ssk ss -K -t -n dst 127.0.0.2 dport = :2049
    say ssk-rc "$?"
    sleep 2
    facts after-ssk ;;
  umountf)
    data ssk ss -K -t -n dst 127.0.0.2 dport = :2049
    timeout 20 umount -f /mnt/pool; say umountf-rc "$?"
    sleep 2
    facts after-umountf
    data mounts sh -c "grep nfs /proc/mounts" ;;
esac
nft delete table inet e2e_cut
say restored "uptime=$(up)"
i=0
while [ $i -lt 12 ]; do
  sleep 5; i=$((i + 1))
  data "restored-$((i * 5))s-hash" echo "d $(hash_f d.img) b $(hash_f b.img)"
done
facts restored-60s
HD=$(hash_f d.img); HB=$(hash_f b.img)
say late-result "action=${ACTION:-none} odirect: $HD_CUT -> $HD changed=$([ "$HD_CUT" = "$HD" ] && echo no || echo yes); buffered: $HB_CUT -> $HB changed=$([ "$HB_CUT" = "$HB" ] && echo no || echo yes)"
