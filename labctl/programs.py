"""The programs labctl runs, and the Debian package each comes in.

labctl installs as a Python tool (pipx, uv tool, a wheel), which brings none of the
programs a few commands run: cfssl for one PKI backend; ipmi_sim, snmpd, ssh and
iproute2 for the simulated lab. When one is missing, the command says which Debian
package to install instead of failing with "No such file or directory".
scripts/setup.sh installs every one of them (a test keeps the two lists in step).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path, PurePath

from labctl.errors import LabctlError

PACKAGES = {
    "cfssl": "golang-cfssl",
    "ipmi_sim": "openipmi",
    "snmpd": "snmpd",
    "snmpget": "snmp",
    "ssh": "openssh-client",
    "sshd": "openssh-server",
    "ip": "iproute2",
    "nsenter": "util-linux",
    "useradd": "passwd",
    "sudo": "sudo",
    "vtysh": "frr",
    "dnsmasq": "dnsmasq-base",
    "qemu-system-x86_64": "qemu-system-x86",
    "ignition-validate": "ignition",
}

# BIRD 1.6 (Debian package bird, which conflicts with bird2) is unpacked here by
# scripts/setup.sh rather than installed; LABCTL_CALICO_BIRD overrides it.
BIRD1 = "/opt/labctl/bird-1.6.8/usr/sbin/bird"

# calico-node (Felix, confd) and the CNI plugins scripts/build-calico.sh builds from
# Calico's source at this commit (v3.32.1), with confd's files and Calico's manifest.
CALICO_COMMIT = "0ca9d1b93644778cafdf1812f3dda02ac0c361e8"


def calico_build_dir(environ: Mapping[str, str], uid: int) -> Path:
    """Where scripts/build-calico.sh keeps its build (its ``--print-dir``): under
    ``LABCTL_CALICO_CACHE``, else /var/cache/labctl/calico for root, else the user's cache."""
    root = environ.get("LABCTL_CALICO_CACHE")
    if not root:
        home_cache = environ.get("XDG_CACHE_HOME") or f"{environ.get('HOME', '')}/.cache"
        root = "/var/cache/labctl/calico" if uid == 0 else f"{home_cache}/labctl/calico"
    return Path(root) / CALICO_COMMIT


def missing(program: str, why: str = "") -> str:
    """`PROGRAM is not installed[ (WHY)]; Debian package PACKAGE (apt-get install PACKAGE)`."""
    name = PurePath(program).name
    package = PACKAGES.get(name)
    because = f" ({why})" if why else ""
    if package is None:
        return f"{name} is not installed{because}"
    return (
        f"{name} is not installed{because}; it is in the Debian package {package} "
        f"(apt-get install {package})"
    )


def require(program: str, why: str = "") -> str:
    """The program's path (a name is looked up on PATH), or an error naming its package."""
    found = shutil.which(program)
    if found is None:
        raise LabctlError(missing(program, why))
    return found
