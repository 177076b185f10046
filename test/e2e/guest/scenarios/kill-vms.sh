#!/bin/sh
# fencer.action = "kill-vms" on a real NFS client (issue 18; host side: test/e2e/kill-vms.test.ts).
# Two exports of the guest's own kernel NFS server, mounted hard over two server addresses so each
# has its own RPC client and TCP socket:
#   pool A  127.0.0.2:/srv/pool  -> /mnt/pool   (cut: nft DROP both ways, a network partition)
#   pool B  127.0.0.1:/srv/pool2 -> /mnt/pool2  (stays healthy; a writer on it must live on)
# e2e.case picks what holds pool A when it is cut:
#   idle      an O_DIRECT reader (dd iflag=direct every 2 s), a file held open read-only, and a
#             writer that wrote with O_DIRECT before the cut and now sits idle with its file open
#             read-write (an idle VM with cache=none). The cut is timed just after a probe of pool A
#             landed, so brick's own probe holds no write either. brick must kill them and SPARE the
#             guest; pool B's heartbeats go on; the export is hashed on the server, the server
#             restored, and the hash must not change for >= 60 s and until pool A is verified again.
#   odirect   a dd oflag=direct writer (QEMU cache=none) writing when the cut comes: its WRITE stays
#             queued in the RPC client after the kill, so brick must reset the guest (qemu exits).
#   buffered  a buffered dd writer: measured, it does not even die from SIGKILL (it waits for page
#             writeback, uninterruptibly; "stuck-holder" shows where): reset.
# Every wait polls a state with a generous limit (a TCG guest on a loaded 2-core host is slow).
. /e2e/lib.sh
CASE=$(arg case)
PI=$(arg probe_interval_s); PT=$(arg probe_timeout_s); FA=$(arg fence_after_s); WD=$(arg watchdog_timeout_s); KT=$(arg kill_timeout_s)

up() { read u _ < /proc/uptime; echo "$u"; }
# alive PID: running and not a zombie (killed children of this shell stay zombies until reaped)
alive() { [ -e "/proc/$1" ] && ! grep -q '^[0-9]* (.*) Z ' "/proc/$1/stat" 2>/dev/null; }
# pool A's data, hashed on the SERVER side (brick's heartbeat files are its own and change)
hash_a() { ( cd /srv/pool && ls -1 | grep -v '^\.hb-' | sort | while read f; do [ -f "$f" ] && sha256sum "$f"; done ) | sha256sum | cut -c1-16; }
phase_a() { tr '{' '\n' < /run/brick/fencer.json 2>/dev/null | sed -n 's/.*"phase":"\([a-z]*\)".*/\1/p' | head -n 1; }
state_a() { tr '{' '\n' < /run/brick/fencer.json 2>/dev/null | grep '"path":"/mnt/pool"' | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p' | head -n 1; }
facts() {
  data "$1-tasks" sh -c 'for c in /sys/kernel/debug/sunrpc/rpc_clnt/*; do t=$(head -n 8 $c/tasks | tr "\n" "|"); [ -n "$t" ] && echo "clnt $(basename $c) $(sed -n "s/^addr: *//p" $c/xprt/info): $t"; done'
  data "$1-bdi" sh -c "grep -E 'Bdi(Writeback|Reclaimable)|b_dirty:' /sys/kernel/debug/bdi/$DEV_A/stats | tr -s ' ' | tr '\n' ' '"
  data "$1-tcp" sh -c "ss -tnH dst 127.0.0.2 | tr -s ' '"
}

mods nfsd nfsv4 nfsv3 nf_tables inet_diag tcp_diag
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
dd if=/dev/urandom of=/srv/pool/disk.img bs=1M count=24 status=none
dd if=/dev/urandom of=/srv/pool/ro.img bs=1M count=1 status=none
dd if=/dev/urandom of=/srv/pool/idle.img bs=1M count=1 status=none
OPTS="vers=3,proto=tcp,nolock,hard,noac,lookupcache=none,timeo=20,retrans=2"
must mount.nfs 127.0.0.2:/srv/pool /mnt/pool -o "$OPTS"
must mount.nfs 127.0.0.1:/srv/pool2 /mnt/pool2 -o "$OPTS"
DEV_A=$(grep ' /mnt/pool ' /proc/self/mountinfo | cut -d' ' -f3)
say nfs-up "A dev $DEV_A; $(grep -E ' /mnt/pool2? ' /proc/mounts | tr '\n' ';')"

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
dead_host_window_s = $(arg dead_host_window_s)
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
wait_heartbeats 2
# pool A armed, and its mount recorded by kill-vms (it needs that record to act)
i=0
until [ "$(state_a)" = healthy ] && grep -q '"mount":{"dev":"'"$DEV_A"'"' /run/brick/fencer.json 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 600 ] && fail "pool A not healthy with its mount recorded after 120 s: $(cat /run/brick/fencer.json)"
  kill -0 "$FENCER" 2>/dev/null || fail "brick fencer exited"
  usleep 200000
