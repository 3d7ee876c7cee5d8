"""The calico layer: the lab's BGP fabric, switches first, then the nodes, then proof.

First every switch that peers with the nodes and runs FRR gets the FRR
configuration labctl renders (``render/switch_frr.py``), and FRR is restarted
when it changed: the switches must be listening before the nodes dial them.
EOS and IOS switches get no actions (``labctl switch config`` prints theirs;
pushing over eAPI is not built). Then the nodes: on a real lab calico-node,
installed from Calico's manifest by the next layer (``calico_resources.py``),
configures their BGP; on the simulated lab, which has no calico-node, each node
gets ``bird.cfg`` as calico-node would write it and runs BIRD 1.6 as a unit
(``ctx.platform.bgp_stand_in()``), with a CNI configuration standing in for calico-node's.
Last, from the operator's machine, every session must be Established and every
node's pod block learned by every peering switch within the hold time plus a
margin (local work ``calico.established``).

A BGP password reaches FRR and BIRD as its value, filled in by the SSH applier
as it writes the file; the plan holds the masked text and the references
(``Fill``), and each restart re-runs when a password's sealed digest changes
(``labctl/secrets/box.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from functools import partial

from labctl.engine.actions import (
    Action,
    Fill,
    LocalStep,
    PutFile,
    Run,
    SecretUse,
    WaitFor,
    ssh_answers,
)
from labctl.engine.appliers import LocalWorkFactory
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan
from labctl.inventory import topology
from labctl.inventory.model import Inventory, SecretRef
from labctl.inventory.problems import format_path
from labctl.render import bird, calico_node, switches
from labctl.render.bgp_common import SecretFn, Written, masking, resolving

FRR_CONFIG = "/etc/frr/frr.conf"
FRR_UNIT = "frr"
RESTART_BIRD = f"systemctl restart {calico_node.UNIT_NAME}"
ENSURE_BIRD = (
    f"systemctl is-active -q {calico_node.UNIT_NAME} || systemctl start {calico_node.UNIT_NAME}; "
    f"systemctl is-active -q {calico_node.UNIT_NAME}"
)


def frr_switches(ctx: LayerContext) -> list[str]:
    """The peering switches that run FRR (all of them on the simulated lab)."""
    return [
        s.name
        for s in topology.peering_switches(ctx.inventory)
        if (ctx.platform.switch_platform() or s.platform) == "frr"
    ]


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


def _digest(*texts: str) -> str:
    return hashlib.sha256("\0".join(texts).encode()).hexdigest()


def fabric_digest(ctx: LayerContext) -> str:
    """Changes when any switch's or node's BGP configuration does."""
    inventory = ctx.inventory
    texts = [
        switches.config(inventory, topology.switch(inventory, name), platform="frr")  # type: ignore[arg-type]
        for name in frr_switches(ctx)
    ]
    texts += [bird.config(inventory, s) for s in topology.nodes(inventory)]
    return _digest(*texts)


class CalicoLayer:
    name = "calico"

    def local_work(self) -> Mapping[str, LocalWorkFactory]:
        """The work of the ``LocalStep``s this layer's plans hold, by step name."""
        from labctl.calico.work import EstablishedWork

        return {"calico.established": EstablishedWork}

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        inventory = ctx.inventory
        boot_wait = inventory.lab.ssh.boot_wait
        actions: list[Action] = []
        for name in frr_switches(ctx):
            sw = topology.switch(inventory, name)
            assert sw is not None
            text, fill = fill_for(
                inventory, partial(switches.config, inventory, sw, platform="frr")
            )
            actions += [
                ssh_answers(name, boot_wait),
                PutFile(
                    name,
                    ctx.on_node(name, FRR_CONFIG),
                    text.encode(),
                    0o640,
                    "frr:frr",
                    secret=fill is not None,
                    fill=fill,
                ),
                Run(
                    name,
                    ("systemctl", "restart", FRR_UNIT),
                    triggers=(_digest(text),),
                    what=f"systemctl restart {FRR_UNIT} (FRR reads {FRR_CONFIG})",
                    secrets=fill.uses if fill else (),
                ),
                WaitFor(
                    name,
                    ("vtysh", "-c", "show bgp summary json"),
                    deadline=30.0,
                    what="FRR's bgpd to answer",
                ),
            ]
        if actions:
            yield Plan.of("calico: switches", actions)
        if ctx.platform.bgp_stand_in() is None:
            return  # calico-node, from Calico's manifest (layer calico-resources), does the rest
        yield from self._stand_in(ctx)

    def _stand_in(self, ctx: LayerContext) -> Iterator[Plan]:
        inventory = ctx.inventory
        boot_wait = inventory.lab.ssh.boot_wait
        binary = ctx.platform.bgp_stand_in()
        assert binary is not None
        unit = calico_node.unit(binary)
        node_actions: list[Action] = []
        for server in topology.nodes(inventory):
            node = server.name
            config, fill = fill_for(inventory, partial(bird.config, inventory, server))
            digest = _digest(config, unit)
            node_actions += [
                ssh_answers(node, boot_wait),
                PutFile(
                    node,
                    ctx.on_node(node, bird.CONFIG_PATH),
                    config.encode(),
                    0o600,
                    secret=fill is not None,
                    fill=fill,
                ),
                PutFile(node, ctx.on_node(node, calico_node.UNIT_PATH), unit.encode(), 0o644),
            ]
            cni = calico_node.cni_conflist(inventory, server)
            if cni is not None:
                node_actions.append(
                    PutFile(node, ctx.on_node(node, calico_node.CNI_PATH), cni.encode(), 0o644)
                )
            node_actions += [
                Run(node, ("systemctl", "enable", calico_node.UNIT_NAME)),
                # One step, not a daemon-reload step of its own: the journal knows a Run
                # by its argv, and a bare `systemctl daemon-reload` is also the etcd
                # layer's, whose re-run would then see it changed and run it again.
                Run(
                    node,
                    ("sh", "-c", f"systemctl daemon-reload && {RESTART_BIRD}"),
                    triggers=(digest,),
                    what=f"systemctl daemon-reload; {RESTART_BIRD}",
                    secrets=fill.uses if fill else (),
                ),
                WaitFor(
                    node,
                    ("sh", "-c", ENSURE_BIRD),
                    deadline=30.0,
                    what=f"{calico_node.UNIT_NAME} to be running",
                ),
            ]
        yield Plan.of("calico: nodes (BIRD standing in for calico-node)", node_actions)
        calico = inventory.cluster.calico
        yield Plan.of(
            "calico: sessions",
            [
                LocalStep(
                    "calico.established",
                    f"wait up to {calico.hold_time + 30} s for every BGP session to be "
                    "Established and every pod block learned by every peering switch",
                    fabric_digest(ctx),
                )
            ],
        )
