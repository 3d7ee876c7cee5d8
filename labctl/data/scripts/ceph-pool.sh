#!/bin/sh
# One pool, made once, then given the inventory's size, PG count and application
# (the ceph layer's pools plan); PG_NUM "auto" leaves the count to the autoscaler.
# `osd pool create` of a pool that exists changes nothing and succeeds ("already
# exists"; a pool of the other type is refused), so it is not asked first whether
# the pool exists: each `$ceph` is a call into the monitor's container or a new one.
# Arguments: CEPH (the ceph command line, word-split) NAME PG_NUM SIZE APPLICATION.

set -e
ceph=$1 name=$2 pg=$3 size=$4 app=$5
if [ "$pg" = auto ]; then
  $ceph osd pool create "$name" >/dev/null
else
  $ceph osd pool create "$name" "$pg" "$pg" replicated >/dev/null
  $ceph osd pool set "$name" pg_autoscale_mode off >/dev/null
fi
$ceph osd pool set "$name" size "$size" >/dev/null
$ceph osd pool application enable "$name" "$app" >/dev/null