done
say armed "pool A healthy, mount $DEV_A recorded"

# ---- the holders of pool A ----
case "$CASE" in
  idle)
    sh -c 'exec 3< /mnt/pool/disk.img; while :; do dd bs=4096 count=1 iflag=direct status=none <&3 > /dev/null; sleep 2; done' &
    H1=$!
    sh -c 'exec 4< /mnt/pool/ro.img; exec sleep 100000' &
    H2=$!
    sh -c 'dd if=/dev/zero of=/mnt/pool/idle.img bs=64k count=4 oflag=direct conv=notrunc status=none; exec 5<> /mnt/pool/idle.img; exec sleep 100000' &
    H3=$!
    HOLDERS="$H1 $H2 $H3" ;;
  odirect|buffered)
    # a slow feeder (64 KiB every 0.1 s) through a FIFO; /usr/bin/dd, not lib.sh's dd function (whose
    # subshell $! would name), so $! is the writer
    # and it is writing, not finished, whenever the cut comes
    mkfifo /tmp/feed
    sh -c 'i=0; while [ $i -lt 3000 ]; do head -c 65536 /dev/zero; usleep 100000; i=$((i + 1)); done' > /tmp/feed &
    FEEDER=$!
    if [ "$CASE" = odirect ]; then FLAG=oflag=direct; else FLAG=; fi
    /usr/bin/dd if=/tmp/feed of=/mnt/pool/disk.img bs=64k iflag=fullblock $FLAG conv=notrunc status=none &
    HOLDERS=$! ;;
  *) fail "unknown e2e.case '$CASE'" ;;
esac
# pool B: a writer that must keep running
sh -c 'i=0; while :; do i=$((i + 1)); echo $i > /mnt/pool2/alive; sleep 3; done' &
KEEP=$!
sleep 3
for h in $HOLDERS; do alive "$h" || fail "holder $h exited before the cut"; done
if [ "$CASE" != idle ]; then
  # the writer's bytes are reaching the server
  s0=$(sha256sum /srv/pool/disk.img | cut -c1-16); i=0
  while [ "$(sha256sum /srv/pool/disk.img | cut -c1-16)" = "$s0" ]; do
    i=$((i + 1)); [ $i -gt 60 ] && fail "the $CASE writer wrote nothing the server saw in 30 s"; usleep 500000
  done
fi
H_BEFORE=$(hash_a)
data hash-before-cut echo "$H_BEFORE"

# ---- the cut ----
if [ "$CASE" = idle ]; then
  # just after a probe of pool A landed (its heartbeat file changed on the server): what is left of
  # that probe is its read-back (a READ), and the next one starts probe_interval_s later
  hb0=$(cat /srv/pool/.hb-e2e 2>/dev/null); i=0
  while [ "$(cat /srv/pool/.hb-e2e 2>/dev/null)" = "$hb0" ]; do
    i=$((i + 1)); [ $i -gt 1200 ] && fail "no probe of pool A landed in 60 s"; usleep 50000
  done
fi
u=$(up)
nft -f - <<NFT || fail "nft cut"
table inet e2e_cut {
  chain out { type filter hook output priority -10; policy accept; ip daddr 127.0.0.2 tcp dport 2049 drop; ip saddr 127.0.0.2 tcp sport 2049 drop; }
}
NFT
say cut "uptime=$u case=$CASE"
# the reset cases: a line every 0.25 s shows the guest's last moment (not in the idle case: under
# TCG its 4 forks a second slow down the fencer's /proc scans)
[ "$CASE" = idle ] || ticker

