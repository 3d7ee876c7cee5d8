"""The etcd cluster's token: a new one for every formation, kept on the operator's machine.

etcd derives the cluster id and its initial members' ids from
``--initial-cluster-token`` and the peer URLs alone. With one token for every
formation of a lab (it was ``<cluster.name>-etcd``), a cluster formed again after
``labctl reset --all``, or restored from a snapshot, had the ids of the one before,
and a stale member holding the old data could talk to the new cluster as one of its
own. etcd's clustering guide asks for a unique token per cluster; this module gives
one.

The token is chosen once, by the etcd layer's first plan (local work
``etcd.token``), and kept in the state directory as ``etcd-token.json`` (written
whole to a temporary name and renamed, before any member is started with it, so a
run killed after the choice resumes with the same token). Every later run reads it,
so a converged run renders the same files and restarts nothing. When no token is
kept, the members' nodes are asked first (``data/scripts/etcd-token.sh``): a
token their data directories' labctl marker names (or, for data without a marker,
their environment file's, else the old ``<cluster.name>-etcd``) is the running
cluster's and is kept as it is, so a lab formed before this version, or whose
state directory was lost, goes on without a restart; only when no member holds
etcd data does a new cluster form, with a new token. ``labctl reset --all``
forgets the token when it wipes the members (``day2/apply.py``), and ``labctl sim
down`` when it removes the simulated lab's machines (``sim/lab.py``); ``labctl etcd
restore`` chooses a new one (a restored cluster is a new formation:
``etcd/restore.py``). Members that join a running cluster get its token.

A token is not a secret: it keeps clusters apart and authenticates nothing (the
members' mutual TLS does), so the file is plain JSON, 0644.

The decision (``decide``) and the record are plain; ``TokenWork`` and
``RestoreTokenWork`` are the local work that asks the nodes and writes the record.
The layer reads the token as the fact ``EtcdToken``.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Self

from labctl.data import shell
from labctl.engine.facts import FactPending
from labctl.errors import LabctlError
from labctl.files import write_atomic
from labctl.inventory.model import Inventory
from labctl.render import etcd as render

if TYPE_CHECKING:
    from labctl.engine.layer import LayerContext

RECORD_NAME = "etcd-token.json"
TOKEN = "etcd.token"  # the layer's local work: keep or choose the token
RESTORE_TOKEN = "etcd.restore-token"  # a restore's: a new token for the restored cluster
READ = shell.body("etcd-token")
# What a token may be: it is written to the members' environment files and handed to
# scripts as an argument; one read from a node that is anything else is refused.
GRAMMAR = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def legacy_token(inventory: Inventory) -> str:
    """The token of every formation before labctl chose one per formation."""
    return f"{inventory.cluster.name}-etcd"


def new_token(inventory: Inventory, entropy: str | None = None) -> str:
    """A token for a new formation: the lab's name and 48 random bits."""
    return f"{inventory.cluster.name}-etcd-{entropy or secrets.token_hex(6)}"


@dataclass(frozen=True)
class TokenRecord:
    """``etcd-token.json``: the token, when and why it was chosen, and the restore that
    chose it (empty for a formation by the layer)."""

    token: str
    chosen: str = ""  # UTC, ISO 8601
    why: str = ""
    restore: str = ""

    @classmethod
    def load(cls, state_dir: Path) -> TokenRecord | None:
        path = state_dir / RECORD_NAME
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        token = str(data.get("token", ""))
        if not GRAMMAR.fullmatch(token):
            raise LabctlError(
                f"{path} names the etcd token {token!r}, which is not a token "
                f"({GRAMMAR.pattern}); fix or remove the file"
            )
        return cls(token, str(data.get("chosen", "")), str(data.get("why", "")),
                   str(data.get("restore", "")))  # fmt: skip

    def save(self, state_dir: Path) -> None:
        """Written whole, fsynced and renamed into place: never half a record."""
        data = {"token": self.token, "chosen": self.chosen, "why": self.why}
        if self.restore:
            data["restore"] = self.restore
        write_atomic(state_dir / RECORD_NAME, (json.dumps(data, indent=2) + "\n").encode())


def forget(state_dir: Path) -> None:
    """The next formation chooses a new token (``labctl reset --all``)."""
    (state_dir / RECORD_NAME).unlink(missing_ok=True)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class EtcdToken:
    """A fact: the cluster's token as kept in the state directory (``restore``: the
    restore that chose it)."""

    token: str
    restore: str = ""

    @classmethod
    def gather(cls, ctx: LayerContext) -> Self:
        record = TokenRecord.load(ctx.state_dir)
        if record is None:
            raise FactPending("no etcd cluster token is kept yet", "etcd: token")
        return cls(record.token, record.restore)

    @classmethod
    def assumed(cls, inventory: Inventory) -> EtcdToken:
        """What a dry run plans from while no token is kept."""
        return cls(legacy_token(inventory))

    def describe(self) -> str:
        return (
            f"the cluster's token is {self.token} (a run keeps the running members' token, "
            "or chooses a new one when no member holds etcd data)"
        )


def token_of(ctx: LayerContext) -> str:
    """The token this run renders with (a dry run's stand-in while none is kept)."""
    return ctx.fact(EtcdToken, otherwise=EtcdToken.assumed(ctx.inventory)).token


