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
# Written data is on the disk before the report: on it, labctl may power the VM off.
finish() { say "ignition=$1, powering off"; sync; report "$1" "$2"; poweroff -f; }
# Fedora CoreOS's live initramfs fetches its root file system from here.
ROOTFS=$(arg coreos.live.rootfs_url)
if [ -n "$ROOTFS" ]; then
  wget -q -O /run/rootfs.img "$ROOTFS" || finish failed "cannot fetch the live rootfs $ROOTFS"
  say "rootfs $(wc -c < /run/rootfs.img) bytes from $ROOTFS"
fi
i=0; while [ ! -b "$DISK" ] && [ $i -lt 20 ]; do sleep 0.5; i=$((i+1)); done
[ -b "$DISK" ] || finish failed "the OS disk $DISK did not appear"
# The OS image (labctl/sim/osimage.py) on the VM's second disk, read-only.
IMAGE=$(cat /etc/labctl-image-disk)
[ -b "$IMAGE" ] || finish failed "no OS image disk $IMAGE"
# coreos-installer refuses to run without udevd's socket (it waits on udevadm settle).
mkdir -p /run/udev
/lib/systemd/systemd-udevd > /run/udevd.log 2>&1 &
i=0; while [ ! -e /run/udev/control ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
# Fedora CoreOS's own kernel arguments, as coreos-installer-service turns them into
# options; a Flatcar server (whose installer, flatcar-install, cannot run here) gets
# labctl's disk and config. --image-file and --insecure: the stand-in image, unsigned.
DEV=$(arg coreos.inst.install_dev); DEV=${DEV:-$DISK}
URL=$(arg coreos.inst.ignition_url); URL=${URL:-$CONFIG}
set -- install "$DEV" --ignition-url "$URL" --insecure-ignition --fetch-retries 5 \
  --image-file "$IMAGE" --insecure
say "coreos-installer $*"
if ! coreos-installer "$@" > /run/install.log 2>&1; then
  tail -n 15 /run/install.log
  finish failed "coreos-installer failed: $(tail -n 3 /run/install.log)"
fi
say "coreos-installer: $(tail -n 1 /run/install.log)"
# The partitions it wrote, by their file system labels, on the OS disk alone.
part() { lsblk -nrpo NAME,LABEL "$DEV" | awk -v l="$1" '$2 == l { print $1 }' | head -n1; }
BOOT=$(part boot); ROOT=$(part root)
if [ -z "$BOOT" ] || [ -z "$ROOT" ]; then finish failed "no boot and root partitions on $DEV"; fi
# What the installed system's first boot reads: the Ignition config coreos-installer
# wrote into boot (ignition/config.ign). Ignition reads it from /usr/lib/ignition/user.ign,
# as Fedora CoreOS's initramfs hands it over.
mkdir -p /boot /usr/lib/ignition
mount -t ext4 -o ro "$BOOT" /boot || finish failed "cannot mount $BOOT"
[ -s /boot/ignition/config.ign ] || { umount /boot; finish failed "no ignition/config.ign on $BOOT"; }
cp /boot/ignition/config.ign /usr/lib/ignition/user.ign
say "$BOOT ignition/config.ign: $(wc -c < /boot/ignition/config.ign) bytes"
umount /boot
mount -t ext4 "$ROOT" /sysroot || finish failed "cannot mount $ROOT"
mkdir -p /sysroot/etc/selinux
printf 'SELINUX=disabled\nSELINUXTYPE=targeted\n' > /sysroot/etc/selinux/config
# Ignition takes no config URL now: the config on the disk is the one it applies.
sed 's#ignition.config.url=[^ ]*##' /proc/cmdline > /run/cmdline
mount --bind /run/cmdline /proc/cmdline
mkdir -p /run/ignition
IGN="ignition --platform=metal --log-to-stdout"
if $IGN --stage=fetch > /run/fetch.log 2>&1 \
   && $IGN --stage=files --root=/sysroot > /run/files.log 2>&1; then
  tail -n 3 /run/files.log
  # An unmount that fails would leave Ignition's files in the journal alone.
  umount /sysroot || finish failed "cannot unmount $ROOT from /sysroot"
  finish ok "coreos-installer laid the image on $DEV; ignition fetch and files stages wrote $ROOT"
fi
cat /run/fetch.log /run/files.log 2>/dev/null | tail -n 15
why=$(cat /run/fetch.log /run/files.log 2>/dev/null | grep CRITICAL | tail -n 3)
umount /sysroot
finish failed "${why:-ignition failed without a CRITICAL line}"
