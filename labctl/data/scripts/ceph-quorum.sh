#!/bin/sh
# Every monitor named in quorum_names (read without a JSON parser: Flatcar has none).
# A command, not a wait, so the journal spares a converged run the question: it is
# asked again whenever a monitor's unit or ceph.conf changed (its triggers), and the
# health step's HEALTH_OK covers quorum on every run. Asked every half second, not
# every two: the wait ends when the last monitor joins, not up to 2 s after.

ceph=$1 deadline=$2; shift 2
end=$(( $(date +%s) + deadline ))
while :; do
  out=$($ceph --connect-timeout 5 quorum_status -f json 2>/dev/null) || out=
  names=$(printf '%s' "$out" | sed -n 's/.*"quorum_names":\[\([^]]*\)\].*/\1/p')
  missing=
  for m in "$@"; do
    case ",$names," in *"\"$m\""*) ;; *) missing="$missing $m" ;; esac
  done
  [ -z "$missing" ] && exit 0
  if [ "$(date +%s)" -ge "$end" ]; then
    echo "after $deadline s, monitors not in quorum:$missing" >&2
    exit 1
  fi
  sleep 0.5
done
