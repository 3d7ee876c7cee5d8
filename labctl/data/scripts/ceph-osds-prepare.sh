#!/bin/sh
# A node's OSDs made at once (the ceph layer's OSD plan): each OSD's own preparation
# (ceph-osd-prepare.sh, given as PREPARE: its checks, `ceph osd new`, `ceph-osd
# --mkfs`), the node's OSDs side by side rather than one after another. Most of a
# preparation is waiting, not work: the monitors' commit of `osd new` (they batch what
# arrives together) and bluestore's mkfs syncing its new store (seven mkfs on sparse
# files: 15.6-16.2 s one after another, 2.8-3.1 s at once, on this project's 2 cores).
# Every OSD whose preparation failed is named with what it said, the others are made;
# the step's status is the first failing OSD's (3: a disk refused).
# Arguments: PREPARE CEPH OSD TOOL BYID (as ceph-osd-prepare.sh takes them), then per
# OSD: ID UUID DEVICE WIPE DATA_DIR WWN SERIAL.

prepare=$1 ceph=$2 osd=$3 tool=$4 byid=$5
shift 5
out=$(mktemp -d) || exit 1
trap 'rm -rf "$out"' EXIT

start() {
  i=0
  while [ "$#" -ge 7 ]; do
    sh -c "$prepare" labctl-ceph-osd-prepare "$ceph" "$osd" "$tool" "$1" "$2" "$3" \
      "$4" "$5" "$byid" "$6" "$7" 2>"$out/$i" &
    echo "$!" >"$out/$i.pid"
    i=$((i + 1))
    shift 7
  done
}
start "$@"

# The first failing OSD's words come last and whole (a failed step's report keeps the
# end of what it said); each other failing OSD's last line before them.
status=0 i=0 first_id='' first_i=''
while [ "$#" -ge 7 ]; do
  wait "$(cat "$out/$i.pid")"
  rc=$?
  if [ "$rc" -ne 0 ]; then
    if [ "$status" -eq 0 ]; then
      status=$rc first_id=$1 first_i=$i
    else
      printf 'OSD %s: %s\n' "$1" "$(tail -n 1 "$out/$i")" >&2
    fi
  fi
  i=$((i + 1))
  shift 7
done
[ -z "$first_id" ] || printf 'OSD %s: %s\n' "$first_id" "$(cat "$out/$first_i")" >&2
exit "$status"
