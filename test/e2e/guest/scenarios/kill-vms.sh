#!/bin/sh
# fencer.action = "kill-vms" on a real NFS client (issue 18). Two exports of the guest's own kernel
# NFS server, mounted hard over two server addresses so each has its own RPC client and TCP socket:
#   pool A  127.0.0.2:/srv/pool  -> /mnt/pool   (cut in this scenario)
#   pool B  127.0.0.1:/srv/pool2 -> /mnt/pool2  (stays healthy)
# e2e.case picks what holds pool A when it is cut:
#   reader    readers with the file open (O_DIRECT reads); cut = the server refuses (RST), so no
#             request can sit in a socket: brick must kill them and SPARE the guest. The export is
#             hashed server-side, the server restored, and after >= 60 s the hash must be unchanged.
#   odirect   a dd oflag=direct writer (QEMU cache=none); cut = DROP: WRITE RPCs stay queued, brick
#             must reset the guest (qemu exits).
#   buffered  a buffered dd writer; cut = DROP: dirty pages and WRITE RPCs, brick must reset.
#   late      NO fencer: kill -9 an O_DIRECT writer blocked on a DROP cut, restore the server, and
#             hash: shows whether a killed writer's write still lands (for the README; not in npm test).
. /e2e/lib.sh
CASE=$(arg case)
PI=$(arg probe_interval_s); PT=$(arg probe_timeout_s); FA=$(arg fence_after_s); WD=$(arg watchdog_timeout_s); KT=$(arg kill_timeout_s)

up() { read u _ < /proc/uptime; echo "$u"; }
# alive PID: running and not a zombie (killed children of this shell stay zombies until reaped)
alive() { [ -e "/proc/$1" ] && ! grep -q '^[0-9]* (.*) Z ' "/proc/$1/stat" 2>/dev/null; }
# hash of pool A's data files on the SERVER side (the heartbeat files are brick's own and change)
hash_a() { ( cd /srv/pool && sha256sum disk.img spare.img 2>/dev/null ) | sha256sum | cut -c1-16; }
facts() {
  data "$1-tasks" sh -c 'for c in /sys/kernel/debug/sunrpc/rpc_clnt/*; do echo "clnt $(basename $c) $(grep -h "^addr" $c/xprt/info 2>/dev/null): $(cat $c/tasks | head -n 20 | tr "\n" "|")"; done'
  data "$1-bdi" cat "/sys/kernel/debug/bdi/$DEV_A/stats"
  data "$1-tcp" sh -c "grep -i ':0801 ' /proc/net/tcp | head -n 8"
  data "$1-mountstats" sh -c "sed -n '/mounted on \/mnt\/pool with/,/^device/p' /proc/self/mountstats | grep -E 'xprt:|WRITE:|COMMIT:|READ:|GETATTR:'"
  data "$1-meminfo" sh -c "grep -E '^(Dirty|Writeback|WritebackTmp|NFS_Unstable):' /proc/meminfo"
}

mods nfsd nfsv4 nfsv3 nf_tables nft_reject_inet
mkdir -p /srv/pool /srv/pool2 /mnt/pool /mnt/pool2 /var/lib/nfs/rpc_pipefs /var/lib/nfs/v4recovery /var/lib/nfs/sm /run/rpcbind /proc/fs/nfsd /sys/kernel/debug
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs -o size=96m tmpfs /srv/pool
mount -t tmpfs -o size=16m tmpfs /srv/pool2
must mount -t nfsd nfsd /proc/fs/nfsd
mount -t rpc_pipefs rpc_pipefs /var/lib/nfs/rpc_pipefs 2>/dev/null
printf '/srv/pool 127.0.0.0/8(rw,sync,no_root_squash,no_subtree_check,insecure,fsid=1)\n/srv/pool2 127.0.0.0/8(rw,sync,no_root_squash,no_subtree_check,insecure,fsid=2)\n' > /etc/exports
: > /var/lib/nfs/etab
must rpcbind -w
must exportfs -ra
must rpc.mountd
must rpc.nfsd --grace-time 10 --lease-time 10 4
dd if=/dev/urandom of=/srv/pool/disk.img bs=1M count=16 status=none
dd if=/dev/urandom of=/srv/pool/spare.img bs=1M count=1 status=none
OPTS="vers=3,proto=tcp,nolock,hard,noac,lookupcache=none,timeo=20,retrans=2"
must mount.nfs 127.0.0.2:/srv/pool /mnt/pool -o "$OPTS"
must mount.nfs 127.0.0.1:/srv/pool2 /mnt/pool2 -o "$OPTS"
DEV_A=$(grep ' /mnt/pool ' /proc/self/mountinfo | cut -d' ' -f3)
say nfs-up "A dev $DEV_A; $(grep -E ' /mnt/pool2? ' /proc/mounts | tr '\n' ';')"

