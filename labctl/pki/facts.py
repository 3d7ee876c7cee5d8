"""The PKI store as a fact: each server's certificates and keys, read once between plans.

The pki layer pushes these files and the kubernetes layer restarts a service
when its node's files change (their digest is in every restart trigger). Both
read them as the fact ``PkiFiles`` (``engine/facts.py``), gathered once per
run where first read and again after the plan ``pki: mint``, so neither layer
opens the store inside ``plans()``. A store without a CA is
pending, and so are the files of a server it has no certificates for yet (one
added since the last mint): ``pki: mint`` makes them.
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
    """A fact: what each server gets from the PKI store, by server, in inventory order;
    ``missing``: servers whose files the store lacks yet, and why."""

    files: tuple[tuple[str, tuple[NodeFile, ...]], ...] = ()
    missing: tuple[tuple[str, str], ...] = ()

    def of(self, node: str) -> tuple[NodeFile, ...]:
        """``node``'s files; pending (``pki: mint`` makes them) when the store lacks them."""
        why = dict(self.missing).get(node)
        if why is not None:
            raise FactPending(why, MINT_PLAN)
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
        from labctl.pki.lab_pki import PkiSession
        from labctl.pki.placement import node_files

        session = PkiSession(ctx.inventory, ctx.base_dir)
        inp, store = session.input, session.store
        if store.read_cert("ca") is None:
            raise FactPending("no CA in the PKI store yet; run `labctl pki mint`", MINT_PLAN)
        found, missing = [], []
        for server in ctx.inventory.servers:
            try:
                found.append((server.name, tuple(node_files(inp, store, server.name))))
            except LabctlError as exc:  # a server added since the last mint
                missing.append((server.name, f"{server.name}: {exc}"))
        return cls(tuple(found), tuple(missing))

    def describe(self) -> str:
        if not self.files:
            return "there were no PKI yet (no restart follows a certificate)"
        return f"the PKI store's files for {len(self.files)} server(s)"
