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
# containerd and runc for the kubelets of the simulated lab, and the reference CNI
# plugins for the pod network that stands in for calico-node's; gcc and libc6-dev
# build the pause image's static binary (labctl/sim/images.py); iptables (nft backend)
# is copied into kube-proxy's image from this machine (labctl/sim/images.py); dig asks
# the cluster's DNS in the end-to-end tests; pkg-config, libssl-dev and libzstd-dev
# are what coreos-installer's crate links against (scripts/build-coreos-installer.sh);
# grub-pc-bin and grub-efi-amd64-bin are GRUB's BIOS and EFI images, the stand-in OS image's
# boot loaders, and dosfstools and mtools make its EFI system partition (labctl/sim/osimage.py);
# ipset is what Felix's iptables data plane programs its sets with (tests/integration/test_calico_felix.py),
# and conntrack what Felix deletes a removed pod's flows with (Felix on the nodes, docs/calico.md);
# the prometheus-* packages are the monitoring layer's programs (docs/monitoring.md).
DEBIAN_PACKAGES=(
  python3-venv openipmi ipmitool snmpd snmp openssh-server openssh-client
  golang-cfssl etcd-server etcd-client openssl iproute2 procps util-linux
  debootstrap sudo passwd git containerd runc containernetworking-plugins frr frr-snmp
  iputils-ping
  ceph-mon ceph-mgr ceph-osd ceph-mds ceph-fuse ceph-common ceph-base
  qemu-system-x86 qemu-utils ipxe ipxe-qemu dnsmasq-base ignition ovmf udev
  linux-image-amd64 busybox-static e2fsprogs cpio gpg gpgv grub-pc-bin
  grub-efi-amd64-bin dosfstools mtools
  gcc libc6-dev iptables ipset conntrack bind9-dnsutils podman
  pkg-config libssl-dev libzstd-dev
  shellcheck
  prometheus prometheus-alertmanager prometheus-snmp-exporter prometheus-node-exporter
  prometheus-ipmi-exporter prometheus-bird-exporter
)

# BIRD 1.6.8, the BIRD calico-node embeds, stands in for calico-node on the
# simulated nodes. Its Debian package (`bird`) conflicts with bird2, so it is
# never installed: its .deb is fetched with apt-get download and unpacked here
# (dpkg-deb -x), where labctl looks for it (LABCTL_CALICO_BIRD overrides).
BIRD1_VERSION=1.6.8
BIRD1_DIR=/opt/labctl/bird-$BIRD1_VERSION

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

install_bird1() {
  [ -x "$BIRD1_DIR/usr/sbin/bird" ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "BIRD $BIRD1_VERSION is not unpacked in $BIRD1_DIR; run this script as root once"
    return 0
  fi
  log "unpacking BIRD $BIRD1_VERSION (Debian package bird) into $BIRD1_DIR"
  local tmp
  tmp=$(mktemp -d)
  chown _apt "$tmp" 2>/dev/null || true  # apt downloads as its _apt user
  (cd "$tmp" && apt-get download -qq "bird=$BIRD1_VERSION*" >/dev/null)
  mkdir -p "$BIRD1_DIR"
  dpkg-deb -x "$tmp"/bird_*.deb "$BIRD1_DIR"
  rm -rf "$tmp"
  "$BIRD1_DIR/usr/sbin/bird" --version 2>&1 | grep -q "$BIRD1_VERSION"
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
    -c "$ROOT/requirements.lock" -e "${ROOT}[dev]"
  echo "$want" > "$stamp"
}

# The stand-in installer the simulated lab's VM nodes boot (docs/os.md), built from
# this machine's packages once, into a cache keyed by their hashes.
build_installer() {
  [ "$(id -u)" -eq 0 ] || return 0
  "$VENV/bin/python" -m labctl.sim.installer >/dev/null
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
  [ "$rc" -eq 0 ] || return "$rc"
  # What `go mod tidy` of the pinned module reads beyond what the build downloaded (the
  # tests of its dependencies: gonum, moby's api), into the module cache, so labctl's own
  # builder resolves the pinned release without the network (tests/integration/
  # test_kube_build.py; on a fresh machine it found only the build's modules). -diff
  # writes no file; its exit is 1 when the tracked go.sum holds more than tidy would.
  (cd "$ROOT/tools/kubernetes" && GOFLAGS=-mod=mod go mod tidy -diff >/dev/null) || true
  # The control-plane and pause images the simulated lab's kubelets run the static
  # pods from (labctl/sim/images.py), made from those binaries into the same cache.
  local version
  version=$(basename "$("$ROOT/scripts/build-kubernetes.sh" --print-dir)")
  "$VENV/bin/python" -m labctl.sim.images "$version" >/dev/null
}

# coreos-installer, the program Fedora CoreOS installs itself with, from its crate at a
# pinned version, once per machine (scripts/build-coreos-installer.sh), and the stand-in
# OS image it lays onto a disk (labctl/sim/osimage.py). Without cargo, the coreos-installer
# integration test fails until it is built, and says so.
build_coreos_installer() {
  [ "$(id -u)" -eq 0 ] || return 0
  local rc=0
  "$ROOT/scripts/build-coreos-installer.sh" || rc=$?
  if [ "$rc" -eq 3 ]; then
    log "going on without coreos-installer: tests/integration/test_coreos_installer.py will fail until it is built"
    return 0
  fi
  [ "$rc" -eq 0 ] || return "$rc"
  "$VENV/bin/python" -m labctl.sim.osimage >/dev/null
}

# Calico's node agent and CNI plugin, from Calico's source at a pinned commit, once per
# machine (scripts/build-calico.sh; LABCTL_CALICO_GIT names a clone where GitHub is not
# reachable). tests/integration/test_calico_confd.py runs its confd.
build_calico() {
  local rc=0
  "$ROOT/scripts/build-calico.sh" || rc=$?
  if [ "$rc" -eq 3 ]; then
    log "going on without calico-node: tests/integration/test_calico_confd.py will fail until it is built"
    return 0
  fi
  return "$rc"
}

# The other versions the test suite upgrades from and to (tests/e2e/test_second_lab.py
# starts at 1.35.4; the etcd upgrade tests go to 3.5.21), built the way an operator builds
# an inventory's version (`labctl kubernetes build`, `labctl etcd build`): once per
# machine, cached per version; a cached version costs about 2 s. LABCTL_SKIP_KUBE_BUILD=1
# skips the Kubernetes one with the pinned build.
build_test_versions() {
  [ "${LABCTL_SKIP_KUBE_BUILD:-}" = 1 ] || "$VENV/bin/labctl" kubernetes build --version 1.35.4
  "$VENV/bin/labctl" etcd build --version 3.5.21
}

install_debian_packages
install_bird1
install_python
# coreos-installer first: the installer's initrd carries it.
build_coreos_installer
build_installer
build_kubernetes
build_calico
build_test_versions
export PATH="$VENV/bin:$PATH"
