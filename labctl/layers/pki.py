"""The pki layer: mint what the inventory needs, then push each node its files.

Two plans. The first is one local step, ``pki.mint`` (the local applier runs
it through a ``PkiSession``; its dry run reads the store and says what would
be re-minted). The second is built from the store the first left behind (the
fact ``PkiFiles``, ``pki/facts.py``, gathered afresh once the mint is applied):
for every server, wait until it answers SSH (the power layer may have just
switched it on), then write its certificates and keys (``pki/placement.py``
says which and where), and last their expiry dates as node-exporter's textfile
(``pki/expiry.py``), which the alert LabctlCertificateExpiring reads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from labctl.engine.actions import Action, LocalStep, PutFile, ssh_answers
from labctl.engine.appliers import LocalWorkFactory
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan
from labctl.pki.facts import PkiFiles


class PkiLayer:
    name = "pki"
    needs = ("os",)  # it pushes each node its certificates: the node must be up
    facts = (PkiFiles,)

    def local_work(self) -> Mapping[str, LocalWorkFactory]:
        """The work of the ``LocalStep``s this layer's plans hold, by step name."""
        from labctl.pki.work import MintWork

        return {"pki.mint": MintWork}

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        from labctl.pki.expiry import textfile
        from labctl.pki.lab_pki import input_digest, pki_input

        mint = LocalStep(
            "pki.mint", "mint what the inventory needs", input_digest(pki_input(ctx.inventory))
        )
        yield Plan.of("pki: mint", [mint], makes=(PkiFiles,))
        store = ctx.fact(PkiFiles)  # nothing minted yet: nothing to push to compare against
        actions: list[Action] = []
        for server in ctx.inventory.servers:
            # A server the power step just switched on may still be booting.
            actions.append(ssh_answers(server.name, ctx.inventory.lab.ssh.boot_wait))
            placed = store.of(server.name)
            # The expiry textfile last: it describes what the node now holds.
            actions += [
                PutFile(
                    server.name,
                    ctx.on_node(server.name, f.path),
                    f.content,
                    f.mode,
                    "root:root",
                    secret=f.secret,
                )
                for f in (*placed, textfile(placed))
            ]
        yield Plan.of("pki: push", actions)
