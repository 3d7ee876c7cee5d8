#!/bin/sh
# A simulated server's boot, run by labctl/sim/node.py inside the node's own network,
# mount, UTS and PID namespaces: the host's root read-only with the node's writable
# overlays, its own /dev with its disks, its own /run, its container engine, its login
# user, its enabled units, then sshd in the foreground (killing this process is pulling
# the power). Values arrive as arguments; what varies per node (disks, images) is read
# from tables labctl writes into the node's folder before the boot:
#   boot/disks   KERNEL-NAME BLOB   (the node's /dev/sdX and the file that is its disk)
#   boot/links   LINK TARGET        (udev's /dev/disk/by-id names of those disks)
#   boot/images  IMAGE ARCHIVE      (images the node's podman loads unless it has them)
# $1 host name, $2 the node's folder on the host, $3 where the node sees that folder,
# $4 the boot device file its BMC writes, $5 the login user, $6 the container engine's
# folder as the node sees it ("-": none), then the writable directories.

set -e
name=$1 dir=$2 mnt=$3 bootdev=$4 user=$5 engine=$6
shift 6
hostname "$name"
# How this boot happened, as the BMC was told (pxe, disk, bios).
if [ -f "$bootdev" ]; then cp "$bootdev" "$dir/bootdev"; else echo disk > "$dir/bootdev"; fi

# The host's root read-only; the node's folder stays writable where it sees it.
mount --make-rprivate /
mount --bind "$dir" "$mnt"
mount -o remount,bind,ro /
for sub in "$@"; do
  flat=$(printf '%s' "$sub" | tr / -)
  mkdir -p "$mnt/upper/$flat" "$mnt/work/$flat"
  mount -t overlay overlay \
    -o "lowerdir=/$sub,upperdir=$mnt/upper/$flat,workdir=$mnt/work/$flat" "/$sub"
done
# The pod network's configuration is the node's alone: /etc is an overlay on the
# host's, and a host package's CNI file (podman's 87-podman-bridge.conflist) would
# otherwise give the kubelet's containerd a pod network the calico layer never made.
mkdir -p "$mnt/cni-net.d" /etc/cni/net.d
mount --bind "$mnt/cni-net.d" /etc/cni/net.d

# The node's own /dev, when it has disks: each disk bound at its kernel name, and
# udev's by-id links made afresh on a tmpfs, so the host's links stay out.
if [ -s "$mnt/boot/disks" ]; then
  mkdir -p "$mnt/upper/dev" "$mnt/work/dev"
  mount -t overlay overlay -o "lowerdir=/dev,upperdir=$mnt/upper/dev,workdir=$mnt/work/dev" /dev
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
  ln -sf pts/ptmx /dev/ptmx
  mount -t tmpfs -o mode=1777 tmpfs /dev/shm
  mkdir -p /dev/disk
  mount -t tmpfs -o mode=0755 tmpfs /dev/disk
  mkdir -p /dev/disk/by-id
  while read -r kernel blob; do
    mkdir -p "$(dirname "$kernel")"
    [ -f "$kernel" ] || : > "$kernel"
    mount --bind "$blob" "$kernel"
  done < "$mnt/boot/disks"
  while read -r link target; do
    ln -sfn "$target" "$link"
  done < "$mnt/boot/links"
fi

mount -t tmpfs -o mode=755 tmpfs /run  # a fresh /run every boot
mkdir -p /run/sshd /run/labctl
cp "$mnt/bootdev" /run/labctl/bootdev

# The container engine: runc needs the cgroup hierarchies, which a node's fresh /sys
# lacks (mounted by the lines the shipped wrappers share); podman's settings; Flatcar's
# docker (podman's CLI) first on PATH; the images loaded. A failed load is said in the
# node's log and the boot goes on.
if [ "$engine" != - ]; then
  sh "$mnt/boot/mount-cgroups.sh"
  mkdir -p /etc/containers
  cp "$engine/storage.conf" "$engine/containers.conf" /etc/containers/
  mount -t overlay overlay -o "lowerdir=$engine/bin:/usr/bin" /usr/bin
  # A docker in this machine's /usr/local/bin (another program on this host) would
  # come first on PATH: the node's own /usr/local overlay hides it.
  rm -f /usr/local/bin/docker
  while read -r image archive; do
    podman image exists "$image" || podman load -q -i "$archive" >/dev/null \
      || echo "labctl sim: podman load -i $archive failed" >&2
  done < "$mnt/boot/images"
fi

# The login user, as CoreOS has core: key login, passwordless sudo. The password field
# is '*', not the locked '!' useradd leaves: sshd without PAM refuses key logins to
# locked accounts. sudo looks its host name up: without the hosts line it warns.
if [ "$user" != root ]; then
  id "$user" >/dev/null 2>&1 || useradd -m -s /bin/bash -p '*' "$user"
  sudoers=/etc/sudoers.d/labctl-$user
  if [ ! -f "$sudoers" ]; then
    echo "$user ALL=(ALL) NOPASSWD: ALL" > "$sudoers"
    chmod 0440 "$sudoers"
  fi
  grep -q " $name\$" /etc/hosts || echo "127.0.1.1 $name" >> /etc/hosts
fi

# Units enabled on the node start at boot, as systemd would start them.
/usr/local/bin/systemctl start-enabled || true
exec /usr/sbin/sshd -D -e -f "$mnt/sshd_config"
