#!/bin/sh
# Slow but working storage must never fence. Each probe is a chain of NFS calls; netem delays every
# NFS request (lo, dport 2049) so that a whole probe gets 0.7 x probe_timeout_s slower, and it runs like
# that for e2e.netem_s seconds: no reset, and heartbeats keep landing.
#
# The premise is that every probe stays under probe_timeout_s. Under TCG a probe's child processes
# cost the emulated CPU 0.3-1 s, and on a loaded host several seconds (measured: 1.7-7.4 s per probe
# at load 10-12 before netem was on), so the scenario measures instead of assuming, from the
# fencer's own figures (fencer.json: probes_ok/probes_failed, probe_latency_ms.last, last_error):
# - baseline: it waits until SETTLE probes in a row on healthy NFS each took <= 0.2 x probe_timeout_s;
#   when SETTLE_TRIES probes bring no such run, the guest is too slow for these timings: the fencer
#   starts again with every probe timing 2x, then 3x (the watchdog's stays), and the window is at
#   least 3 x fence_after_s, so the claim (slow storage under probe_timeout_s does not fence) is the
#   same, only scaled to the emulated CPU (measured at load 8: healthy probes of 0.7-7.2 s at 10 s);
# - calibration: the netem delay per request starts at 0.35 x probe_timeout_s / (RPCs per probe) and is
#   rescaled until the fastest probe under netem is 0.7 x probe_timeout_s (+-10 %) above the baseline;
# - window: e2e.netem_s seconds in which every probe must succeed. A probe that timed out (the fencer
#   says "no answer within", after >= probe_timeout_s) means the machine, not the storage, pushed it
#   past the timeout: the premise did not hold, so netem goes off and the window starts again after a
#   new baseline. A probe that failed any other way is a failure. With no clean window within
#   e2e.netem_budget_s seconds the scenario fails saying so (never a silent pass).
. /e2e/lib.sh
mods sch_prio sch_netem cls_u32
nfs_up
fencer_up
wait_heartbeats 2
c0=$(rpc_calls)
wait_heartbeats 6
c1=$(rpc_calls)
data state-before-netem cat /run/brick/fencer.json
probes=6
per=$(( (c1 - c0 + probes - 1) / probes ))
[ "$per" -ge 1 ] || per=1
PI0=$PI; PT0=$PT; FA0=$FA; scale=1
SETTLE=3
SETTLE_TRIES=8
secs=$(arg netem_s)
budget=$(arg netem_budget_s); [ -n "$budget" ] || budget=$((secs * 5 / 2 + 700))
give_up=$(( $(date +%s) + budget ))
# targets: what netem adds per probe (0.7 x probe_timeout_s) and the settled baseline's bound
# (calibration starts at half the delay and scales up: measured, a probe under netem is slower than
# RPCs x delay, and a first guess that overshoots times the probe out)
targets() { PT_MS=$((PT * 1000)); TARGET_MS=$((PT_MS * 7 / 10)); SETTLED_MS=$((PT_MS / 5)); delay_ms=$((TARGET_MS / per / 2)); }
targets

