#!/bin/sh
# A node's OSDs restart together (the failure domain is the host: its PGs have
# copies on other hosts); the next node's wait until these are active and every PG
# is active again, so no PG ever loses two copies to a restart.

ceph=$1 wait=$2; shift 2
active() { $ceph daemon "osd.$1" status 2>/dev/null | grep -q '"state": *"active"'; }
pgs_active() {
  out=$($ceph --connect-timeout 5 pg stat -f json 2>/dev/null) || return 1
  printf '%s' "$out" | grep -q '"num_pg_by_state"' || return 1
  ! printf '%s' "$out" | grep -o '"name": *"[^"]*"' | grep -qv '"name": *"active'
}
formed=no
for pair; do active "${pair#*:}" && formed=yes; done
for pair; do systemctl restart "${pair%%:*}"; done
[ "$formed" = yes ] || exit 0
end=$(( $(date +%s) + wait ))
for pair; do
  until active "${pair#*:}"; do
    [ "$(date +%s)" -lt "$end" ] || {
      echo "osd.${pair#*:} is not active $wait s after its restart" >&2; exit 1; }
    sleep 1
  done
done
until pgs_active; do
  [ "$(date +%s)" -lt "$end" ] || {
    echo "PGs are not all active $wait s after this node's OSDs restarted" >&2; exit 1; }
  sleep 1
done
