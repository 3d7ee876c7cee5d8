#!/bin/sh
# shellcheck disable=SC2034  # engine, units, conf: read by current (ceph-current.sh)
# A monitor restarted, then waited for until it is back in quorum. Restarts go one
# node at a time, each waiting until what it restarted is back, so a ceph.conf or
# image change never takes more than one node's daemons away at once. "Formed" is
# asked of the daemons' own admin sockets before the restart (no network wait): on a
# first bootstrap there is no quorum to wait for, and the restart ends at once; and
# when the monitor does not run at all (`idle`, ceph-current.sh: a first bootstrap's,
# just made) it is started without asking its socket (a container run of the CLI). A
# monitor already running what its restart would start is left alone
# (`current`, ceph-current.sh: an interrupted roll resumes where it stopped).
# Arguments: CEPH (the ceph command line, word-split) NAME UNIT WAIT_SECONDS ENGINE
# IMAGE (both empty for the host runtime) UNIT_DIR CONF.

ceph=$1 name=$2 unit=$3 wait=$4 engine=$5 image=$6 units=$7 conf=$8
in_quorum() {
  $ceph daemon "mon.$name" mon_status 2>/dev/null | grep -Eq '"state": *"(leader|peon)"'
}
if idle "$unit"; then
  systemctl start "$unit"
  exit 0
fi
formed=no; in_quorum && formed=yes
if [ "$formed" = yes ] && current "$unit"; then
  echo "$unit already runs its current unit and ceph.conf${image:+ on $image}: not restarted"
  exit 0
fi
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