# fl A OP B: a float comparison (busybox sh has integers only)
fl() { awk -v a="$1" -v b="$3" "BEGIN { exit !(a $2 b) }"; }
# probe_state: the fencer's probe counters, the last probe's latency and error (one pool)
probe_state() {
  j=$(cat /run/brick/fencer.json 2>/dev/null)
  P_OK=$(echo "$j" | sed -n 's/.*"probes_ok":\([0-9]*\).*/\1/p')
  P_FAIL=$(echo "$j" | sed -n 's/.*"probes_failed":\([0-9]*\).*/\1/p')
  P_LAST=$(echo "$j" | sed -n 's/.*"probe_latency_ms":{"last":\([0-9.]*\).*/\1/p')
  P_ERR=$(echo "$j" | sed -n 's/.*"last_error":"\([^"]*\)".*/\1/p')
}
probe_state; seen=$((P_OK + P_FAIL))
# poll: one look (every 0.25 s) at the heartbeat file (on the server's side) and the fencer's state.
# Sets NEW=ok|timeout when a probe result came in since the last look, and tracks heartbeat gaps.
hb_last=$(cat $HB); hb_at=$(now); maxgap=0; changes=0
hb_reset() { hb_last=$(cat $HB); hb_at=$(now); maxgap=0; changes=0; }
poll() {
  usleep 250000
  kill -0 "$FENCER" 2>/dev/null || fail "brick fencer exited"
  NEW=""
  cur=$(cat $HB 2>/dev/null); t=$(now)
  if [ -n "$cur" ] && [ "$cur" != "$hb_last" ]; then
    gap=$(awk -v a="$t" -v b="$hb_at" 'BEGIN { printf "%.3f", a - b }')
    fl "$gap" '>' "$maxgap" && maxgap=$gap
    hb_last=$cur; hb_at=$t; changes=$((changes + 1))
  fi
  fails=$P_FAIL
  probe_state
  [ -n "$P_OK" ] && [ -n "$P_FAIL" ] || return 0
  [ $((P_OK + P_FAIL)) -ne "$seen" ] || return 0
  seen=$((P_OK + P_FAIL))
  if [ "$P_FAIL" = "$fails" ]; then NEW=ok; return 0; fi
  case "$P_ERR" in
    "no answer within"*) fl "$P_LAST" '>=' "$PT_MS" && { NEW=timeout; return 0; } ;;
  esac
  fail "a probe failed, not by its timeout (${P_LAST} ms): $P_ERR"
}
# next_probe: wait for the next probe result (NEW, P_LAST)
next_probe() {
  n=0
  while :; do
    poll
    [ -n "$NEW" ] && return 0
    n=$((n + 1)); [ $n -gt $(( (PT + PI + 30) * 4 )) ] && fail "no probe result for $((PT + PI + 30)) s"
  done
}
out_of_time() { [ "$(date +%s)" -ge "$give_up" ]; }
premise_failed() {
  fail "netem: no clean window in ${budget} s in which the machine kept every probe under probe_timeout_s ($1; attempts=$attempt aborted=$aborted): the scenario did not happen"
}
# rescale N: the fencer again, with the probe timings N x those on the command line (netem is off)
rescale() {
  say netem-rescale "no $SETTLE healthy probes in a row under ${SETTLED_MS} ms in $tries (last ${P_LAST} ms): probe timings x$1"
  kill -TERM "$FENCER"; wait "$FENCER"
  scale=$1; PI=$((PI0 * scale)); PT=$((PT0 * scale)); FA=$((FA0 * scale)); DHW=$((FA + WD + 10))
  fencer_start
  wait_heartbeats 2
  probe_state; seen=$((P_OK + P_FAIL))
  targets; calibrated=""
}
# settle: SETTLE probes in a row on healthy NFS, each <= SETTLED_MS; BASE_MS is the fastest of them
settle() {
  ok=0; BASE_MS=""; worst=""; tries=0
  while [ $ok -lt $SETTLE ]; do
    out_of_time && premise_failed "the baseline did not settle: last probe ${P_LAST} ms, bound ${SETTLED_MS} ms"
    if [ $tries -ge $SETTLE_TRIES ] && [ $scale -lt 3 ]; then
      rescale $((scale + 1)); ok=0; BASE_MS=""; worst=""; tries=0
    fi
    next_probe; tries=$((tries + 1))
    if [ "$NEW" = ok ] && fl "$P_LAST" '<=' "$SETTLED_MS"; then
      ok=$((ok + 1))
      { [ -z "$BASE_MS" ] || fl "$P_LAST" '<' "$BASE_MS"; } && BASE_MS=$P_LAST
      { [ -z "$worst" ] || fl "$P_LAST" '>' "$worst"; } && worst=$P_LAST
    else
      ok=0; BASE_MS=""; worst=""
    fi
  done
  say netem-baseline "probes=$SETTLE min_ms=$BASE_MS max_ms=$worst bound_ms=$SETTLED_MS"
}
netem_off() { must tc qdisc del dev lo root; }
netem_on() {
  must tc qdisc add dev lo root handle 1: prio bands 3 priomap 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
  must tc qdisc add dev lo parent 1:3 handle 30: netem delay "${delay_ms}ms"
  must tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip dport 2049 0xffff flowid 1:3
}
# calibrate: the fastest of 2 probes under netem (the first result may have started before the change
# and is skipped) minus the baseline is what netem adds per probe; rescale the delay until that is
# within 10 % of TARGET_MS (3 rounds at most). Returns 1 when a probe timed out (premise failed).
calibrate() {
  round=0
  while :; do
    round=$((round + 1))
    next_probe; [ "$NEW" = timeout ] && return 1
    next_probe; [ "$NEW" = timeout ] && return 1; m=$P_LAST
    next_probe; [ "$NEW" = timeout ] && return 1; fl "$P_LAST" '<' "$m" && m=$P_LAST
    ADDED_MS=$(awk -v m="$m" -v b="$BASE_MS" 'BEGIN { printf "%d", m - b }')
    say netem-calibrate "round=$round delay_per_request_ms=$delay_ms fastest_probe_ms=$m added_per_probe_ms=$ADDED_MS target_ms=$TARGET_MS"
    fl "$ADDED_MS" '>=' "$((TARGET_MS * 9 / 10))" && fl "$ADDED_MS" '<=' "$((TARGET_MS * 11 / 10))" && return 0
    [ $round -ge 3 ] && return 0
    [ "$ADDED_MS" -ge 1 ] || ADDED_MS=1
    delay_ms=$(awk -v d="$delay_ms" -v t="$TARGET_MS" -v a="$ADDED_MS" 'BEGIN { printf "%d", d * t / a }')
    must tc qdisc change dev lo parent 1:3 handle 30: netem delay "${delay_ms}ms"
  done
}

