#!/usr/bin/env bash
# Builds the Kubernetes binaries labctl runs (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kube-proxy, kubectl) from the k8s.io/kubernetes Go module pinned in
# tools/kubernetes/go.mod, because no package registry the project reaches ships them.
# The result lands in a cache keyed by version and is reused: a second run builds nothing,
# and a cache that lacks only some commands (one added to COMMANDS later) gets just those.
#
#   scripts/build-kubernetes.sh            # build (or reuse) the pinned version
#   scripts/build-kubernetes.sh --print-dir # print the cache folder and exit
#
# LABCTL_KUBE_CACHE overrides the cache root (default /var/cache/labctl/kubernetes as
# root, ~/.cache/labctl/kubernetes otherwise).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODDIR="$ROOT/tools/kubernetes"
COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

log() { printf '[build-kubernetes] %s\n' "$*" >&2; }

version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$MODDIR/go.mod")
[ -n "$version" ] || { log "no 'require k8s.io/kubernetes' line in $MODDIR/go.mod"; exit 2; }

if [ -n "${LABCTL_KUBE_CACHE:-}" ]; then
  cache_root=$LABCTL_KUBE_CACHE
elif [ "$(id -u)" -eq 0 ]; then
  cache_root=/var/cache/labctl/kubernetes
else
  cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/labctl/kubernetes
fi
dest="$cache_root/$version"

if [ "${1:-}" = "--print-dir" ]; then
  echo "$dest"
  exit 0
fi

# The stamp holds the hash of go.mod and go.sum: the same pins mean the same binaries.
want=$(cat "$MODDIR/go.mod" "$MODDIR/go.sum" | sha256sum | cut -d' ' -f1)
todo=("${COMMANDS[@]}")
if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$want" ]; then
  todo=()
  for c in "${COMMANDS[@]}"; do [ -x "$dest/bin/$c" ] || todo+=("$c"); done
  [ "${#todo[@]}" -eq 0 ] && { log "Kubernetes $version already built in $dest"; exit 0; }
fi

# Exit 3: no Go new enough here (setup.sh goes on without Kubernetes and says so).
need_go=$(awk '$1 == "go" {print $2; exit}' "$MODDIR/go.mod")
if ! command -v go >/dev/null; then
  log "Go is not installed; Kubernetes $version needs Go $need_go or newer to build"
  exit 3
fi
have_go=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$need_go" "$have_go" | sort -V | head -n1)" != "$need_go" ]; then
  log "Go $have_go is too old: Kubernetes $version needs Go $need_go or newer to build"
  exit 3
fi

major=${version#v}; major=${major%%.*}
minor=${version#v*.}; minor=${minor%%.*}
# The version the binaries report (/version, the Node's kubeletVersion) comes from these
# variables; without them every component would call itself v0.0.0-master.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

tmp="$cache_root/.$version.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"
log "building Kubernetes $version (${todo[*]}) into $dest; this takes a while"
start=$(date +%s)
pkgs=()
for c in "${todo[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
(
  cd "$MODDIR"
  CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$tmp/bin/" "${pkgs[@]}"
)
if [ "${#todo[@]}" -lt "${#COMMANDS[@]}" ]; then
  # Same pins, some commands missing: add them beside the others (a rename each, so a
  # lab running the cached binaries and the images made from them is left alone).
  for c in "${todo[@]}"; do mv "$tmp/bin/$c" "$dest/bin/$c"; done
else
  echo "$want" > "$tmp/.stamp"
  # The images made from the binaries stay: labctl/sim/images.py keeps its own stamp of
  # the binaries' hashes and remakes them if they changed.
  [ -d "$dest/images" ] && mv "$dest/images" "$tmp/images"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  trap - EXIT
fi
log "built Kubernetes $version (${todo[*]}) in $(( $(date +%s) - start )) s: $(du -sh "$dest" | cut -f1) in $dest"
