"""The PKI store as a fact: each server's certificates and keys, read once between plans.

The pki layer pushes these files and the kubernetes layer restarts a service
when its node's files change (their digest is in every restart trigger). Both
read them as the fact ``PkiFiles`` (``engine/facts.py``), which the runner
gathers after the plan ``pki: mint`` (and before any layer that names it), so
neither layer opens the store inside ``plans()``. A store that lacks what a
server needs (no CA, or a certificate minted for another set of nodes) is
pending: ``pki: mint`` makes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from labctl.engine.facts import FactPending
from labctl.errors import LabctlError

if TYPE_CHECKING:
    from labctl.engine.layer import LayerContext
    from labctl.pki.placement import NodeFile

MINT_PLAN = "pki: mint"


@dataclass(frozen=True)
class PkiFiles:
    """A fact: what each server gets from the PKI store, by server, in inventory order."""

    files: tuple[tuple[str, tuple[NodeFile, ...]], ...] = ()

    def of(self, node: str) -> tuple[NodeFile, ...]:
        return dict(self.files).get(node, ())

    def digest(self, node: str) -> str:
        """The hash of ``node``'s certificates and keys: a rotation changes it. Empty for
        a node with none (a dry run before any PKI: nothing runs with an old certificate)."""
        files = self.of(node)
        if not files:
            return ""
        h = hashlib.sha256()
        for f in files:
            h.update(f.path.encode() + b"\0" + f.content + b"\0")
        return h.hexdigest()

    @classmethod
    def gather(cls, ctx: LayerContext) -> Self:
        from labctl.pki.placement import node_files
        from labctl.pki.session import PkiSession

        session = PkiSession(ctx.inventory, ctx.base_dir)
        inp, store = session.input, session.store
        found = []
        for server in ctx.inventory.servers:
            try:
                found.append((server.name, tuple(node_files(inp, store, server.name))))
            except LabctlError as exc:
                raise FactPending(str(exc), MINT_PLAN) from None
        return cls(tuple(found))

    def describe(self) -> str:
        if not self.files:
            return "there were no PKI yet (no restart follows a certificate)"
        return f"the PKI store's files for {len(self.files)} server(s)"
