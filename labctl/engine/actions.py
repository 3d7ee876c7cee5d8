"""Actions: small immutable records of one thing to make true on one target.

Layers produce them (pure); the executor hands each to the applier for its
``kind`` (``engine/appliers.py``), which carries it out through a driver. Each
has a stable ``key`` (what it is about: the same file on the same host has the
same key across runs) and a ``fingerprint`` (what it wants: changes when the
content, mode or command changes), which the journal records.

Two class attributes tell the executor how to treat a kind: ``remembered``
(it cannot be read back from the target, so the journal's word that it ran
with the same fingerprint is what makes a re-run skip it) and ``retried``
(a transient driver error is worth another attempt; a wait has its own
deadline instead).

A file that holds secrets (a BGP password) carries its masked text as
``content`` and a ``Fill``: the secrets it holds, by reference, and its
renderer with two secret functions, the masking one (the plan's text) and the
resolving one (the file's, from the values). Both texts come from the same
renderer, so no renderer tells a value from its stand-in. The SSH applier
writes it filled in; the plan, its JSON and the journal only ever see the
references (``labctl/secrets/box.py``).
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

if TYPE_CHECKING:
    from labctl.inventory.model import SecretRef


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SecretUse:
    """A secret a step needs: its reference, and where the inventory names it (for errors)."""

    ref: SecretRef
    used_at: str  # e.g. cluster.calico.peers[0].password


# A renderer's secret function (render/bgp_common.py's ``SecretFn``); the engine only
# hands one to the renderer it came with.
S = TypeVar("S")


@dataclass(frozen=True)
class Fill(Generic[S]):
    """How a file is written: masked for the plan, with its secrets' values for the device."""

    uses: tuple[SecretUse, ...]
    # The renderer, given a secret function: pure.
    render: Callable[[S], str] = field(compare=False)
    # The secret function that writes each secret's stand-in (never its value).
    masking: S = field(compare=False)
    # What makes the secret function that writes each value, from the values by reference.
    resolving: Callable[[Callable[[SecretRef], str]], S] = field(compare=False)

    def masked(self) -> bytes:
        """The text a plan holds and prints: the renderer with the masking function."""
        return self.render(self.masking).encode()

    def text(self, values: dict[SecretRef, str]) -> bytes:
        """The text the device gets (called by the applier that writes the file, never
        while planning or printing): the same renderer with the resolving function."""
        return self.render(self.resolving(values.__getitem__)).encode()


@dataclass(frozen=True)
class PutFile:
    """``path`` on ``host`` holds exactly ``content`` with ``mode`` (and ``owner``)."""

    host: str
    path: str
    content: bytes = field(repr=False)
    mode: int = 0o644
    owner: str | None = None
    secret: bool = False  # content never shown in plans or diffs
    # The file holds secrets: ``content`` is its masked text, this writes the real one.
    fill: Fill[Any] | None = None

    kind: ClassVar[str] = "put-file"
    remembered: ClassVar[bool] = False
    retried: ClassVar[bool] = True

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.host}:{self.path}"

    @property
    def secrets(self) -> tuple[SecretUse, ...]:
        return self.fill.uses if self.fill is not None else ()

    @property
    def content_sha256(self) -> str:
        """Of ``content``: for a file with secrets, of its masked text."""
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
            **_secrets_dict(self.secrets),
        }


