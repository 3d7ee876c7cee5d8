#!/bin/sh
# Every OSD up and in before pools are made: Ceph sizes PG limits by the OSDs in.
# A command, not a wait, so the journal spares a converged run the question (it is
# asked again when the OSD count changes). Asked every half second: an answer takes a
# few tens of ms through the monitor's container, and an OSD is up when it is up.

ceph=$1 want=$2 deadline=$3
end=$(( $(date +%s) + deadline ))
while :; do
  out=$($ceph --connect-timeout 5 osd stat -f json 2>/dev/null) || out=
  up=$(printf '%s' "$out" | sed -n 's/.*"num_up_osds":\([0-9]*\).*/\1/p')
  in=$(printf '%s' "$out" | sed -n 's/.*"num_in_osds":\([0-9]*\).*/\1/p')
  [ "$up" = "$want" ] && [ "$in" = "$want" ] && exit 0
  if [ "$(date +%s)" -ge "$end" ]; then
    echo "after $deadline s, ${up:-?} of $want OSDs are up and ${in:-?} in" >&2
    exit 1
  fi
  sleep 0.5
done