if [ "$CASE" != late ]; then
  mkdir -p /etc/brick /run/brick /var/lib/brick
  must modprobe softdog soft_margin="$WD"
  cat > /etc/brick/fencer.toml <<TOML
[server]
listen = "127.0.0.1:8898"
[fencer]
action = "kill-vms"
kill_timeout_s = $KT
probe_interval_s = $PI
probe_timeout_s = $PT
fence_after_s = $FA
watchdog_device = "/dev/watchdog"
watchdog_timeout_s = $WD
sysrq_trigger = "/proc/sysrq-trigger"
state_dir = "/run/brick"
marker_dir = "/var/lib/brick"
host_id = "e2e"
vm_query = "none"
[[fencer.pool]]
path = "/mnt/pool"
heartbeat = "ovm"
fence_when = "always"
[[fencer.pool]]
path = "/mnt/pool2"
heartbeat = "ovm"
fence_when = "always"
TOML
  must brick check-config --config /etc/brick/fencer.toml
  brick fencer --config /etc/brick/fencer.toml > /dev/console 2>&1 &
  FENCER=$!
  say fencer-started "pid=$FENCER action=kill-vms kill_timeout_s=$KT"
  HB=/srv/pool2/.hb-e2e
  wait_heartbeats 3
  i=0
  until grep -q '"mount":{"dev":"'"$DEV_A"'"' /run/brick/fencer.json 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 100 ] && fail "kill-vms never recorded pool A's mount: $(cat /run/brick/fencer.json)"
    usleep 200000
  done
fi

# ---- the holders of pool A ----
case "$CASE" in
  reader)
    # (light: under TCG a guest busy forking makes the probes themselves late)
    sh -c 'exec 3< /mnt/pool/disk.img; while :; do dd bs=4096 count=1 iflag=direct status=none <&3 > /dev/null; sleep 2; done' &
    H1=$!
    sh -c 'exec 4< /mnt/pool/spare.img; while :; do sleep 1; done' &
    H2=$!
    HOLDERS="$H1 $H2" ;;
  odirect|late)
    dd if=/dev/zero of=/mnt/pool/disk.img bs=64k count=100000 oflag=direct conv=notrunc status=none &
    HOLDERS=$! ;;
  buffered)
    dd if=/dev/zero of=/mnt/pool/disk.img bs=64k count=100000 conv=notrunc status=none &
    HOLDERS=$! ;;
  *) fail "unknown e2e.case '$CASE'" ;;
esac
# pool B: a writer that must keep running
sh -c 'i=0; while :; do i=$((i + 1)); echo $i > /mnt/pool2/alive; sleep 1; done' &
KEEP=$!
sleep 2
for h in $HOLDERS; do alive "$h" || fail "holder $h exited before the cut"; done
H_BEFORE=$(hash_a)
data hash-before-cut echo "$H_BEFORE"

# ---- the cut ----
CUT=$(arg cut)
if [ "$CUT" = reject ]; then
  # the server is gone: every packet to it answered with a reset (no request can wait in a socket)
  RULE="tcp dport 2049 ip daddr 127.0.0.2 reject with tcp reset"
