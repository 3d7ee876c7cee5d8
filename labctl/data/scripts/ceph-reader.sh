#!/bin/sh
# A Ceph CLI that asks through the node's running monitor container when there is one:
# `ENGINE exec` into it (it mounts the same /etc/ceph, so the same conf and admin
# keyring) costs a few tens of ms, where `ENGINE run --rm` of the Ceph image makes a
# container first (0.6-0.9 s before the CLI starts). With no such container running
# (the monitor stopped, its node reinstalled, another node's reader) the image's own
# `run --rm` answers, as it did before.
# Arguments: ENGINE CONTAINER PROGRAM N, then the N words of the `run --rm` argv that
# starts PROGRAM, then PROGRAM's own arguments.

engine=$1
container=$2
program=$3
n=$4
shift 4
if [ "$("$engine" inspect --format '{{.State.Running}}' "$container" 2>/dev/null)" = true ]; then
  shift "$n"
  exec "$engine" exec --interactive "$container" "/usr/bin/$program" "$@"
fi
exec "$@"
