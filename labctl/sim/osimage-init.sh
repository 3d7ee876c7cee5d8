#!/bin/busybox sh
# The stand-in OS's /sbin/init, on the root file system of the installed disk: the
# system labctl's os layer then finds over SSH. It brings up each NIC with what
# Ignition wrote for it (systemd-networkd .network files as on Flatcar, matched by
# MACAddress; NetworkManager keyfiles as on Fedora CoreOS, by mac-address), and runs
# sshd with the host key Ignition planted (/etc/ssh/ssh_host_ed25519_key). Lines it
# prints start with LABCTL-OS (labctl/sim/osimage.py's MARK).
# shellcheck shell=sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc; mount -t sysfs sysfs /sys
grep -q ' /dev ' /proc/mounts || mount -t devtmpfs dev /dev
mkdir -p /dev/pts /tmp; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /run
mkdir -p /run/sshd; chmod 0755 /run/sshd
say() { echo "LABCTL-OS: $*"; }
say "$(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"') up at $(cut -d' ' -f1 /proc/uptime)s"
[ -s /etc/hostname ] && hostname "$(cat /etc/hostname)"
ip link set lo up
# The interface whose MAC is $1 (any case).
nic_of() {
  for n in /sys/class/net/*; do
    [ "$(tr 'A-F' 'a-f' < "$n/address")" = "$(echo "$1" | tr 'A-F' 'a-f')" ] && echo "${n##*/}"
  done
}
# $1: interface, then NAME=VALUE lines on stdin: Address, Gateway, MTUBytes.
apply() {
  ip link set "$1" up
  while IFS='=' read -r key value; do
    case $key in
      Address) ip addr add "$value" dev "$1" && say "$1 $value" ;;
      Gateway) ip route add default via "$value" dev "$1" ;;
      MTUBytes) ip link set "$1" mtu "$value" ;;
    esac
  done
}
for f in /etc/systemd/network/*.network; do
  [ -f "$f" ] || continue
  mac=$(sed -n 's/^MACAddress=//p' "$f" | head -n1)
  nic=$(nic_of "$mac")
  [ -n "$nic" ] && grep -E '^(Address|Gateway|MTUBytes)=' "$f" | apply "$nic"
done
for f in /etc/NetworkManager/system-connections/*.nmconnection; do
  [ -f "$f" ] || continue
  mac=$(sed -n 's/^mac-address=//p' "$f" | head -n1)
  nic=$(nic_of "$mac")
  [ -n "$nic" ] || continue
  sed -n 's/^address[0-9]*=//p; s/^mtu=/MTUBytes=/p' "$f" | while read -r line; do
    case $line in
      MTUBytes=*) echo "$line" ;;
      *,*) echo "Address=${line%%,*}"; echo "Gateway=${line#*,}" ;;
      *) echo "Address=$line" ;;
    esac
  done | apply "$nic"
done
if [ -s /etc/ssh/ssh_host_ed25519_key ]; then
  /usr/sbin/sshd -f /etc/ssh/sshd_config && say "sshd up with the host key on the disk"
else
  say "no host key at /etc/ssh/ssh_host_ed25519_key: sshd not started"
fi
while :; do sleep 3600; done
