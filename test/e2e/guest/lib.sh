# Shared by the guest scenarios. Every line for the host starts with "E2E <epoch seconds> <event>".
# busybox sh runs its own applets before PATH (FEATURE_PREFER_APPLETS): these functions make the
# scripts use the real programs copied into the guest instead.
for p in ip tc bridge ss date dd stat timeout sync setsid mount umount sysctl; do
  for d in /usr/sbin /usr/bin; do [ -x $d/$p ] && eval "$p() { $d/$p \"\$@\"; }" && break; done
done
for p in modprobe insmod rmmod lsmod depmod modinfo; do eval "$p() { /usr/sbin/$p \"\$@\"; }"; done
now() { date +%s.%N | cut -c1-14; }
say() { ev=$1; shift; printf '\nE2E %s %s %s\n' "$(now)" "$ev" "$*"; }
fail() { say fail "$*"; exit 1; }
# arg NAME: the value of e2e.NAME=... on the kernel command line
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^e2e\.$1=//p" | head -n1; }
# check NAME CMD...: run CMD, report ok/fail with its output
check() {
  n=$1; shift
  if out=$("$@" 2>&1); then say ok "$n"; else say fail "$n: $* -> $(echo "$out" | tr '\n' ' ' | cut -c1-400)"; fi
}
# data NAME CMD...: report CMD's output on one line (JSON from `ip -j` stays one line)
data() { n=$1; shift; out=$("$@" 2>&1 | tr '\n' ' '); printf '\nE2E %s data %s %s\n' "$(now)" "$n" "$out"; }
# must CMD...: run CMD; on failure report its output and the kernel's last words, and stop the scenario
must() { out=$("$@" 2>&1) || fail "$*: $(echo "$out" | tr '\n' ' ' | cut -c1-400) dmesg: $(dmesg | tail -n 4 | tr '\n' ' ')"; }
mods() { for m in "$@"; do modprobe "$m" || fail "modprobe $m: $(dmesg | tail -n 5 | tr "\n" " ")"; done; }

# The kernel NFS server exports /srv/pool (a tmpfs) to localhost; it is mounted hard at /mnt/pool.
nfs_up() {
  mods nfsd nfsv4 nfsv3 nf_tables
  mkdir -p /srv/pool /mnt/pool /var/lib/nfs/rpc_pipefs /var/lib/nfs/v4recovery /var/lib/nfs/sm /run/rpcbind /proc/fs/nfsd
  mount -t tmpfs -o size=64m tmpfs /srv/pool
  must mount -t nfsd nfsd /proc/fs/nfsd
  mount -t rpc_pipefs rpc_pipefs /var/lib/nfs/rpc_pipefs 2>/dev/null
  echo "/srv/pool 127.0.0.1(rw,sync,no_root_squash,no_subtree_check,insecure,fsid=0)" > /etc/exports
  : > /var/lib/nfs/etab
  must rpcbind -w
  must exportfs -ra
  must rpc.mountd
  must rpc.nfsd --grace-time 10 --lease-time 10 4
  # soft-failing NFS would hide a hang from the fencer: this is the hard mount a host has
  # NFSv3 (OVM3's and most CloudStack KVM pools'), no NLM locks: no server grace period to wait out.
  # noac + lookupcache=none: every probe makes the same NFS calls however far apart probes are, so
  # the netem scenario's count of calls per probe (made while healthy) holds when probes slow down.
  must mount.nfs 127.0.0.1:/srv/pool /mnt/pool -o "vers=3,proto=tcp,nolock,hard,noac,lookupcache=none,timeo=${1:-20},retrans=2"
  say nfs-up "$(grep /mnt/pool /proc/mounts)"
}

# cut_nfs: drop NFS traffic both ways (the server's port 2049)
cut_nfs() {
  nft -f - <<'NFT' || fail "nft cut"
table inet e2e_cut {
  chain in { type filter hook input priority -10; policy accept; tcp dport 2049 drop; tcp sport 2049 drop; }
  chain out { type filter hook output priority -10; policy accept; tcp dport 2049 drop; tcp sport 2049 drop; }
}
NFT
}

# ticker: a line every 0.25 s until killed, so the host sees the guest's last moment before a reset
ticker() { ( while :; do printf '\nE2E %s tick\n' "$(now)"; usleep 250000; done ) & TICKER=$!; }

