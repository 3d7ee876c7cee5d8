#!/bin/sh
# A monitor restarted, then waited for until it is back in quorum. Restarts go one
# node at a time, each waiting until what it restarted is back, so a ceph.conf change
# never takes more than one node's daemons away at once. "Formed" is asked of the
# daemons' own admin sockets before the restart (no network wait): on a first
# bootstrap there is no quorum to wait for, and the restart ends at once.
# Arguments: CEPH (the ceph command line, word-split) NAME UNIT WAIT_SECONDS.

ceph=$1 name=$2 unit=$3 wait=$4
in_quorum() {
  $ceph daemon "mon.$name" mon_status 2>/dev/null | grep -Eq '"state": *"(leader|peon)"'
}
formed=no; in_quorum && formed=yes
systemctl restart "$unit"
[ "$formed" = yes ] || exit 0
i=0
until in_quorum; do
  i=$((i + 1))
  if [ "$i" -ge "$wait" ]; then
    echo "monitor $name is not back in quorum $wait s after its restart" >&2
    exit 1
  fi
  sleep 1
done
