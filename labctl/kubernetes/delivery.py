"""The Kubernetes binaries onto a node: what it has, and the operator's build where it differs.

No package a node's OS ships carries the kubelet, so labctl builds the binaries on the
operator's machine (``labctl kubernetes build``, labctl/kubernetes/builder.py) and this
module puts them into ``binary_dir`` on each node. A node is asked once what each
binary says it is (``NAME --version``); only a binary that is missing or another
version is sent, through the SSH driver's atomic write (a temp file beside the
target, renamed over it), and asked again afterwards. A node that already has the
version costs one round trip and sends nothing: a converged run stays fast, and a
simulated node, whose binary_dir is the build cache itself, is never written to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from labctl.data import shell
from labctl.drivers.ssh import SshSession
from labctl.errors import LabctlError
from labctl.kubernetes.build import build_command

# What each binary says it is: labctl/data/scripts/kubernetes-versions.sh.
VERSIONS = shell.body("kubernetes-versions")


@dataclass(frozen=True)
class Stale:
    """A binary the node must get, and what it has instead."""

    name: str
    have: str  # "missing", "unreadable" or the version it says

    def describe(self, want: str) -> str:
        if self.have in ("missing", "unreadable"):
            return f"{self.name} is {self.have}"
        return f"{self.name} is {self.have}, not {want}"


def stale_binaries(answer: str, names: list[str], want: str) -> list[Stale]:
    """The binaries whose line in VERSIONS' ``answer`` is not ``want``, in ``names``' order.

    Pure. A binary the answer does not mention counts as missing."""
    said: dict[str, str] = {}
    for line in answer.splitlines():
        name, _, version = line.strip().partition(" ")
        said[name] = version.strip()
    out = []
    for name in names:
        have = said.get(name, "-")
        if have == want:
            continue
        out.append(Stale(name, {"-": "missing", "?": "unreadable", "": "missing"}.get(have, have)))
    return out


def node_stale(ssh: SshSession, folder: str, names: list[str], want: str) -> list[Stale]:
    """Ask the node what each binary in ``folder`` is; the ones that are not ``want``."""
    answer = ssh.run(
        ["sh", "-c", VERSIONS, "labctl-kube-versions", folder, *names],
        label=f"asking the Kubernetes binaries in {folder} their version",
    ).text()
    return stale_binaries(answer, names, want)


def source_binary(source: Path, name: str, want: str) -> bytes:
    """The operator's build of ``name``, or a sentence saying how to make it."""
    path = source / name
    if not path.is_file():
        raise LabctlError(
            f"{path} is missing: the node needs Kubernetes {want}'s {name} and labctl sends "
            f"it from this machine's build; run `{build_command(want)}`"
        )
    return path.read_bytes()


def deliver(ssh: SshSession, folder: str, stale: list[Stale], source: Path, want: str) -> list[str]:
    """Send each stale binary from ``source`` into ``folder`` (0755, root), then check the
    node now says ``want`` for every one; the names sent."""
    for item in stale:
        content = source_binary(source, item.name, want)
        ssh.put_file(f"{folder}/{item.name}", content, mode=0o755, owner="root:root")
    names = [item.name for item in stale]
    still = node_stale(ssh, folder, names, want)
    if still:
        said = "; ".join(s.describe(want) for s in still)
        raise LabctlError(f"{ssh.target.name}: after sending the binaries, {said}")
    return names
