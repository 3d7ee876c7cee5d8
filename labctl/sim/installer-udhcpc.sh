#!/bin/sh
# What busybox udhcpc runs on a lease in the stand-in installer: the address and the
# default route on the interface (udhcpc passes them in its environment).
# shellcheck disable=SC2154 # interface, ip, mask and router are udhcpc's
[ "$1" = bound ] || [ "$1" = renew ] || exit 0
ip addr flush dev "$interface"
ip addr add "$ip/$mask" dev "$interface"
[ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
echo "LABCTL-INSTALLER: dhcp $ip/$mask"
