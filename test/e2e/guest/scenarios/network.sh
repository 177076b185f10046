#!/bin/sh
# brick's network calls on a real kernel with 8021q, bonding and bridge: driven through brick serve
# and brick call inside the guest, checked with iproute2 (`ip -d link`), never with brick's own view.
. /e2e/lib.sh
# max_bonds=0: the module would otherwise make a balance-rr bond0 itself, and ours would fail to appear
must modprobe bonding max_bonds=0
mods virtio_pci virtio_net 8021q bridge veth
i=0; until ip link show eth0 >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 50 ] && fail "no eth0 (virtio NIC)"; sleep 0.1; done
ip link set eth0 up
serve_up

# 1. VLAN bridge on a bridge whose uplink is the virtio NIC (Ovm3 style: xenbr0 -> xenbr0.100 on eth0.100)
expect ensure-bridge '"changed":true' network_ensure_bridge xenbr0 '{"uplink":"eth0"}'
check xenbr0-has-eth0 shx 'ip -d link show eth0 | grep -q "master xenbr0"'
expect vlan-create '"bridge":"xenbr0.100".*"vlan_device":"eth0.100"|"vlan_device":"eth0.100".*"bridge":"xenbr0.100"' network_ensure_vlan_bridge xenbr0 100
check vlan-device-8021q shx 'ip -d link show eth0.100 | grep -q "vlan protocol 802.1Q id 100"'
check vlan-device-on-eth0 shx 'ip -d link show eth0.100 | grep -q "eth0.100@eth0"'
check vlan-device-in-bridge shx 'ip -d link show eth0.100 | grep -q "master xenbr0.100"'
check vlan-bridge-is-bridge shx 'ip -d link show xenbr0.100 | grep -q "bridge forward_delay"'
check vlan-bridge-up shx 'ip link show xenbr0.100 | grep -q "state UP\|,UP"'
data vlan-links ip -d -j link show eth0.100
expect vlan-again-unchanged '"changed":false' network_ensure_vlan_bridge xenbr0 100

# 2. a bond uplink: bond0 (active-backup) over two veths; the peer namespace has the same bond and VLAN
must ip netns add peer
must ip link add bond0 type bond mode active-backup miimon 100
must ip link add va0 type veth peer name va1
must ip link add vb0 type veth peer name vb1
ip link set va0 master bond0; ip link set vb0 master bond0
ip link set va1 netns peer; ip link set vb1 netns peer
ip link set bond0 up; ip link set va0 up; ip link set vb0 up
must ip -n peer link add bond1 type bond mode active-backup miimon 100
ip -n peer link set va1 master bond1; ip -n peer link set vb1 master bond1
ip -n peer link set bond1 up; ip -n peer link set va1 up; ip -n peer link set vb1 up
ip -n peer link add link bond1 name bond1.200 type vlan id 200
ip -n peer addr add 10.200.0.2/24 dev bond1.200
ip -n peer link set bond1.200 up
# active-backup drops what arrives on a backup slave: both ends must prefer the same veth pair
ip link set bond0 type bond primary va0
ip -n peer link set bond1 type bond primary va1
expect bond-vlan-create '"bridge":"brbond0-200"' network_ensure_vlan_bridge bond0 200 '{"name":"brbond0-200"}'
check bond-vlan-device shx 'ip -d link show bond0.200 | grep -q "vlan protocol 802.1Q id 200" && ip link show bond0.200 | grep -q "master brbond0-200"'
ip addr add 10.200.0.1/24 dev brbond0-200
check bond-mode shx 'grep -q "active-backup" /proc/net/bonding/bond0 && ip netns exec peer grep -q "active-backup" /proc/net/bonding/bond1'
check bond-active shx 'wait_slave bond0 va0 && wait_slave bond1 va1 peer'
check bond-vlan-ping ping -c 1 -w 20 10.200.0.2
ip link set va0 down
check bond-failover-active-changed shx 'wait_slave bond0 vb0 && wait_slave bond1 vb1 peer'
check bond-failover-ping ping -c 1 -w 20 10.200.0.2
ip link set va0 up
ip addr del 10.200.0.1/24 dev brbond0-200

# 3. GC: a guest port (vif1.0) keeps xenbr0.100; brbond0-200 has none and goes; a bridge brick did not make stays
ip link add vif1.0 type veth peer name vif1.0p
ip link set vif1.0 master xenbr0.100
ip link add link eth0 name eth0.300 type vlan id 300
ip link add userbr.300 type bridge
ip link set eth0.300 master userbr.300
expect gc-dry-run '^\["brbond0-200"\]$' network_gc '{"dry_run":true}'
check gc-dry-run-changed-nothing ip link show brbond0-200
expect gc-removes-unused '^\["brbond0-200"\]$' network_gc
check gc-removed-bridge shx '! ip link show brbond0-200 2>/dev/null'
check gc-removed-vlan-device shx '! ip link show bond0.200 2>/dev/null'
check gc-kept-guest-bridge ip link show xenbr0.100
check gc-kept-user-bridge shx 'ip link show userbr.300 && ip link show eth0.300'
check gc-kept-bond ip link show bond0
ip link del vif1.0
expect gc-after-guest-left '^\["xenbr0.100"\]$' network_gc
check gc-removed-xenbr0.100 shx '! ip link show xenbr0.100 2>/dev/null && ! ip link show eth0.100 2>/dev/null'
check gc-kept-xenbr0 shx 'ip -d link show eth0 | grep -q "master xenbr0"'
expect gc-idempotent '^\[\]$' network_gc

# 4. control0: a zeroconf route on another NIC goes, the address and the only 169.254/16 route are control0's
mkdir -p /etc/sysconfig/network-scripts
printf 'NETWORKING=yes\n' > /etc/sysconfig/network
printf 'DEVICE=control0\nONBOOT=yes\n' > /etc/sysconfig/network-scripts/ifcfg-control0
ip route add 169.254.0.0/16 dev eth0 metric 1002
expect control-setup '"changed":true' network_setup_control
check control0-bridge shx 'ip -d link show control0 | grep -q "bridge forward_delay"'
check control0-up shx 'ip link show control0 | grep -q ",UP"'
check control0-address shx 'ip -4 addr show dev control0 | grep -q "inet 169.254.0.1/16"'
check control0-only-route shx 'test "$(ip -4 route show 169.254.0.0/16 | wc -l)" = 1 && ip -4 route show 169.254.0.0/16 | grep -q "dev control0"'
check control0-nozeroconf grep -q '^NOZEROCONF=yes' /etc/sysconfig/network
check control0-ifcfg-removed shx '! test -e /etc/sysconfig/network-scripts/ifcfg-control0'
data control0-route ip -4 route show 169.254.0.0/16
expect control-again-unchanged '"changed":false' network_setup_control
kill $SERVE
