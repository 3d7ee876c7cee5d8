#!/bin/sh
# Written by labctl (simulated runtimes): cgroups visible, kernel tunables as files.
set -e
if [ "${LABCTL_KUBELET_NS:-}" != 1 ]; then
  mkdir -p /var/lib/kubelet
  mountpoint -q /var/lib/kubelet || mount --bind /var/lib/kubelet /var/lib/kubelet
  mount --make-shared /var/lib/kubelet
  # The sim's systemctl starts enabled units at boot in name order, kubelet before
  # labctl-containerd, and restarts none: the kubelet exits when it finds no CRI
  # socket, so it waits for containerd's (up to 30 s) as After= would order it.
  # Waiting here, before the namespace is copied, also keeps the copy from catching
  # containerd's wrapper half-way through mounting the cgroup hierarchies.
  i=0
  while [ ! -S /run/containerd/containerd.sock ] && [ $i -lt 300 ]; do
    sleep 0.1; i=$((i + 1))
  done
  LABCTL_KUBELET_NS=1 exec unshare --mount --propagation unchanged /bin/sh "$0" "$@"
fi
# The cgroup hierarchies, as /proc/self/cgroup lists them, when none are mounted (the
# same lines as containerd-pods-wrapper.sh's; a test keeps them so).
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
# What the kubelet's container manager wants these to be (pkg/kubelet/cm); on a host
# shared by simulated nodes it finds them already so, in files bound over /proc/sys.
d=/run/labctl/kubelet-sysctl
mkdir -p $d
echo 1 > $d/vm.overcommit_memory
mount --bind $d/vm.overcommit_memory /proc/sys/vm/overcommit_memory
echo 0 > $d/vm.panic_on_oom
mount --bind $d/vm.panic_on_oom /proc/sys/vm/panic_on_oom
echo 10 > $d/kernel.panic
mount --bind $d/kernel.panic /proc/sys/kernel/panic
echo 1 > $d/kernel.panic_on_oops
mount --bind $d/kernel.panic_on_oops /proc/sys/kernel/panic_on_oops
echo 1000000 > $d/kernel.keys.root_maxkeys
mount --bind $d/kernel.keys.root_maxkeys /proc/sys/kernel/keys/root_maxkeys
echo 25000000 > $d/kernel.keys.root_maxbytes
mount --bind $d/kernel.keys.root_maxbytes /proc/sys/kernel/keys/root_maxbytes
exec "$@"
