#!/bin/sh
# A wedged fencer: SIGSTOP it. Nobody pets softdog any more; it must reset the guest within
# watchdog_timeout_s (the host times "stop" line -> qemu exit).
. /e2e/lib.sh
nfs_up
fencer_up
wait_heartbeats 3
# shell builtins only between the two clock readings: the stop happened between before= and uptime=
read before _ < /proc/uptime
kill -STOP "$FENCER"
read after _ < /proc/uptime
say stop "uptime=$after before=$before kill -STOP $FENCER"
ticker
sleep $(( $(arg watchdog_timeout_s) + 30 ))
fail "still running $(( $(arg watchdog_timeout_s) + 30 )) s after SIGSTOP: softdog did not reset"
