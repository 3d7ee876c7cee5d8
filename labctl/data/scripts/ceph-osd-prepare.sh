#!/bin/sh
# One bluestore OSD on a whole disk. Done already (our uuid in the data directory):
# nothing. Our label on the disk but no data directory (a reinstalled node): the
# directory is primed from the label. Anything else on the disk: refused unless wipe.
# Before any of that, when the inventory gives the disk's wwn or serial, the node's
# udev links (``byid``) must say that ``dev`` is that disk: a kernel name moves to
# another disk after a reinstall, and that disk is refused with what the node says.
# shellcheck disable=SC1007 # `names= wwn_at=` are empty assignments, meant so

set -e
ceph=$1 osd=$2 tool=$3 id=$4 uuid=$5 dev=$6 wipe=$7 d=$8 byid=$9 wwn=${10} serial=${11}
if [ -f "$d/mkfs_done" ] && [ "$(cat "$d/fsid" 2>/dev/null)" = "$uuid" ]; then exit 0; fi
disks() {
  echo "this node's disks by id (ls -l $byid):" >&2
  n=0
  for l in "$byid"/*; do
    [ -L "$l" ] || continue
    echo "  ${l##*/} -> $(readlink -f "$l")" >&2; n=$((n + 1))
  done
  [ "$n" -gt 0 ] || echo "  none" >&2
}
if [ ! -e "$dev" ]; then
  disks
  echo "$dev does not exist on this node, so OSD $id cannot be made on it;" \
    "nothing was written" >&2
  exit 3
fi
if [ -n "$wwn$serial" ]; then
  target=$(readlink -f "$dev") names= wwn_at= serial_at=
  for l in "$byid"/*; do
    [ -L "$l" ] || continue
    n=${l##*/} at=$(readlink -f "$l")
    [ "$at" != "$target" ] || names="$names $n"
    [ "$n" != "wwn-$wwn" ] || wwn_at=$at
    case ${n#*-} in "$serial" | *_"$serial") serial_at=$at ;; esac
  done
  if { [ -n "$wwn" ] && [ "$wwn_at" != "$target" ]; } ||
    { [ -n "$serial" ] && [ "$serial_at" != "$target" ]; }; then
    disks
    said="${wwn:+wwn $wwn}${wwn:+${serial:+, }}${serial:+serial $serial}"
    at=${wwn_at:-$serial_at}
    echo "$dev is not the disk the inventory names for OSD $id ($said): this node says" \
      "$dev is $target, known by id as${names:- nothing}, and the disk with that" \
      "identity is ${at:-not on this node}${at:+ now}; refused, nothing was written" \
      "(a reinstall or a new disk may have renamed it)" >&2
    exit 3
  fi
fi
mkdir -p "$d"
# A bluestore label is the disk's first block: a blank first MiB holds none, so the
# tool's container is started only to read a label that can be there.
used=$(head -c 1048576 "$dev" | tr -d '\000' | head -c 1 | wc -c)
if [ "$used" -ne 0 ]; then
  label=$($tool show-label --dev "$dev" 2>/dev/null || true)
  case "$label" in
    *"\"osd_uuid\": \"$uuid\""*)
      $tool prime-osd-dir --dev "$dev" --path "$d" --no-mon-config
      exit 0 ;;
  esac
  if [ "$wipe" != yes ]; then
    echo "$dev holds data (its first MiB is not blank): refused and left alone;" \
      "set wipe: true on the disk in the inventory to let labctl overwrite it" >&2
    exit 3
  fi
  dd if=/dev/zero of="$dev" bs=1M count=16 conv=notrunc,fsync status=none
fi
key=$(sed -n 's/^[[:space:]]*key = //p' "$d/keyring")
printf '{"cephx_secret": "%s"}' "$key" | $ceph --name client.bootstrap-osd \
  osd new "$uuid" "$id" -i - >/dev/null
$osd --mkfs -i "$id" --osd-uuid "$uuid" --osd-data "$d" --bluestore_block_path "$dev"
