#!/bin/sh
# One CephFS on its two pools, made once (the ceph layer's pools plan).
# Arguments: CEPH (the ceph command line, word-split) NAME METADATA_POOL DATA_POOL.

set -e
ceph=$1 fs=$2 meta=$3 data=$4
$ceph fs ls -f json | grep -qF -- "\"name\":\"$fs\"" && exit 0
$ceph fs new "$fs" "$meta" "$data" >/dev/null