attempt=0; aborted=""; calibrated=""
while :; do
  attempt=$((attempt + 1))
  settle
  netem_on
  if [ -z "$calibrated" ]; then
    say netem-calibrating "rpcs_per_probe=$per delay_per_request_ms=$delay_ms baseline_ms=$BASE_MS"
    if ! calibrate; then
      aborted="$aborted calibration:${P_LAST}ms"
      say netem-abort "attempt=$attempt a probe under netem timed out during calibration (${P_LAST} ms, $P_ERR): netem off, a new baseline"
      netem_off; continue
    fi
    calibrated=1
    say netem-plan "rpcs_per_probe=$per delay_per_request_ms=$delay_ms added_per_probe_ms=$ADDED_MS baseline_ms=$BASE_MS"
  else
    # the first result after the change may come from a probe that started before it
    next_probe
    if [ "$NEW" = timeout ]; then
      aborted="$aborted window:${P_LAST}ms"
      say netem-abort "attempt=$attempt a probe under netem timed out after ${P_LAST} ms ($P_ERR) before the window: netem off, a new baseline"
      netem_off; continue
    fi
  fi
  data netem tc -s qdisc show dev lo
  wsecs=$secs; [ $((3 * FA)) -le "$wsecs" ] || wsecs=$((3 * FA))
  say netem-on "for ${wsecs}s attempt=$attempt scale=$scale"
  end=$(( $(date +%s) + wsecs ))
  hb_reset; wmin=""; wmax=""; wn=0; clean=1
  while [ "$(date +%s)" -lt "$end" ]; do
    poll
    if [ "$NEW" = timeout ]; then clean=""; break; fi
    if [ "$NEW" = ok ]; then
      wn=$((wn + 1))
      { [ -z "$wmin" ] || fl "$P_LAST" '<' "$wmin"; } && wmin=$P_LAST
      { [ -z "$wmax" ] || fl "$P_LAST" '>' "$wmax"; } && wmax=$P_LAST
    fi
  done
  if [ -n "$clean" ]; then break; fi
  aborted="$aborted window:${P_LAST}ms"
  say netem-abort "attempt=$attempt a probe under netem timed out after ${P_LAST} ms ($P_ERR), $(( wsecs - end + $(date +%s) )) s into the window: netem off, a new baseline"
  netem_off
  out_of_time && premise_failed "the last window ended by a probe of ${P_LAST} ms"
done
data state-under-netem cat /run/brick/fencer.json
say netem-result "window_s=$wsecs probe_interval_s=$PI probe_timeout_s=$PT fence_after_s=$FA scale=$scale heartbeats=$changes max_gap_s=$maxgap probes=$wn min_probe_ms=$wmin max_probe_ms=$wmax attempts=$attempt aborted=[${aborted# }]"
netem_off
wait_heartbeats 2
kill -TERM "$FENCER"
wait "$FENCER"
say fencer-stopped "rc=$?"
