#!/usr/bin/env bash
# Builds coreos-installer, the program a Fedora CoreOS live system installs itself with,
# from its Rust crate at a pinned version (no package registry the project reaches ships
# it), so that the options labctl renders for a Fedora CoreOS install are run against
# the real program (tests/integration/test_coreos_installer.py). Beside the binary it
# keeps the crate's own scripts/coreos-installer-service, the script coreos-installer.service
# runs on the live system to turn the kernel command line and /etc/coreos/installer.d
# into `coreos-installer install` options. The result lands in a cache keyed by version
# and is reused: a second run builds nothing.
#
#   scripts/build-coreos-installer.sh            # build (or reuse) the pinned version
#   scripts/build-coreos-installer.sh --print-dir # print the cache folder and exit
#
# LABCTL_COREOS_INSTALLER_CACHE overrides the cache root (default
# /var/cache/labctl/coreos-installer as root, ~/.cache/labctl/coreos-installer otherwise).
# Exit 3: no cargo here (setup.sh goes on without it and says so).
set -euo pipefail

VERSION=0.27.0

log() { printf '[build-coreos-installer] %s\n' "$*" >&2; }

if [ -n "${LABCTL_COREOS_INSTALLER_CACHE:-}" ]; then
  cache_root=$LABCTL_COREOS_INSTALLER_CACHE
elif [ "$(id -u)" -eq 0 ]; then
  cache_root=/var/cache/labctl/coreos-installer
else
  cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/labctl/coreos-installer
fi
dest="$cache_root/$VERSION"

if [ "${1:-}" = "--print-dir" ]; then
  echo "$dest"
  exit 0
fi

if [ -x "$dest/bin/coreos-installer" ] && [ -x "$dest/libexec/coreos-installer-service" ]; then
  log "coreos-installer $VERSION already built in $dest"
  exit 0
fi
if ! command -v cargo >/dev/null; then
  log "cargo is not installed; coreos-installer $VERSION is built from its crate with cargo"
  exit 3
fi

tmp="$cache_root/.$VERSION.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/libexec"
log "building coreos-installer $VERSION into $dest; this takes a while"
start=$(date +%s)
# --locked: the crate's own Cargo.lock, so the same version is the same build.
nice cargo install --quiet --locked --version "$VERSION" --root "$tmp" coreos-installer
# The crate's source, as cargo unpacked it, holds the live system's service script.
src=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 1 -mindepth 1 -type d \
  -exec test -d "{}/coreos-installer-$VERSION" \; -print -quit)
[ -n "$src" ] || { log "cargo left no source of coreos-installer-$VERSION"; exit 2; }
install -m 0755 "$src/coreos-installer-$VERSION/scripts/coreos-installer-service" "$tmp/libexec/"
rm -f "$tmp/.crates.toml" "$tmp/.crates2.json"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
log "built coreos-installer $VERSION in $(( $(date +%s) - start )) s: $(du -sh "$dest" | cut -f1) in $dest"
