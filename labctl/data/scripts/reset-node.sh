#!/bin/sh
# `labctl reset`: what labctl put on this node goes, so a bootstrap builds it again
# from nothing. Arguments: the etcd data directory (moved aside under a dated name:
# labctl never deletes etcd data), then the units to stop, disable and delete, then
# `--`, then the files and directories to delete, then `--zap` and the OSD devices
# whose first MiB (Bluestore's label) is zeroed so the ceph layer prepares them anew.

data=$1
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
  rm -rf -- "$1"
  shift
done
[ $# -gt 0 ] && shift
for device in "$@"; do
  if [ -b "$device" ] || [ -f "$device" ]; then
    dd if=/dev/zero of="$device" bs=1M count=1 conv=notrunc,fsync 2>/dev/null || exit 1
  fi
done
systemctl daemon-reload 2>/dev/null || true
