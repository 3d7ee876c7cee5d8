#!/bin/sh
# shellcheck disable=SC2034  # engine, units, conf: read by current (ceph-current.sh)
# A node's managers or metadata server restarted (one node after the other: a
# standby takes over), except those already running what their restart would start
# (`current`, ceph-current.sh: an interrupted roll resumes where it stopped).
# Arguments: ENGINE IMAGE (both empty for the host runtime) UNIT_DIR CONF UNIT...

engine=$1 image=$2 units=$3 conf=$4; shift 4
for unit; do
  if current "$unit"; then
    echo "$unit already runs its current unit and ceph.conf${image:+ on $image}:" \
      "not restarted"
  else
    systemctl restart "$unit" || exit 1
  fi
done