# every holder gone (the kill), seen from here; a reset ends the guest anywhere below (qemu exits)
i=0; told=""
while :; do
  any=""
  for h in $HOLDERS; do alive "$h" && any=1; done
  [ -z "$any" ] && break
  i=$((i + 1)); [ $i -gt $(( (FA + KT + 60) * 10 )) ] && fail "holders $HOLDERS still alive $((FA + KT + 60)) s after the cut: $(cat /run/brick/fencer.json)"
  # a holder still alive 10 s after brick began killing: where it waits in the kernel
  if [ -z "$told" ] && [ "$(phase_a)" = killing ] && awk -v a="$u" -v b="$(up)" -v s=$((FA + 10)) 'BEGIN { exit !(b - a > s) }'; then
    told=1
    for h in $HOLDERS; do alive "$h" && data stuck-holder sh -c "echo pid $h; grep -E '^(State|SigPnd|ShdPnd):' /proc/$h/status; echo wchan \$(cat /proc/$h/wchan); cat /proc/$h/stack"; done
  fi
  usleep 100000
done
say holders-gone "uptime=$(up)"
facts after-kill
alive "$KEEP" || fail "the writer on the healthy pool B died"

# spared (phase fenced) or reset
i=0
until [ "$(phase_a)" = fenced ]; do
  i=$((i + 1)); [ $i -gt $(( (KT + 30) * 10 )) ] && fail "neither spared nor reset $((KT + 30)) s after the holders died: $(cat /run/brick/fencer.json)"
  usleep 100000
done
say spared "uptime=$(up)"
data state-spared cat /run/brick/fencer.json
[ -e /var/lib/brick/fence-marker.json ] && fail "a fence marker was written although the guest was spared"
H_CUT=$(hash_a)
data hash-at-spare echo "$H_CUT"
[ "$H_CUT" = "$H_BEFORE" ] || say note "pool A changed between the hash before the cut and the spare: $H_BEFORE -> $H_CUT"
HB_B1=$(cat /srv/pool2/.hb-e2e); i=0
while [ "$(cat /srv/pool2/.hb-e2e)" = "$HB_B1" ]; do
  i=$((i + 1)); [ $i -gt $(( (PI + PT) * 2 * 10 )) ] && fail "no heartbeat on the healthy pool B in $(( (PI + PT) * 2 )) s after the spare ($HB_B1)"
  usleep 100000
done
say ok "heartbeats-on-B $HB_B1 -> $(cat /srv/pool2/.hb-e2e)"

nft delete table inet e2e_cut
R=$(up)
say restored "uptime=$R"
# >= 60 s after the restore AND until pool A is verified again (its RPC client has reconnected: any
# WRITE still queued would have been resent by then), pool A's data must not change on the server
i=0; verified=""
while :; do
  h=$(hash_a)
  [ "$h" = "$H_CUT" ] || fail "pool A changed on the server $(awk -v a="$R" -v b="$(up)" 'BEGIN { printf "%.0f", b - a }') s after the restore: $H_CUT -> $h (a late write)"
  [ -z "$verified" ] && [ "$(phase_a)" = idle ] && [ "$(state_a)" = healthy ] && verified=$(up) && say verified-again "uptime=$verified"
  past=$(awk -v a="$R" -v b="$(up)" 'BEGIN { print (b - a >= 62) ? 1 : 0 }')
  [ "$past" = 1 ] && [ -n "$verified" ] && break
  i=$((i + 1)); [ $i -gt 300 ] && fail "pool A not verified again 300 s after the restore: $(cat /run/brick/fencer.json)"
  sleep 1
done
say ok "no-late-write $H_CUT for $(awk -v a="$R" -v b="$(up)" 'BEGIN { printf "%.0f", b - a }') s after the restore"
alive "$KEEP" || fail "the writer on the healthy pool B died"
data state-end cat /run/brick/fencer.json
kill $KEEP 2>/dev/null
kill "$FENCER"
wait "$FENCER" 2>/dev/null
