#!/bin/sh
# Every pool of the inventory in one step (the ceph layer's pools plan): one read of
# what the cluster holds (`osd pool ls detail`, no commit), then each pool's writes,
# the pools at once. Every monitor write waits for a commit and the monitors propose
# about once a second (`paxos_propose_interval`), batching what arrived meanwhile: writes
# sent one after another cost a second each, writes sent together share commits, and
# each `$ceph` also costs the CLI's start in the monitor's container. Within a pool the
# order holds (create before `application enable`).
# A pool that is missing is made with its size and autoscale mode in `osd pool create`
# (Pacific and Reef alike), then its application enabled, except for a pool a CephFS of
# the inventory is about to be made on (FS "yes"): `fs new` enables `cephfs` on its pools
# itself. A pool that exists gets only what differs from the inventory (size, autoscale
# mode, PG count, application): a converged cluster costs the one read and no write. A
# pool of the other type (erasure) is given the create, so that Ceph refuses it in its
# own words. Every failing pool is named with what Ceph said; the others are done.
# Arguments: CEPH (the ceph command line, word-split), then per pool NAME PG_NUM SIZE
# APPLICATION FS (PG_NUM "auto" leaves the count to the autoscaler).

ceph=$1
shift
# "pool 2 'rbd' replicated size 3 min_size 2 crush_rule 0 object_hash rjenkins pg_num 1024
#  pgp_num 1024 [pg_num_target 512 pgp_num_target 512] autoscale_mode off ... application rbd"
detail=$($ceph osd pool ls detail) || exit 1
out=$(mktemp -d) || exit 1
trap 'rm -rf "$out"' EXIT

# A monitor write; its words on stderr when it fails.
write() {
  said=$($ceph "$@" 2>&1) || {
    printf '%s\n' "$said" >&2
    return 1
  }
}

pool() {
  name=$1 pg=$2 size=$3 app=$4 fs=$5
  line=$(printf '%s\n' "$detail" | grep -F -- " '$name' ") || line=
  case $line in
    "" | *" erasure "*)
      if [ "$pg" = auto ]; then
        write osd pool create "$name" --size "$size" || return 1
      else
        write osd pool create "$name" "$pg" "$pg" replicated --size "$size" \
          --autoscale_mode off || return 1
      fi
      echo "pool $name: made"
      [ "$fs" = yes ] || write osd pool application enable "$name" "$app"
      return
      ;;
  esac
  field() { printf '%s\n' "$line" | sed -n "s/.* $1 \([^ ]*\).*/\1/p"; }
  if [ "$(field size)" != "$size" ]; then
    write osd pool set "$name" size "$size" || return 1
    echo "pool $name: size $size"
  fi
  if [ "$pg" != auto ]; then
    if [ "$(field autoscale_mode)" != off ]; then
      write osd pool set "$name" pg_autoscale_mode off || return 1
      echo "pool $name: autoscale off"
    fi
    # A count being changed shows the target beside the count reached so far.
    now=$(field pg_num_target)
    [ -n "$now" ] || now=$(field pg_num)
    if [ "$now" != "$pg" ]; then
      write osd pool set "$name" pg_num "$pg" || return 1
      echo "pool $name: pg_num $pg"
    fi
  fi
  case ",$(field application)," in
    *",$app,"*) ;;
    *)
      write osd pool application enable "$name" "$app" || return 1
      echo "pool $name: application $app"
      ;;
  esac
}

# Each pool in a job of its own; its stderr kept to be named after.
start() {
  i=0
  while [ "$#" -ge 5 ]; do
    pool "$1" "$2" "$3" "$4" "$5" 2>"$out/$i" &
    echo "$!" >"$out/$i.pid"
    i=$((i + 1))
    shift 5
  done
}
start "$@"

status=0 i=0
while [ "$#" -ge 5 ]; do
  if ! wait "$(cat "$out/$i.pid")"; then
    status=1
    printf 'pool %s: %s\n' "$1" "$(cat "$out/$i")" >&2
  fi
  i=$((i + 1))
  shift 5
done
exit "$status"