# brick serve on loopback with a password file; bcall METHOD ARGS... prints the JSON result
serve_up() {
  mkdir -p /etc/brick /run/brick /var/lib/brick
  printf 'e2e-secret\n' > /etc/brick/password
  chmod 600 /etc/brick/password
  cat > /etc/brick/brick.toml <<TOML
[server]
listen = "127.0.0.1:8898"
tls_cert = ""
tls_key = ""
user = "oracle"
password_file = "/etc/brick/password"
file_roots = ["/tmp"]
[network]
backend = "linuxbridge"
vlan_bridge_name = "{bridge}.{vlan}"
[fencer]
watchdog_device = ""
state_dir = "/run/brick"
marker_dir = "/var/lib/brick"
TOML
  brick serve --config /etc/brick/brick.toml > /tmp/serve.log 2>&1 &
  SERVE=$!
  i=0
  until brick call --config /etc/brick/brick.toml system.listMethods > /dev/null 2>&1; do
    i=$((i + 1))
    [ $i -gt 60 ] && fail "brick serve did not answer within 60 tries: $(tail -n 5 /tmp/serve.log | tr '\n' ' ')"
    kill -0 $SERVE 2>/dev/null || fail "brick serve exited: $(tail -n 5 /tmp/serve.log | tr '\n' ' ')"
    sleep 0.5
  done
  say serve-up "pid=$SERVE"
}
bcall() { brick call --config /etc/brick/brick.toml "$@"; }
# expect NAME PATTERN METHOD ARGS...: call, report ok if the JSON result matches PATTERN (grep -E), else fail
expect() {
  n=$1; pat=$2; shift 2
  if out=$(bcall "$@" 2>&1) && echo "$out" | tr -d '\n ' | grep -Eq "$pat"; then say ok "$n"; else say fail "$n: brick call $* -> $(echo "$out" | tr '\n' ' ' | cut -c1-400)"; fi
  printf '\nE2E %s data %s %s\n' "$(now)" "$n" "$(echo "$out" | tr -d '\n')"
}
# shx 'SCRIPT': sh -c with these functions (so `ip` is iproute2's, not busybox's applet)
shx() { /usr/bin/sh -c ". /e2e/lib.sh; $1"; }

# fencer_up: softdog + brick fencer (action reboot, sysrq) on the NFS pool; timings from the kernel
# command line (e2e.probe_interval_s, e2e.probe_timeout_s, e2e.fence_after_s, e2e.watchdog_timeout_s)
fencer_up() {
  PI=$(arg probe_interval_s); PT=$(arg probe_timeout_s); FA=$(arg fence_after_s); WD=$(arg watchdog_timeout_s)
  must modprobe softdog soft_margin="$WD"
  [ -c /dev/watchdog ] || fail "no /dev/watchdog after modprobe softdog"
  fencer_start
}

# fencer_start: write the fencer's config with $PI $PT $FA $WD (and dead_host_window_s = $DHW when
# set) and start it; fencer_up does this once, a scenario may stop the fencer and start it again.
fencer_start() {
  mkdir -p /etc/brick /run/brick /var/lib/brick
  cat > /etc/brick/fencer.toml <<TOML
[server]
listen = "127.0.0.1:8898"
[fencer]
action = "reboot"
probe_interval_s = $PI
probe_timeout_s = $PT
fence_after_s = $FA
${DHW:+dead_host_window_s = $DHW}
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
TOML
  must brick check-config --config /etc/brick/fencer.toml
  # its JSON log goes to the console: the host keeps it in the scenario's log file
  brick fencer --config /etc/brick/fencer.toml > /dev/console 2>&1 &
  FENCER=$!
  say fencer-started "pid=$FENCER probe_interval_s=$PI probe_timeout_s=$PT fence_after_s=$FA watchdog_timeout_s=$WD"
}

# wait_heartbeats N: wait until the heartbeat file, read on the server's side (not through the NFS
# client), has changed N times: the fencer's probes are landing on the storage
HB=/srv/pool/.hb-e2e
wait_heartbeats() {
  seen=0; last=""; i=0
  while [ $seen -lt "$1" ]; do
    i=$((i + 1)); [ $i -gt 240 ] && fail "heartbeat file $HB changed only $seen times in 120 s"
    kill -0 "$FENCER" 2>/dev/null || fail "brick fencer exited"
    cur=$(cat $HB 2>/dev/null)
    if [ -n "$cur" ] && [ "$cur" != "$last" ]; then seen=$((seen + 1)); last=$cur; fi
    usleep 500000
  done
  say healthy "heartbeats=$seen last=$last"
}

# the client's RPC count so far (/proc/net/rpc/nfs: "rpc calls retrans authrefresh")
rpc_calls() { awk '$1 == "rpc" { print $2 }' /proc/net/rpc/nfs; }

# wait_slave BOND SLAVE [NETNS]: wait (10 s at most) until SLAVE is BOND's active slave
wait_slave() {
  i=0
  while :; do
    if [ -n "$3" ]; then a=$(ip netns exec "$3" cat "/sys/class/net/$1/bonding/active_slave"); else a=$(cat "/sys/class/net/$1/bonding/active_slave"); fi
    [ "$a" = "$2" ] && return 0
    i=$((i + 1)); [ $i -gt 100 ] && { echo "$1 active slave is '$a', not $2"; return 1; }
    usleep 100000
  done
}
