#!/bin/sh
# The monitoring programs' own system users, made unless the node has them.
# Arguments: pairs of NAME UID; each user gets a group of its own with the same id, no
# home and no login shell. A container runs as the number and its files are owned by the
# name, so a name the node already gives another uid is refused, not used.

set -e
while [ $# -ge 2 ]; do
  if ! have=$(id -u "$1" 2>/dev/null); then
    useradd --system --uid "$2" --user-group --no-create-home --home-dir / \
      --shell /usr/sbin/nologin "$1"
  elif [ "$have" != "$2" ]; then
    echo "user $1 has uid $have on this node; the monitoring layer runs it as $2" >&2
    exit 1
  fi
  shift 2
done
