#!/bin/sh
# Slow but working storage must never fence. Each probe is a chain of NFS calls; netem delays every
# NFS request (lo, dport 2049) by 0.7 x probe_timeout_s / (RPCs per probe, counted while healthy), so a
# whole probe gets 0.7 x probe_timeout_s slower. It runs like that for e2e.netem_s seconds: no reset,
# and heartbeats keep landing.
. /e2e/lib.sh
mods sch_prio sch_netem cls_u32
nfs_up
fencer_up
wait_heartbeats 2
c0=$(rpc_calls); h0=$(cat $HB)
wait_heartbeats 6
c1=$(rpc_calls); h1=$(cat $HB)
data state-before-netem cat /run/brick/fencer.json
probes=6
per=$(( (c1 - c0 + probes - 1) / probes ))
[ "$per" -ge 1 ] || per=1
PT=$(arg probe_timeout_s)
delay_ms=$(awk -v t="$PT" -v n="$per" 'BEGIN { printf "%d", 0.7 * t * 1000 / n }')
say netem-plan "rpcs_per_probe=$per delay_per_request_ms=$delay_ms added_per_probe_ms=$((delay_ms * per))"
must tc qdisc add dev lo root handle 1: prio bands 3 priomap 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
must tc qdisc add dev lo parent 1:3 handle 30: netem delay ${delay_ms}ms
must tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip dport 2049 0xffff flowid 1:3
data netem tc -s qdisc show dev lo
secs=$(arg netem_s)
say netem-on "for ${secs}s"
end=$(( $(date +%s) + secs ))
last=$(cat $HB); lastchange=$(now); maxgap=0; changes=0
while [ "$(date +%s)" -lt "$end" ]; do
  kill -0 "$FENCER" 2>/dev/null || fail "brick fencer exited under netem"
  cur=$(cat $HB 2>/dev/null)
  t=$(now)
  if [ -n "$cur" ] && [ "$cur" != "$last" ]; then
    gap=$(awk -v a="$t" -v b="$lastchange" 'BEGIN { printf "%.3f", a - b }')
    maxgap=$(awk -v a="$gap" -v b="$maxgap" 'BEGIN { print (a > b) ? a : b }')
    last=$cur; lastchange=$t; changes=$((changes + 1))
  fi
  usleep 250000
done
data state-under-netem cat /run/brick/fencer.json
say netem-result "heartbeats=$changes max_gap_s=$maxgap"
must tc qdisc del dev lo root
wait_heartbeats 2
kill -TERM "$FENCER"
wait "$FENCER"
say fencer-stopped "rc=$?"
