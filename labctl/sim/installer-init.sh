#!/bin/busybox sh
# labctl's stand-in installer (labctl/sim/installer.py says what it stands in for):
# the initrd's /init. Lines it prints start with LABCTL-INSTALLER (installer.MARK),
# which the tests and `labctl sim console` read.
# shellcheck shell=sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev
mount -t tmpfs tmpfs /run; mkdir -p /tmp /sysroot
say() { echo "LABCTL-INSTALLER: $*"; }
# The value of a kernel argument NAME=VALUE (/proc/cmdline is one line of words).
# shellcheck disable=SC2013 # words, not lines, are wanted
arg() { for w in $(cat /proc/cmdline); do case $w in "$1"=*) echo "${w#*=}";; esac; done; }
say "up at $(cut -d' ' -f1 /proc/uptime)s"
# The kernel modules, in load order (installer.module_order), one path a line.
while read -r module; do insmod "$module" 2>/dev/null; done < /etc/labctl-modules
# The board's BMC on the system interface: the kernel asks it for its device id over
# KCS at probe time and logs the answer; a VM without one says so and goes on.
IPMI_DONE='Found new BMC|Unable to find any System Interface|detection failed'
i=0; while ! dmesg | grep -Eq "$IPMI_DONE" && [ $i -lt 20 ]; do sleep 0.5; i=$((i+1)); done
bmc=$(dmesg | grep -o 'Found new BMC.*' | tail -n1)
if [ -c /dev/ipmi0 ] && [ -n "$bmc" ]; then
  say "ipmi /dev/ipmi0: $bmc"
  # (ipmitool warns first that it has no IANA enterprise-number list here.)
  inband=$(ipmitool -I open chassis power status 2>&1 | grep -v 'IANA PEN' | head -n1)
  say "ipmi in-band: $inband"
else
  say "ipmi: no BMC on the system interface"
fi
ip link set lo up
NIC=
for n in /sys/class/net/*; do [ "${n##*/}" = lo ] || { NIC=${n##*/}; break; }; done
ip link set "$NIC" up
udhcpc -i "$NIC" -s /etc/udhcpc.script -q -n -t 10 -T 2 || say "no DHCP lease"
REPORT=$(arg labctl.report); CONFIG=$(arg labctl.config); DISK=$(arg labctl.disk)
# The live system's own Ignition (the installer config) carries this install's report
# token, as the token file's contents: without it the boot service refuses the report.
INSTALL=$(arg ignition.config.url)
TOKEN=$(wget -q -O- "$INSTALL" | grep -o 'LABCTL_INSTALL_TOKEN=[0-9a-f]*' | head -n1)
TOKEN=${TOKEN#*=}
[ -n "$TOKEN" ] || say "no install token in $INSTALL"
json() { sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | awk 'BEGIN{ORS="\\n"}{print}'; }
report() {
  body="{\"result\": \"$1\", \"message\": \"$(printf '%s' "$2" | json)\"}"
  wget -q -O- --header 'Content-Type: application/json' \
    --header "X-Labctl-Install-Token: $TOKEN" --post-data "$body" "$REPORT"
}
finish() { say "ignition=$1, powering off"; report "$1" "$2"; sync; poweroff -f; }
# Fedora CoreOS's live initramfs fetches its root file system from here.
ROOTFS=$(arg coreos.live.rootfs_url)
if [ -n "$ROOTFS" ]; then
  wget -q -O /run/rootfs.img "$ROOTFS" || finish failed "cannot fetch the live rootfs $ROOTFS"
  say "rootfs $(wc -c < /run/rootfs.img) bytes from $ROOTFS"
fi
i=0; while [ ! -b "$DISK" ] && [ $i -lt 20 ]; do sleep 0.5; i=$((i+1)); done
[ -b "$DISK" ] || finish failed "the OS disk $DISK did not appear"
if ! { mke2fs -q "$DISK" && mount -t ext2 "$DISK" /sysroot; }; then
  finish failed "cannot lay a file system on $DISK"
fi
mkdir -p /sysroot/etc/selinux /sysroot/home/core /sysroot/root
printf 'root:x:0:0:root:/root:/bin/sh\ncore:x:500:500:core:/home/core:/bin/sh\n' \
  > /sysroot/etc/passwd
printf 'root:x:0:\ncore:x:500:\n' > /sysroot/etc/group
printf 'root:*:19000:0:99999:7:::\ncore:*:19000:0:99999:7:::\n' > /sysroot/etc/shadow
printf 'root:*::\ncore:!::\n' > /sysroot/etc/gshadow
chmod 600 /sysroot/etc/shadow /sysroot/etc/gshadow; chown 500:500 /sysroot/home/core
printf 'SELINUX=disabled\nSELINUXTYPE=targeted\n' > /sysroot/etc/selinux/config
# Ignition reads its config URL from the kernel command line: this install's own config.
sed "s#ignition.config.url=[^ ]*#ignition.config.url=$CONFIG#" /proc/cmdline > /run/cmdline
mount --bind /run/cmdline /proc/cmdline
mkdir -p /run/ignition
IGN="ignition --platform=metal --log-to-stdout"
if $IGN --stage=fetch > /run/fetch.log 2>&1 \
   && $IGN --stage=files --root=/sysroot > /run/files.log 2>&1; then
  tail -n 3 /run/files.log
  umount /sysroot
  finish ok "ignition fetch and files stages finished; wrote $DISK"
fi
cat /run/fetch.log /run/files.log 2>/dev/null | tail -n 15
why=$(cat /run/fetch.log /run/files.log 2>/dev/null | grep CRITICAL | tail -n 3)
umount /sysroot
finish failed "${why:-ignition failed without a CRITICAL line}"
