#!/bin/sh
# shellcheck disable=SC2154
# Put before the restart scripts' bodies by labctl/layers/ceph.py (not run alone).
# current UNIT: the unit's daemon already runs what a restart would start, so a roll
# that was interrupted, or a restart step run again for no change of the daemon's own
# (labctl's new script), does not restart it again. Its process started after the unit
# file and ceph.conf last changed, and it is, in a container runtime ($image set), the
# unit's container (the unit's name without .service) running $image, read from the
# node's engine ($engine); in the host runtime, the unit's main process (systemd's
# MainPID) with its program and libraries as they were when it started: one replaced
# since (a package upgrade, the host runtime's version change) leaves it mapping a
# "(deleted)" executable file (/proc/PID/exe, /proc/PID/maps), and it is restarted.
# idle UNIT...: none of the units' daemons runs, so starting them stops nothing (a
# first bootstrap's, which labctl has just made): each unit inactive and, in a
# container runtime ($engine), no running container of its name (the unit's
# ExecStartPre would remove one). Read from systemd and the engine: no daemon's
# admin socket is asked (under a container runtime, a container run of the CLI each).
current() {
  if [ -n "$image" ]; then
    c=${1%.service}
    [ "$($engine inspect --format '{{.Config.Image}}' "$c" 2>/dev/null)" = "$image" ] || return 1
    pid=$($engine inspect --format '{{.State.Pid}}' "$c" 2>/dev/null) || return 1
  else
    pid=$(systemctl show --property MainPID --value "$1" 2>/dev/null) || return 1
  fi
  [ "${pid:-0}" -gt 0 ] 2>/dev/null || return 1
  if [ -z "$image" ]; then
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    case $exe in *" (deleted)") return 1 ;; esac
    maps=$(cat "/proc/$pid/maps" 2>/dev/null) || return 1
    [ -n "$maps" ] || return 1
    # An executable mapping of a deleted file: its program or a library it loaded.
    ! printf '%s\n' "$maps" | grep -Eq '^[^ ]+ ..x. .* \(deleted\)$' || return 1
  fi
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
