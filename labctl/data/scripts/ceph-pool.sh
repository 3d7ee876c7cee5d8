#!/bin/sh
# One pool, made once, then given the inventory's size, PG count and application
# (the ceph layer's pools plan); PG_NUM "auto" leaves the count to the autoscaler.
# Arguments: CEPH (the ceph command line, word-split) NAME PG_NUM SIZE APPLICATION.

set -e
ceph=$1 name=$2 pg=$3 size=$4 app=$5
if ! $ceph osd pool ls | grep -qxF -- "$name"; then
  if [ "$pg" = auto ]; then
    $ceph osd pool create "$name" >/dev/null
  else
    $ceph osd pool create "$name" "$pg" "$pg" replicated >/dev/null
  fi
fi
if [ "$pg" != auto ]; then $ceph osd pool set "$name" pg_autoscale_mode off >/dev/null; fi
$ceph osd pool set "$name" size "$size" >/dev/null
$ceph osd pool application enable "$name" "$app" >/dev/null
