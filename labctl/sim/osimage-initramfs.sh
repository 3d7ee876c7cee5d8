#!/bin/busybox sh
# The stand-in OS image's initramfs /init (labctl/sim/osimage.py says what the image
# stands in for): load the disk and NIC modules, find the root file system by the
# label the kernel command line names (root=LABEL=root, as Fedora CoreOS's), mount it
# and hand over to the installed system's /sbin/init. Lines it prints start with
# LABCTL-OS (osimage.MARK), which the tests and `labctl sim console` read.
# shellcheck shell=sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev
say() { echo "LABCTL-OS: $*"; }
# shellcheck disable=SC2013 # words, not lines, are wanted
arg() { for w in $(cat /proc/cmdline); do case $w in "$1"=*) echo "${w#*=}";; esac; done; }
say "initramfs up at $(cut -d' ' -f1 /proc/uptime)s"
while read -r module; do insmod "$module" 2>/dev/null; done < /etc/labctl-modules
ROOT=$(arg root)
i=0; dev=
while [ -z "$dev" ] && [ $i -lt 40 ]; do
  dev=$(findfs "$ROOT" 2>/dev/null) || { sleep 0.5; i=$((i+1)); }
done
if [ -z "$dev" ] || ! mount -t ext4 -o rw "$dev" /sysroot; then
  say "no root file system $ROOT; powering off"
  poweroff -f
fi
say "root $ROOT is $dev"
umount /proc /sys; mount --move /dev /sysroot/dev 2>/dev/null || umount /dev
exec switch_root /sysroot /sbin/init
