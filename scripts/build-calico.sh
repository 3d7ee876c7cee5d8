#!/usr/bin/env bash
# Builds Calico's node agent (calico-node: Felix, confd, the BIRD readiness checks) and
# its CNI plugin (calico, which is also calico-ipam) from Calico's own source at a pinned
# release commit, and keeps beside them, from the same commit, confd's templates and
# conf.d (what calico-node's image carries in /etc/calico/confd) and Calico's manifest
# with its native projectcalico.org/v3 definitions (manifests/calico-v3-crds.yaml). So the
# calico-resources layer's objects are read by the real consumer in the tests
# (tests/integration/test_calico_confd.py), not by labctl's own BIRD renderer.
#
# Why a git checkout and not the Go module proxy: the proxy refuses
# github.com/projectcalico/calico at the release tag and at its commit's pseudo-version
# (403), and the module zips it serves for other commits omit ./api, a nested module the
# go.mod replaces github.com/projectcalico/api with; the proxy refuses projectcalico/api
# at every version (docs/calico.md, "calico-node built here"). The dependencies come from
# the module proxy as usual (GOFLAGS=-mod=mod).
#
#   scripts/build-calico.sh             # build (or reuse) the pinned commit
#   scripts/build-calico.sh --print-dir # print the cache folder and exit
#
# LABCTL_CALICO_GIT: a git repository (bare or not) that holds the pinned commit; default
# https://github.com/projectcalico/calico.git, fetched at the tag.
# LABCTL_CALICO_CACHE overrides the cache root (default /var/cache/labctl/calico as
# root, ~/.cache/labctl/calico otherwise). The result is keyed by commit and reused.
# Exit 3: no Go new enough, or no source to build from.
set -euo pipefail

TAG=v3.32.1
COMMIT=0ca9d1b93644778cafdf1812f3dda02ac0c361e8
# Calico's image ships confd's files and its manifest; these are the ones labctl keeps.
KEEP_MANIFEST=manifests/calico-v3-crds.yaml

log() { printf '[build-calico] %s\n' "$*" >&2; }

if [ -n "${LABCTL_CALICO_CACHE:-}" ]; then
  cache_root=$LABCTL_CALICO_CACHE
elif [ "$(id -u)" -eq 0 ]; then
  cache_root=/var/cache/labctl/calico
else
  cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/labctl/calico
fi
dest="$cache_root/$COMMIT"

if [ "${1:-}" = "--print-dir" ]; then
  echo "$dest"
  exit 0
fi

if [ -x "$dest/bin/calico-node" ] && [ -x "$dest/bin/calico" ] && [ -f "$dest/.stamp" ]; then
  log "Calico $TAG ($COMMIT) already built in $dest"
  exit 0
fi

if ! command -v go >/dev/null; then
  log "Go is not installed; Calico $TAG is built with Go"
  exit 3
fi

tmp="$cache_root/.$COMMIT.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src" "$tmp/bin"

# The source, at exactly the pinned commit, whatever the repository calls it.
git_dir=${LABCTL_CALICO_GIT:-https://github.com/projectcalico/calico.git}
if [ -d "$git_dir" ]; then
  if ! git --git-dir="$(git -C "$git_dir" rev-parse --absolute-git-dir 2>/dev/null || echo "$git_dir")" \
      archive --format=tar "$COMMIT" | tar -x -C "$tmp/src"; then
    log "$git_dir does not hold Calico's commit $COMMIT ($TAG)"
    exit 3
  fi
else
  if ! git -C "$tmp/src" init -q || \
     ! git -C "$tmp/src" fetch -q --depth 1 "$git_dir" "refs/tags/$TAG"; then
    log "cannot fetch $TAG from $git_dir; set LABCTL_CALICO_GIT to a clone of projectcalico/calico"
    exit 3
  fi
  got=$(git -C "$tmp/src" rev-parse 'FETCH_HEAD^{commit}')
  [ "$got" = "$COMMIT" ] || { log "$TAG at $git_dir is $got, not $COMMIT"; exit 2; }
  git -C "$tmp/src" checkout -q FETCH_HEAD
  rm -rf "$tmp/src/.git"
fi

need_go=$(awk '$1 == "go" {print $2; exit}' "$tmp/src/go.mod")
have_go=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$need_go" "$have_go" | sort -V | head -n1)" != "$need_go" ]; then
  log "Go $have_go is too old: Calico $TAG needs Go $need_go or newer to build"
  exit 3
fi

# The version every Calico binary reports (calico-node -v), as Calico's lib.Makefile sets it.
ldflags="-s -w -X github.com/projectcalico/calico/pkg/buildinfo.Version=$TAG"
ldflags+=" -X github.com/projectcalico/calico/pkg/buildinfo.GitRevision=$COMMIT"
ldflags+=" -X github.com/projectcalico/calico/pkg/buildinfo.BuildDate=1970-01-01T00:00:00+0000"

log "building Calico $TAG ($COMMIT) into $dest; this takes a while"
start=$(date +%s)
# CGO off: the build Calico makes for architectures without its BPF data plane (libbpf
# is linked only with cgo); the iptables/nftables data plane and confd are the same.
(
  cd "$tmp/src"
  CGO_ENABLED=0 GOFLAGS=-mod=mod nice -n 19 go build -trimpath -buildvcs=false \
    -ldflags "$ldflags" -o "$tmp/bin/" ./node/cmd/calico-node ./cni-plugin/cmd/calico
)
# One binary, two names, as Calico's CNI installer lays them down.
ln -s calico "$tmp/bin/calico-ipam"
mkdir -p "$tmp/confd" "$tmp/manifests"
cp -r "$tmp/src/confd/etc/calico/confd/conf.d" "$tmp/src/confd/etc/calico/confd/templates" "$tmp/confd/"
cp "$tmp/src/$KEEP_MANIFEST" "$tmp/manifests/"
rm -rf "$tmp/src"
printf '%s %s\n' "$TAG" "$COMMIT" > "$tmp/.stamp"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
log "built Calico $TAG in $(( $(date +%s) - start )) s: $(du -sh "$dest" | cut -f1) in $dest"
