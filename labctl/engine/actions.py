"""Actions: small immutable records of one thing to make true on one target.

Layers produce them (pure); the executor applies them through drivers. Each has
a stable ``key`` (what it is about: the same file on the same host has the same
key across runs) and a ``fingerprint`` (what it wants: changes when the content,
mode or command changes), which the journal records.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass, field
from typing import Any


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PutFile:
    """``path`` on ``host`` holds exactly ``content`` with ``mode`` (and ``owner``)."""

    host: str
    path: str
    content: bytes = field(repr=False)
    mode: int = 0o644
    owner: str | None = None
    secret: bool = False  # content never shown in plans or diffs

    kind = "put-file"

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.host}:{self.path}"

    @property
    def content_sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def fingerprint(self) -> str:
        return _digest(self.content_sha256, self.mode, self.owner)

    def describe(self) -> str:
        owner = f" {self.owner}" if self.owner else ""
        return f"write {self.path} ({len(self.content)} B, {self.mode:04o}{owner})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "host": self.host,
            "path": self.path,
            "sha256": self.content_sha256,
            "size": len(self.content),
            "mode": f"{self.mode:04o}",
            "owner": self.owner,
            "secret": self.secret,
        }


@dataclass(frozen=True)
class Run:
    """Run ``argv`` on ``host``. Not observable, so the journal remembers it ran."""

    host: str
    argv: tuple[str, ...]
    timeout: float = 120.0
    # Re-run when any of these change (e.g. the hash of the file a restart follows).
    triggers: tuple[str, ...] = ()

    kind = "run"

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.host}:{shlex.join(self.argv)}"

    @property
    def fingerprint(self) -> str:
        return _digest(self.argv, self.triggers)

    def describe(self) -> str:
        return f"run {shlex.join(self.argv)}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "host": self.host,
            "argv": list(self.argv),
            "timeout": self.timeout,
            "triggers": list(self.triggers),
        }


@dataclass(frozen=True)
class WaitFor:
    """Poll ``argv`` on ``host`` until it exits 0, for at most ``deadline`` seconds.

    With no ``argv``, until ``host`` answers SSH at all (a node that is booting).
    """

    host: str
    argv: tuple[str, ...]
    deadline: float = 60.0
    interval: float = 1.0
    what: str = ""

    kind = "wait-for"

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.host}:{shlex.join(self.argv)}"

    @property
    def fingerprint(self) -> str:
        return _digest(self.argv)

    def describe(self) -> str:
        return f"wait for {self.what or shlex.join(self.argv)} (up to {self.deadline:g} s)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "host": self.host,
            "argv": list(self.argv),
            "deadline": self.deadline,
        }


@dataclass(frozen=True)
class SetPower:
    """Server ``host`` is powered ``state`` (on / off), or is cycled (cycle)."""

    host: str
    state: str

    kind = "set-power"

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.host}"

    @property
    def fingerprint(self) -> str:
        return _digest(self.state)

    def describe(self) -> str:
        return f"power {self.state}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "host": self.host, "state": self.state}


@dataclass(frozen=True)
class SetBootDevice:
    """Server ``host`` boots next (or always) from ``device``."""

    host: str
    device: str
    persistent: bool = False

    kind = "set-boot-device"

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.host}"

    @property
    def fingerprint(self) -> str:
        return _digest(self.device, self.persistent)

    def describe(self) -> str:
        return f"boot from {self.device}{' (persistent)' if self.persistent else ' (next boot)'}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "host": self.host,
            "device": self.device,
            "persistent": self.persistent,
        }


@dataclass(frozen=True)
class LocalStep:
    """Work on the operator's machine (target ``local``), done by the layer's own handler.

    Minting certificates is the first example: its inputs and outputs are local
    files, and the handler says whether it changed anything.
    """

    name: str
    detail: str
    inputs_digest: str  # changes when what the step works from changes
    host: str = "local"

    kind = "local"

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def fingerprint(self) -> str:
        return _digest(self.inputs_digest)

    def describe(self) -> str:
        return self.detail

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "host": self.host, "name": self.name, "detail": self.detail}


Action = PutFile | Run | WaitFor | SetPower | SetBootDevice | LocalStep


def ssh_answers(host: str, deadline: float) -> WaitFor:
    """The first step of a layer's work on ``host``: wait until it answers SSH."""
    return WaitFor(host, (), deadline=deadline, interval=2.0, what="SSH to answer")
