#!/bin/sh
# shellcheck disable=SC2034  # engine, units, conf: read by current (ceph-current.sh)
# A node's OSDs restart together (the failure domain is the host: its PGs have
# copies on other hosts), as Ceph's own upgrade does it: on a formed cluster, first
# `ceph osd ok-to-stop` for them (waited for: the previous host's PGs may still be
# peering), then `noout` set so Ceph does not start moving their data while they
# restart, the restart, a wait until each is active again, `noout` unset, and a wait
# until every PG is active+clean before the next node's step starts. OSDs already
# running what their restart would start are left alone (`current`, ceph-current.sh:
# started since their unit and ceph.conf last changed, on the unit's image or, in the
# host runtime, on the binaries installed now: an interrupted roll resumes where it
# stopped). A `noout` this script set and could not unset (it was killed) is unset by
# its next run. None of them running (`idle`, ceph-current.sh: a first bootstrap's
# OSDs, just made), they all start at once, with nothing asked of Ceph: starting them
# stops nothing.
# Arguments: CEPH WAIT_SECONDS ENGINE IMAGE (both empty for the host runtime)
# UNIT_DIR CONF MARK (the file that says labctl set noout) then UNIT:ID per OSD.

ceph=$1 wait=$2 engine=$3 image=$4 units=$5 conf=$6 mark=$7; shift 7
active() { $ceph daemon "osd.$1" status 2>/dev/null | grep -q '"state": *"active"'; }
pgs_clean() {
  out=$($ceph --connect-timeout 5 pg stat -f json 2>/dev/null) || return 1
  printf '%s' "$out" | grep -q '"num_pg_by_state"' || return 1
  ! printf '%s' "$out" | grep -o '"name": *"[^"]*"' | grep -qv '"name": *"active+clean"'
}
unset_noout() {
  [ -f "$mark" ] || return 0
  $ceph --connect-timeout 5 osd unset noout >/dev/null 2>&1 && rm -f "$mark"
}
late() { [ "$(date +%s)" -ge "$end" ]; }
names=''
for pair; do names="$names ${pair%%:*}"; done
# shellcheck disable=SC2086
if idle $names; then
  for pair; do systemctl start "${pair%%:*}" & done
  wait
  exit 0
fi
formed=no
for pair; do active "${pair#*:}" && formed=yes; done
end=$(( $(date +%s) + wait ))
if [ "$formed" = no ]; then
  for pair; do systemctl restart "${pair%%:*}"; done
  exit 0
fi
todo='' ids=''
for pair; do
  if current "${pair%%:*}"; then
    echo "${pair%%:*} already runs its current unit and ceph.conf${image:+ on $image}:" \
      "not restarted"
  else
    todo="$todo $pair" ids="$ids ${pair#*:}"
  fi
done
if [ -z "$todo" ]; then
  unset_noout
  exit 0
fi
# shellcheck disable=SC2086
until said=$($ceph --connect-timeout 5 osd ok-to-stop $ids 2>&1); do
  late && { echo "OSDs$ids are not ok to stop after $wait s: $said" >&2; exit 1; }
  sleep 2
done
mkdir -p "${mark%/*}" && : > "$mark"
$ceph --connect-timeout 5 osd set noout >/dev/null || exit 1
for pair in $todo; do systemctl restart "${pair%%:*}"; done
for pair in $todo; do
  until active "${pair#*:}"; do
    late && { echo "osd.${pair#*:} is not active $wait s after its restart" >&2; exit 1; }
    sleep 1
  done
done
unset_noout
until pgs_clean; do
  late && {
    echo "PGs are not all active+clean $wait s after this node's OSDs restarted" >&2; exit 1; }
  sleep 1
done