else
  # a network partition: packets vanish, requests wait in the client
  RULE="ip daddr 127.0.0.2 tcp dport 2049 drop; ip saddr 127.0.0.2 tcp sport 2049 drop;"
fi
u=$(up)
nft -f - <<NFT || fail "nft cut"
table inet e2e_cut {
  chain out { type filter hook output priority -10; policy accept; $RULE }
}
NFT
say cut "uptime=$u case=$CASE rule=$RULE"
ticker

if [ "$CASE" = late ]; then
  sleep 5
  facts blocked
  for h in $HOLDERS; do kill -9 "$h"; done
  i=0; while alive "$HOLDERS"; do i=$((i + 1)); [ $i -gt 100 ] && fail "the writer did not die"; usleep 100000; done
  say holders-gone "uptime=$(up)"
  sleep 1
  facts after-kill
  H_CUT=$(hash_a)
  nft delete table inet e2e_cut
  say restored "uptime=$(up)"
  sleep 60
  facts restored-60s
  H_AFTER=$(hash_a)
  say late-result "before=$H_CUT after=$H_AFTER changed=$([ "$H_CUT" = "$H_AFTER" ] && echo no || echo yes)"
  kill $TICKER
  exit 0
fi

# every holder gone (the kill), seen from here
i=0
while :; do
  any=""
  for h in $HOLDERS; do alive "$h" && any=1; done
  [ -z "$any" ] && break
  i=$((i + 1)); [ $i -gt $(( (FA + KT + 20) * 10 )) ] && fail "holders $HOLDERS still alive $((FA + KT + 20)) s after the cut"
  usleep 100000
done
say holders-gone "uptime=$(up)"
facts after-kill
alive "$KEEP" || fail "the writer on the healthy pool B died"

# spared or reset? (a reset ends the guest here: qemu exits)
i=0
until tr '{' '\n' < /run/brick/fencer.json | grep -q '"phase":"fenced"'; do
  i=$((i + 1)); [ $i -gt $(( (KT + 10) * 10 )) ] && fail "neither spared nor reset $((KT + 10)) s after the holders died: $(cat /run/brick/fencer.json)"
  usleep 100000
done
say spared "uptime=$(up)"
data state-spared cat /run/brick/fencer.json
ls /var/lib/brick/fence-marker.json 2>/dev/null && fail "a fence marker was written although the guest was spared"
HB_B1=$(cat /srv/pool2/.hb-e2e)
H_CUT=$(hash_a)
data hash-at-spare echo "$H_CUT"
[ "$H_CUT" = "$H_BEFORE" ] || say note "pool A changed between the cut and the spare (writes the server got before the cut): $H_BEFORE -> $H_CUT"
sleep 3
HB_B2=$(cat /srv/pool2/.hb-e2e)
[ "$HB_B1" != "$HB_B2" ] || fail "no heartbeat on the healthy pool B in 3 s after the spare ($HB_B1)"
say ok "heartbeats-on-B $HB_B1 -> $HB_B2"

nft delete table inet e2e_cut
say restored "uptime=$(up)"
sleep 62
H_AFTER=$(hash_a)
data hash-after-restore echo "$H_AFTER"
[ "$H_AFTER" = "$H_CUT" ] || fail "pool A changed on the server after the restore: $H_CUT -> $H_AFTER (a late write)"
say ok "no-late-write $H_CUT"
alive "$KEEP" || fail "the writer on the healthy pool B died"
tr '{' '\n' < /run/brick/fencer.json | grep -q '"phase":"fenced"' && fail "pool A still fenced 60 s after the server came back"
say ok "pool-a-verified-again"
data state-end cat /run/brick/fencer.json
kill $TICKER $KEEP 2>/dev/null
kill "$FENCER"
wait "$FENCER" 2>/dev/null
