#!/bin/sh
# `labctl reset`: what labctl put on this node goes, so a bootstrap builds it again
# from nothing. Arguments: the etcd data directory (moved aside under a dated name:
# labctl never deletes etcd data), then the units to stop, disable and delete, then
# `--`, then the directories to empty (kept, with their owner and mode: a package may
# own them), then `--zap` and the OSD devices whose first MiB (Bluestore's label) is
# zeroed so the ceph layer prepares them anew. What could not be removed is named.

data=$1 left=
shift
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  systemctl stop "$1" 2>/dev/null || true
  systemctl disable "$1" 2>/dev/null || true
  rm -f "/etc/systemd/system/$1"
  shift
done
[ $# -gt 0 ] && shift
if [ -d "$data" ]; then mv "$data" "$data.reset-$(date -u +%Y%m%dT%H%M%SZ)"; fi
while [ $# -gt 0 ] && [ "$1" != --zap ]; do
  # What is still mounted under it (a kubelet's pod volumes: tmpfs and projected
  # mounts outlive the kubelet) is unmounted first, the deepest first.
  awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  if [ -d "$1" ]; then
    find "$1" -mindepth 1 -delete || left="$left $1"
  else
    rm -f -- "$1" || left="$left $1"
  fi
  shift
done
[ $# -gt 0 ] && shift
for device in "$@"; do
  if [ -b "$device" ] || [ -f "$device" ]; then
    dd if=/dev/zero of="$device" bs=1M count=1 conv=notrunc,fsync 2>/dev/null ||
      left="$left $device"
  fi
done
systemctl daemon-reload 2>/dev/null || true
if [ -n "$left" ]; then
  echo "could not wipe:$left" >&2
  exit 1
fi
