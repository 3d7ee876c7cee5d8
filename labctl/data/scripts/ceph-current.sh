#!/bin/sh
# shellcheck disable=SC2154
# Put before the restart scripts' bodies by labctl/layers/ceph.py (not run alone).
# current UNIT: the unit's daemon already runs what a restart would start, so a roll
# that was interrupted does not restart it again: its container (the unit's name
# without .service) runs $image and started after the unit file and ceph.conf last
# changed. Read live from the node's container engine ($engine); never true for the
# host runtime ($image empty), whose restarts the journal alone resumes.
# idle UNIT...: none of the units' daemons runs, so starting them stops nothing (a
# first bootstrap's, which labctl has just made): each unit inactive and, in a
# container runtime ($engine), no running container of its name (the unit's
# ExecStartPre would remove one). Read from systemd and the engine: no daemon's
# admin socket is asked (under a container runtime, a container run of the CLI each).
current() {
  [ -n "$image" ] || return 1
  c=${1%.service}
  [ "$($engine inspect --format '{{.Config.Image}}' "$c" 2>/dev/null)" = "$image" ] || return 1
  pid=$($engine inspect --format '{{.State.Pid}}' "$c" 2>/dev/null) || return 1
  [ "${pid:-0}" -gt 0 ] 2>/dev/null || return 1
  age=$(ps -o etimes= -p "$pid" 2>/dev/null | tr -d ' ')
  [ -n "$age" ] || return 1
  started=$(( $(date +%s) - age - 1 ))  # etimes rounds down: never later than it was
  for f in "$units/$1" "$conf"; do
    [ "$(stat -c %Y "$f" 2>/dev/null || echo 9999999999)" -lt "$started" ] || return 1
  done
}
idle() {
  [ "$(systemctl is-active "$@" 2>/dev/null | grep -cx inactive)" -eq $# ] || return 1
  [ -n "$engine" ] || return 0
  running=$($engine ps --format '{{.Names}}' 2>/dev/null) || return 1
  for u; do
    ! printf '%s\n' "$running" | grep -qx "${u%.service}" || return 1
  done
}
