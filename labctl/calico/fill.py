"""Where a BGP password goes in a rendered configuration: the masked text and its Fill.

Switch and node configurations (FRR's, and BIRD's on the simulated lab) hold BGP
passwords. A plan keeps their masked text; the SSH applier writes the values,
filled in by ``Fill`` as it writes the file (``engine/actions.py``). The calico layer,
``labctl switch config --with-secrets`` and the simulated platform's BIRD plan pieces
all fill their configurations this one way, so each names a password by where the
inventory sets it.
"""

from __future__ import annotations

from collections.abc import Callable

from labctl.engine.actions import Fill, SecretUse
from labctl.inventory.model import Inventory, SecretRef
from labctl.inventory.problems import format_path
from labctl.render.bgp_common import SecretFn, Written, masking, resolving


def fill_for(
    inventory: Inventory, render: Callable[[SecretFn], str]
) -> tuple[str, Fill[SecretFn] | None]:
    """A configuration's masked text, and how to write it with its passwords (None: it has
    none). Which secrets it holds is what ``render`` asks for, so the two cannot disagree;
    both texts are ``render``'s, given the masking or the resolving secret function."""
    asked: list[SecretRef] = []

    def record(ref: SecretRef, written: Written) -> str:
        asked.append(ref)
        return masking(ref, written)

    text = render(record)
    if not asked:
        return text, None
    calico = inventory.cluster.calico
    places: dict[SecretRef, str] = {}
    for peer in calico.peers:
        if peer.password is not None:
            places.setdefault(peer.password, format_path((*peer.path, "password")))
    if calico.mesh_password is not None:
        places.setdefault(calico.mesh_password, "cluster.calico.mesh_password")
    uses = tuple(SecretUse(ref, places.get(ref, "cluster.calico")) for ref in dict.fromkeys(asked))
    fill: Fill[SecretFn] = Fill(uses, render, masking, resolving)
    return fill.masked().decode(), fill
