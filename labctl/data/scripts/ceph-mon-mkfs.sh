#!/bin/sh
# A monitor's store is made once, from the map of every monitor and the keyring
# of every key. A store of another cluster, or one labctl did not make, is refused.

set -e
mon=$1 monmaptool=$2 id=$3 fsid=$4 keyring=$5 d=$6; shift 6
if [ -f "$d/labctl-fsid" ]; then
  have=$(cat "$d/labctl-fsid")
  [ "$have" = "$fsid" ] && exit 0
  echo "$d holds a monitor of the Ceph cluster $have, not $fsid;" \
    "labctl never wipes it: move it away by hand to let this monitor join" >&2
  exit 3
fi
if [ -e "$d/store.db" ]; then
  echo "$d holds monitor data labctl did not make; labctl never wipes it:" \
    "move it away by hand to let this monitor join" >&2
  exit 3
fi
mkdir -p "$d"
map=$d.labctl-monmap
$monmaptool --create --clobber --fsid "$fsid" "$@" "$map" >/dev/null
$mon --mkfs -i "$id" --monmap "$map" --keyring "$keyring"
rm -f "$map"
echo "$fsid" > "$d/labctl-fsid"
