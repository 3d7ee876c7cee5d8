#!/bin/sh
# Each unit started if it is not running; the wait ends once all of them run (one
# round trip per node, however many OSDs it has). Arguments: the units.
# All of them running (a converged run's case) costs one systemctl call, which prints
# one state per unit; otherwise each one not running is started and asked again.

if ! systemctl is-active "$@" | grep -qvx active; then
  exit 0
fi
ok=0
for unit in "$@"; do
  systemctl is-active -q "$unit" || systemctl start "$unit"
  systemctl is-active -q "$unit" || ok=1
done
exit $ok