@dataclass(frozen=True)
class NodeToken:
    """What one member's node holds (``etcd-token.sh``'s three lines)."""

    name: str
    has_data: bool
    marker: str = ""
    env: str = ""

    @classmethod
    def parse(cls, name: str, text: str) -> NodeToken:
        lines = (line.partition(" ") for line in text.splitlines())
        found = {key: value for key, _, value in lines}
        return cls(name, found.get("data") == "yes", found.get("marker", "").strip(),
                   found.get("env", "").strip())  # fmt: skip


def decide(
    inventory: Inventory, found: Sequence[NodeToken], fresh: str, silent: Sequence[str] = ()
) -> tuple[str, str]:
    """(token, why) for a run that has none kept, from what the members' nodes hold
    (``silent``: the members that did not answer, each with why).

    A marker is what the data-directory guard checks, so a marker wins; data without a
    marker (formed by hand, or before markers) keeps its environment file's token, else
    the old form; no data anywhere is a new formation: ``fresh``. Markers that disagree,
    or a token outside the grammar, are refused (labctl does not guess whose data
    stays). A silent member is left out while another holds etcd data (its own data is
    checked against that token by the data guard once it answers), else refused: its
    data could name the running cluster's token, and a cluster formed with a new one
    would refuse it.
    """
    if silent and not any(f.has_data or f.marker for f in found):
        raise LabctlError(
            "etcd: the cluster's token is not chosen while a member's node does not answer "
            f"(its data may name the running cluster's): {'; '.join(silent)}"
        )
    bad = [f"{f.name}: {t!r}" for f in found for t in (f.marker, f.env)
           if t and not GRAMMAR.fullmatch(t)]  # fmt: skip
    if bad:
        raise LabctlError(f"etcd: not a cluster token on the members' nodes: {'; '.join(bad)}")
    markers = {f.marker for f in found if f.marker}
    if len(markers) > 1:
        each = ", ".join(f"{f.name} {f.marker}" for f in found if f.marker)
        raise LabctlError(
            f"etcd: the members' data directories are marked for different clusters ({each}); "
            "move the data that is not this cluster's away by hand, then run again"
        )
    if markers:
        holders = ", ".join(f.name for f in found if f.marker)
        return markers.pop(), f"kept: the running cluster's (the marker on {holders})"
    holding = [f for f in found if f.has_data]
    if holding:
        envs = {f.env for f in holding if f.env}
        names = ", ".join(f.name for f in holding)
        if len(envs) == 1:
            return envs.pop(), f"kept: the running cluster's (the environment file on {names})"
        return legacy_token(inventory), f"kept: {names} hold data formed with the old token"
    return fresh, "a new cluster forms: no member holds etcd data"


def ask_members(ctx: LayerContext, wait: float) -> tuple[list[NodeToken], list[str]]:
    """Every member's node asked what it holds, each waited for up to ``wait`` seconds (a
    server just powered on may still boot): what the answering ones hold, and each
    silent one with why."""
    from labctl.drivers.ssh import session
    from labctl.targets import ssh_target

    inventory = ctx.inventory
    found, silent = [], []
    for server in render.members(inventory):
        name = server.name
        argv = ("sh", "-c", READ, "labctl-etcd-token",
                ctx.on_node(name, render.data_dir(inventory)),
                ctx.on_node(name, render.ENV_PATH))  # fmt: skip
        end = time.monotonic() + wait
        while True:
            try:
                with session(ssh_target(inventory, ctx.base_dir, name)) as ssh:
                    done = ssh.run(argv, timeout=30, label="etcd-token.sh")
                found.append(NodeToken.parse(name, done.text()))
                break
            except LabctlError as exc:
                if time.monotonic() + 2.0 > end:
                    silent.append(f"{name} ({exc})")
                    break
                time.sleep(2.0)
    return found, silent


class TokenWork:
    """``etcd.token``: keep the recorded token, else the running members', else a new one."""

    def apply(self, ctx: LayerContext) -> bool:
        if TokenRecord.load(ctx.state_dir) is not None:
            return False
        inventory = ctx.inventory
        found, silent = ask_members(ctx, inventory.lab.ssh.boot_wait)
        token, why = decide(inventory, found, new_token(inventory), silent)
        TokenRecord(token, now(), why).save(ctx.state_dir)  # before any member uses it
        return True

    def observe(self, ctx: LayerContext) -> str | None:
        if TokenRecord.load(ctx.state_dir) is not None:
            return None
        found, silent = ask_members(ctx, 0.0)
        try:
            token, why = decide(ctx.inventory, found, "NEW", silent)
        except LabctlError as exc:
            return f"the token cannot be chosen yet: {exc}"
        if token == "NEW":
            return f"a new token would be chosen: {why[len('a new cluster forms: ') :]}"
        return f"token {token} would be recorded, {why}"


class RestoreTokenWork:
    """``etcd.restore-token``: a new token for the cluster a restore forms (once per
    restore: ``subject`` is the restore's id)."""

    def __init__(self, restore_id: str) -> None:
        self.restore_id = restore_id

    def apply(self, ctx: LayerContext) -> bool:
        kept = TokenRecord.load(ctx.state_dir)
        if kept is not None and kept.restore == self.restore_id:
            return False
        why = f"a restored cluster is a new one (restore {self.restore_id})"
        record = TokenRecord(new_token(ctx.inventory), now(), why, self.restore_id)
        record.save(ctx.state_dir)
        return True

    def observe(self, ctx: LayerContext) -> str | None:
        return "a new token would be chosen: the restored cluster is a new formation"
