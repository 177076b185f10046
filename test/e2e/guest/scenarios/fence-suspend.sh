#!/bin/sh
# The host suspends to RAM (S3, woken by the RTC alarm). CLOCK_MONOTONIC, softdog's timer and every
# timer of the fencer stop meanwhile; CLOCK_BOOTTIME and the peers' clocks do not. A suspend that keeps
# the pool's age under fence_after_s must not fence; one past it must fence at once on resume, though
# the storage answers: the peers have seen no heartbeat for longer than fence_after_s.
. /e2e/lib.sh
nfs_up
fencer_up
wait_heartbeats 3
FA=$(arg fence_after_s)
# suspend_for SECONDS EVENT: S3 until the RTC alarm, then "EVENT uptime=<after> before=<before>"
# (shell builtins only around the suspend: before= is the last reading before it, uptime= the first after)
suspend_for() {
  echo 0 > /sys/class/rtc/rtc0/wakealarm
  echo "+$1" > /sys/class/rtc/rtc0/wakealarm || fail "cannot set the RTC wake alarm"
  read before _ < /proc/uptime
  echo mem > /sys/power/state
  rc=$?
  read after _ < /proc/uptime
  [ $rc -eq 0 ] || fail "echo mem > /sys/power/state failed ($rc): $(dmesg | tail -n 4 | tr '\n' ' ')"
  say "$2" "uptime=$after before=$before suspended_for_s=$1"
}
# 2 s: the pool's age on resume is at most one probe cycle plus the suspend, well under fence_after_s
suspend_for 2 resumed-short
wait_heartbeats 3
kill -0 "$FENCER" 2>/dev/null || fail "brick fencer exited after the short suspend"
say survived "fencer pid=$FENCER"
# the kernel's "PM: suspend exit" on the console: the host times resume -> reset on the printk clock
# (which, like CLOCK_MONOTONIC, stops while suspended)
echo 7 > /proc/sys/kernel/printk
suspend_for $((FA + 4)) resumed-long
ticker
sleep 30
fail "still running 30 s after resuming from a suspend of $((FA + 4)) s: not fenced"
