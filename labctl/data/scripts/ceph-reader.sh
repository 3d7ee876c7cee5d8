#!/bin/sh
# A Ceph CLI that asks through the node's running monitor container when there is one:
# `ENGINE exec` into it (it mounts the same /etc/ceph and /var/lib/ceph, so the same
# conf and keyrings) costs a few tens of ms, where `ENGINE run --rm` of the Ceph image
# makes a container first (0.6-0.9 s before the CLI starts). With no such container
# running (the monitor stopped, its node reinstalled, a node without a monitor) the
# image's own `run --rm` answers, as it did before. The exec runs PROGRAM itself, no
# shell: the Reef image has no /bin/sh.
# A shell function, so a node script that asks many times (`$ceph`, word-split) calls it
# like a command: `ceph_reader ENGINE CONTAINER PROGRAM N`, then the N words of the
# `run --rm` argv that starts PROGRAM, then PROGRAM's own arguments. Its exit status is
# PROGRAM's. render.reader runs it alone, followed by `ceph_reader "$@"`.

ceph_reader() {
  _reader_engine=$1 _reader_container=$2 _reader_program=$3 _reader_n=$4
  shift 4
  if [ "$("$_reader_engine" inspect --format '{{.State.Running}}' "$_reader_container" \
    2>/dev/null)" = true ]; then
    shift "$_reader_n"
    "$_reader_engine" exec --interactive "$_reader_container" "/usr/bin/$_reader_program" "$@"
    return
  fi
  "$@"
}