@dataclass(frozen=True)
class Run:
    """Run ``argv`` on ``host``. Not observable, so the journal remembers it ran."""

    host: str
    argv: tuple[str, ...]
    timeout: float = 120.0
    # Re-run when any of these change (e.g. the hash of the file a restart follows).
    triggers: tuple[str, ...] = ()
    # What people are shown instead of the argv (a script's text says little in a
    # progress line); the argv stays in the plan's JSON.
    what: str = ""
    # Re-run when any of these secrets' values change (a restart that follows a file
    # holding them): the executor adds their sealed digest to the fingerprint.
    secrets: tuple[SecretUse, ...] = ()

    kind: ClassVar[str] = "run"
    remembered: ClassVar[bool] = True
    retried: ClassVar[bool] = True

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.host}:{shlex.join(self.argv)}"

    @property
    def fingerprint(self) -> str:
        return _digest(self.argv, self.triggers)

    def describe(self) -> str:
        return f"run {self.what or shlex.join(self.argv)}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "host": self.host,
            "argv": list(self.argv),
            "timeout": self.timeout,
            "triggers": list(self.triggers),
            "what": self.what,
            **_secrets_dict(self.secrets),
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

    kind: ClassVar[str] = "wait-for"
    remembered: ClassVar[bool] = False
    retried: ClassVar[bool] = False

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
class Check:
    """``argv`` on ``host`` must exit 0; it is run on every run and changes nothing.

    For conditions to hold before a change is made (a data directory belongs to
    this cluster): unlike ``WaitFor`` it does not wait, and its failure carries
    the command's own words (stderr). The command must only read.
    """

    host: str
    argv: tuple[str, ...]
    what: str
    timeout: float = 60.0

    kind: ClassVar[str] = "check"
    remembered: ClassVar[bool] = False
    retried: ClassVar[bool] = False

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.host}:{shlex.join(self.argv)}"

    @property
    def fingerprint(self) -> str:
        return _digest(self.argv)

    def describe(self) -> str:
        return f"check {self.what}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "host": self.host, "argv": list(self.argv), "what": self.what}


@dataclass(frozen=True)
class SetPower:
    """Server ``host`` is powered ``state`` (on / off), or is cycled (cycle).

    ``off`` and ``cycle`` take a server down: the BMC applier runs them one at a
    time and only when the quorum guard allows.
    """

    host: str
    state: str

    kind: ClassVar[str] = "set-power"
    remembered: ClassVar[bool] = False
    retried: ClassVar[bool] = True

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

    kind: ClassVar[str] = "set-boot-device"
    remembered: ClassVar[bool] = False
    retried: ClassVar[bool] = True

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
    """Work on the operator's machine (target ``local``), looked up by ``name``.

    The local applier finds the work registered under ``name`` (minting
    certificates is ``pki.mint``): its inputs and outputs are local files, and
    the work itself says whether it changed anything and, in a dry run, why it
    would. ``subject`` is what the work is about when one kind of work is done
    for several things in a run (``etcd.promote`` of one member, then another).
    """

    name: str
    detail: str
    inputs_digest: str  # changes when what the step works from changes
    host: str = "local"
    subject: str = ""

    kind: ClassVar[str] = "local"
    remembered: ClassVar[bool] = False
    retried: ClassVar[bool] = True

    @property
    def key(self) -> str:
        about = f":{self.subject}" if self.subject else ""
        return f"{self.kind}:{self.name}{about}"

    @property
    def fingerprint(self) -> str:
        return _digest(self.inputs_digest)

    def describe(self) -> str:
        return self.detail

    def as_dict(self) -> dict[str, Any]:
        about = {"subject": self.subject} if self.subject else {}
        return {
            "kind": self.kind,
            "host": self.host,
            "name": self.name,
            "detail": self.detail,
            **about,
        }


def _secrets_dict(uses: tuple[SecretUse, ...]) -> dict[str, Any]:
    """Where a step's secrets come from, for the plan's JSON (never what they are)."""
    if not uses:
        return {}
    return {"secrets": [{"used_at": u.used_at, "from": u.ref.describe()} for u in uses]}


Action = PutFile | Run | WaitFor | Check | SetPower | SetBootDevice | LocalStep


def ssh_answers(host: str, deadline: float) -> WaitFor:
    """The first step of a layer's work on ``host``: wait until it answers SSH."""
    return WaitFor(host, (), deadline=deadline, interval=2.0, what="SSH to answer")
