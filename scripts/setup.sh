#!/usr/bin/env bash
# Shared set-up for scripts/demo and scripts/test: Debian packages (when root),
# a virtualenv in .venv, and labctl installed into it from the lock file.
# Idempotent: a second run installs nothing and takes about a second.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"

# Real peers the tests and the simulated lab run: BMC simulator and client,
# SNMP agent and client, sshd, cfssl, etcd, and the tools the sim lab needs;
# git for the pre-commit test (a lab repository, and pre-commit's clone of labctl);
# containerd and runc for the kubelets of the simulated lab.
DEBIAN_PACKAGES=(
  python3-venv openipmi ipmitool snmpd snmp openssh-server openssh-client
  golang-cfssl etcd-server etcd-client openssl iproute2 procps util-linux
  debootstrap sudo passwd git containerd runc
)

log() { printf '[setup] %s\n' "$*" >&2; }

install_debian_packages() {
  local missing=()
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]}"
    log "run as root, or: sudo apt-get install -y ${missing[*]}"
    exit 2
  fi
  log "installing Debian packages: ${missing[*]}"
  # Keep package installs from starting system daemons (snmpd, sshd, etcd) that
  # would hold ports; labctl starts its own on loopback or in namespaces.
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$created" -eq 1 ] && rm -f "$policy"
  return 0
}

install_python() {
  local stamp="$VENV/.labctl-installed"
  local want
  want=$(cat "$ROOT/pyproject.toml" "$ROOT/requirements.lock" | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv in .venv"
    python3 -m venv "$VENV"
  fi
  log "installing labctl and its locked dependencies into .venv"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    -c "$ROOT/requirements.lock" -e "$ROOT[dev]"
  echo "$want" > "$stamp"
}

# The Kubernetes binaries: built from the Go module proxy once per machine, into a
# cache keyed by version (scripts/build-kubernetes.sh); a second run builds nothing.
# LABCTL_SKIP_KUBE_BUILD=1 skips it on a machine that runs no Kubernetes test.
build_kubernetes() {
  [ "${LABCTL_SKIP_KUBE_BUILD:-}" = 1 ] && return 0
  local rc=0
  "$ROOT/scripts/build-kubernetes.sh" || rc=$?
  if [ "$rc" -eq 3 ]; then
    log "going on without the Kubernetes binaries: the kubernetes e2e test will fail until they are built"
    return 0
  fi
  return "$rc"
}

install_debian_packages
install_python
build_kubernetes
export PATH="$VENV/bin:$PATH"
