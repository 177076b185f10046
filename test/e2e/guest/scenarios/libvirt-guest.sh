#!/bin/sh
# A guest that libvirt started from the XML brick defined (test/e2e/guests.test.ts): it reports its
# disk and NIC, gives the NIC the address named on the kernel command line (e2e.addr=A/N), and with
# e2e.peer=ADDR pings the peer in rounds of 5, printing each round's statistics, until it is destroyed.
. /e2e/lib.sh
mods virtio_pci virtio_blk virtio_net
i=0
until [ -b /dev/vda ] && [ -e /sys/class/net/eth0 ]; do
  i=$((i + 1)); [ $i -gt 100 ] && fail "no /dev/vda or eth0 after 10 s: $(ls /sys/block /sys/class/net | tr '\n' ' ')"
  usleep 100000
done
say disk "$(head -c 64 /dev/vda | tr -cd 'A-Za-z0-9 ._-')"
say nic "mac=$(cat /sys/class/net/eth0/address)"
addr=$(arg addr)
if [ -n "$addr" ]; then
  must ip addr add "$addr" dev eth0
  must ip link set eth0 up
  say addr "$(ip -j addr show dev eth0)"
fi
say ready "name=$(arg name)"
peer=$(arg peer)
n=0
while :; do
  if [ -n "$peer" ]; then
    n=$((n + 1))
    out=$(/bbin/ping -c 5 -i 0.2 -W 1 -w 4 "$peer" 2>&1 | grep -E 'transmitted|round-trip' | tr '\n' ' ')
    say ping "round=$n $out"
  else
    sleep 1
  fi
done
