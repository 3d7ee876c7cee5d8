#!/bin/sh
# A member removed from the cluster would fail on every restart: it is stopped,
# and its data kept under another name (labctl never deletes etcd data).

d=$1 unit=$2
systemctl stop "$unit"
systemctl disable "$unit"
if [ -d "$d/member" ]; then mv "$d" "$d.removed-$(date -u +%Y%m%dT%H%M%SZ)"; fi
