#!/bin/sh
# Changing cluster.etcd.data_dir under a formed cluster would start the member on an
# empty directory as a new cluster while its data sits in the old one: refuse, and
# say how to move it. The env file still names the directory etcd last ran from.

env=$1 root=$2 new=$3
[ -f "$env" ] || exit 0
old=$(sed -n 's/^ETCD_DATA_DIR=//p' "$env" | tr -d "\"'")
[ -n "$old" ] && [ "$old" != "$new" ] || exit 0
[ -d "$root$old/member" ] || exit 0
[ -d "$root$new/member" ] && exit 0
echo "etcd's data is in $old but cluster.etcd.data_dir now says $new: a member started" \
  "there would be empty. Stop etcd, move $old to $new on this node, then run again" \
  "(or put data_dir back)" >&2
exit 3
