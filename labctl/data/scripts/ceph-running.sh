#!/bin/sh
# Each unit started if it is not running; the wait ends once all of them run (one
# round trip per node, however many OSDs it has). Arguments: the units.

ok=0
for unit in "$@"; do
  systemctl is-active -q "$unit" || systemctl start "$unit"
  systemctl is-active -q "$unit" || ok=1
done
exit $ok
