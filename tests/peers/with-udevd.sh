#!/bin/sh
# Runs a command beside a real systemd-udevd that has no rules, in this process's own
# mount namespace (run it under `unshare --mount --propagation private`): coreos-installer
# refuses to run without udevd's control socket (it waits on `udevadm settle` after it
# rereads the partition table). A private tmpfs over /run holds the socket, and empty ones
# over the rules directories keep udevd from acting on any device of the shared /dev.
# The udevd is stopped by its pid when the command ends; the command's status is returned.
set -u
mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /etc/udev/rules.d \
  && mount -t tmpfs tmpfs /usr/lib/udev/rules.d || exit 125
/lib/systemd/systemd-udevd 2>/dev/null &
udevd=$!
i=0
while [ ! -e /run/udev/control ] && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
rc=0
"$@" || rc=$?
kill "$udevd"
wait "$udevd"
exit "$rc"
