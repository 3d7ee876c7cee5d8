#!/bin/sh
# One member's data replaced by a snapshot's (`labctl etcd restore`): the old data is
# moved aside under the time (labctl never deletes etcd data), the snapshot restored
# in its place, marked as this cluster's, and the node's copy of the snapshot removed.
# Arguments: DATA_DIR TOKEN SNAPSHOT, then the restore command (etcdctl snapshot
# restore, or the container that runs it), run with ETCDCTL_API=3.

set -e
d=$1 token=$2 snapshot=$3; shift 3
if [ -e "$d" ]; then mv "$d" "$d.before-restore-$(date -u +%Y%m%dT%H%M%SZ)"; fi
ETCDCTL_API=3 "$@"
printf '%s\n' "$token" > "$d/.labctl-cluster"
chmod 0700 "$d"
rm -f "$snapshot"
