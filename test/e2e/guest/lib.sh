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
  must rpc.nfsd 4
  # soft-failing NFS would hide a hang from the fencer: this is the hard mount a host has
  must mount.nfs4 127.0.0.1:/ /mnt/pool -o "vers=4.2,proto=tcp,hard,timeo=${1:-20},retrans=2"
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
