#!/usr/bin/env bash
# Pins this module to another Kubernetes release: `tools/kubernetes/pin.sh 1.37.2`.
# k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/client-go, ...)
# at v0.0.0 and replaces them with ./staging paths that a module download lacks, so
# each is pinned here to v0.<minor>.<patch>, the release cut with it. Then go mod tidy
# fills go.sum; scripts/build-kubernetes.sh builds the new version into its own cache.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
version=${1#v}
[[ $version =~ ^1\.[0-9]+\.[0-9]+$ ]] || { echo "usage: $0 1.MINOR.PATCH" >&2; exit 2; }
staging_version="v0.${version#1.}"
mod=$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$version" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
[ -f "$mod" ] || { echo "the Go module proxy served no go.mod for k8s.io/kubernetes@v$version" >&2; exit 1; }
{
  sed -n '1,/^module /{/^module /!p}' go.mod
  echo "module labctl.invalid/tools/kubernetes"
  echo
  echo "go $(awk '$1 == "go" {print $2; exit}' "$mod")"
  echo
  echo "require k8s.io/kubernetes v$version"
  echo
  echo "replace ("
  awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$mod" |
    while read -r m; do printf '\t%s => %s %s\n' "$m" "$m" "$staging_version"; done
  echo ")"
} > go.mod.new
mv go.mod.new go.mod
GOFLAGS=-mod=mod go mod tidy
echo "pinned Kubernetes v$version (staging modules $staging_version); now set cluster.kubernetes.version"
