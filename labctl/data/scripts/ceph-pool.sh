#!/bin/sh
# One pool, made once, then given the inventory's size, PG count and application
# (the ceph layer's pools plan); PG_NUM "auto" leaves the count to the autoscaler.
# Every write waits for the monitors to commit it, and they propose at most about once a
# second (`paxos_propose_interval`), so the script writes as little as Ceph lets it:
# `osd pool create` takes the size and the autoscale mode (Pacific and Reef alike), so a
# new pool is two writes (create, `application enable`), not four, and no read: each
# `$ceph` also costs the CLI's start in the monitor's container. `osd pool create` of a
# pool that exists changes nothing, without a commit, and refuses a pool of the other
# type; then one read (`osd pool ls detail`, no commit) says what the pool holds and only
# what differs from the inventory is written (size, autoscale mode, PG count,
# application): a pool already as the inventory says costs no write at all.
# Arguments: CEPH (the ceph command line, word-split) NAME PG_NUM SIZE APPLICATION.

set -e
ceph=$1 name=$2 pg=$3 size=$4 app=$5 status=0
if [ "$pg" = auto ]; then
  said=$($ceph osd pool create "$name" --size "$size" 2>&1) || status=$?
else
  said=$($ceph osd pool create "$name" "$pg" "$pg" replicated --size "$size" \
    --autoscale_mode off 2>&1) || status=$?
fi
if [ "$status" -ne 0 ]; then
  printf '%s\n' "$said" >&2
  exit "$status"
fi
# Made now, it holds what the create was given: only its application is missing.
# Any other answer ("already exists") is read, not guessed.
case $said in
  *"pool '$name' created"*)
    $ceph osd pool application enable "$name" "$app" >/dev/null
    exit 0
    ;;
esac
# "pool 2 'rbd' replicated size 3 min_size 2 crush_rule 0 object_hash rjenkins pg_num 1024
#  pgp_num 1024 [pg_num_target 512 pgp_num_target 512] autoscale_mode off ... application rbd"
detail=$($ceph osd pool ls detail)
line=$(printf '%s\n' "$detail" | grep -F -- " '$name' ") || {
  echo "pool $name: osd pool ls detail does not list it after osd pool create" >&2
  exit 1
}
field() { printf '%s\n' "$line" | sed -n "s/.* $1 \([^ ]*\).*/\1/p"; }
if [ "$(field size)" != "$size" ]; then
  $ceph osd pool set "$name" size "$size" >/dev/null
fi
if [ "$pg" != auto ]; then
  if [ "$(field autoscale_mode)" != off ]; then
    $ceph osd pool set "$name" pg_autoscale_mode off >/dev/null
  fi
  # A count being changed shows the target beside the count reached so far.
  now=$(field pg_num_target)
  [ -n "$now" ] || now=$(field pg_num)
  if [ "$now" != "$pg" ]; then
    $ceph osd pool set "$name" pg_num "$pg" >/dev/null
  fi
fi
case ",$(field application)," in
  *",$app,"*) ;;
  *) $ceph osd pool application enable "$name" "$app" >/dev/null ;;
esac
