#!/bin/sh
# The simulated lab's pods runtime: import the images its pods need into the node's
# containerd, from the build cache labctl/sim/images.py writes, unless it has them.
# $1 the folder of image archives; then FILE=IMAGE pairs (the archive, the name the
# manifests use). Waits up to 10 s for containerd to answer on its socket. The native
# snapshotter is the one CRI uses (a simulated node's /var is an overlay, which
# overlayfs cannot sit on).

dir=$1; shift
i=0
until ctr -n k8s.io version >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 100 ] || { echo "containerd does not answer on its socket" >&2; exit 3; }
  sleep 0.1
done
have=$(ctr -n k8s.io images ls -q)
for pair in "$@"; do
  file=${pair%%=*} image=${pair#*=}
  printf '%s\n' "$have" | grep -qxF "$image" && continue
  ctr -n k8s.io images import --snapshotter native "$dir/$file" >/dev/null
done
