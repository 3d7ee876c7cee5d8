#!/bin/sh
# Written by labctl (pods runtime): cgroups for runc.
set -e
# The cgroup hierarchies, as /proc/self/cgroup lists them, when none are mounted (the
# same lines as kubelet-shared-kernel-wrapper.sh's; a test keeps them so).
if ! grep -q ' cgroup' /proc/self/mounts; then
  mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
  while IFS=: read -r _ controllers _; do
    if [ -z "$controllers" ]; then
      mkdir -p /sys/fs/cgroup/unified
      mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
    else
      dir=/sys/fs/cgroup/${controllers#name=}
      opts=$controllers
      case $controllers in name=*) opts=none,$controllers ;; esac
      mkdir -p "$dir"
      mount -t cgroup -o "$opts" cgroup "$dir"
    fi
  done < /proc/self/cgroup
fi
# containerd puts every container's cgroup at /k8s.io/ID of the host's tree; a
# node's power-off leaves them behind, empty. rmdir removes only empty ones.
for d in /sys/fs/cgroup/*/k8s.io/*/; do rmdir "$d" 2>/dev/null || true; done
exec "$@"
