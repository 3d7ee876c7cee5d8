"""The Ceph driver's two ways of asking: JSON for reads, a plain command for changes.

``labctl reset`` marks OSDs out, purges them and removes monitors; Ceph answers those
with a sentence (``marked out osd.2.``) even under ``-f json``, which the JSON read
took for a monitor that did not answer (found on the second lab's reset). Here a
stand-in node answers as Ceph 16.2 does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from labctl.drivers.ceph import CephCli, CephMon
from labctl.errors import LabctlError


@dataclass
class Done:
    exit_code: int
    stdout: bytes
    stderr: bytes = b""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Node:
    """Ceph's answers: ``osd out`` prints a sentence, ``safe-to-destroy`` says by exit."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    def run(self, argv: list[str], check: bool = False, timeout: float = 0) -> Done:
        self.asked.append(argv)
        if "out" in argv:
            return Done(0, b"marked out osd.2. \n")
        if "safe-to-destroy" in argv:
            return Done(16, b"", b"Error EBUSY: OSD(s) 2 have 33 pgs currently mapped to them.")
        return Done(0, b'{"quorum_names": ["ada"]}')


class Connector:
    def __init__(self, node: Node) -> None:
        self.node = node

    def ssh(self, host: str) -> Any:
        return self.node

    def close(self) -> None:
        pass


def cli() -> tuple[CephCli, Node]:
    node = Node()
    return CephCli(Connector(node), [CephMon("ada", ("ceph",))]), node


def test_a_change_is_asked_without_json_and_its_sentence_returned() -> None:
    ceph, node = cli()
    assert ceph.command("osd", "out", "2").strip() == "marked out osd.2."
    assert node.asked == [["ceph", "--connect-timeout", "10", "osd", "out", "2"]]
    with pytest.raises(LabctlError, match="did not answer JSON"):
        ceph.json("osd", "out", "2")


def test_a_refusal_is_said_with_cephs_own_reason() -> None:
    ceph, _ = cli()
    with pytest.raises(LabctlError, match=r"exited 16 \(Error EBUSY: OSD\(s\) 2 have 33 pgs"):
        ceph.command("osd", "safe-to-destroy", "2")


def test_reads_still_decode_json() -> None:
    ceph, node = cli()
    assert ceph.json("quorum_status") == {"quorum_names": ["ada"]}
    assert node.asked[-1][-2:] == ["-f", "json"]
