"""The calico layer: the lab's BGP fabric, switches first, then the nodes, then proof.

First every switch that peers with the nodes and runs FRR gets the FRR
configuration labctl renders (``render/switch_frr.py``), and FRR is restarted
when it changed: the switches must be listening before the nodes dial them.
EOS and IOS switches get no actions (``labctl switch config`` prints theirs;
pushing over eAPI is not built). Then the nodes get what their platform says
configures their BGP (``Platform.node_bgp``): on a real lab nothing here, since
calico-node, installed from Calico's manifest by the next layer
(``calico_resources.py``), does it, and that layer proves the sessions; on the
simulated lab, which has no calico-node, BIRD 1.6 as a unit with the ``bird.cfg``
calico-node would write and a CNI configuration standing in for calico-node's
(``labctl/sim/plan_pieces.py``). When the nodes got something here, last, from the
operator's machine, every session must be Established and every node's pod block
learned by every peering switch within the hold time plus a margin (local work
``calico.established``): every session with a switch, and the node mesh too unless
calico-node's confd takes the nodes' BGP over in the next layer
(``Platform.confd_takes_over``), whose mesh is the Nodes it read from the API, so
that a joining server is in it only after calico-resources, which waits for it
(docs/calico.md, "Which sessions are waited for").

A BGP password reaches FRR (and BIRD) as its value, filled in by the SSH applier
as it writes the file; the plan holds the masked text and the references
(``Fill``, ``calico/fill.py``), and each restart re-runs when a password's sealed
digest changes (``labctl/secrets/box.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from functools import partial

from labctl.calico.fill import fill_for
from labctl.calico.work import SWITCHES_ONLY
from labctl.engine.actions import Action, LocalStep, PutFile, Run, WaitFor, ssh_answers
from labctl.engine.appliers import LocalWorkFactory
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan
from labctl.inventory import topology
from labctl.inventory.model import Server
from labctl.render import calico as calico_render
from labctl.render import switches

FRR_CONFIG = "/etc/frr/frr.conf"
FRR_UNIT = "frr"
# The plan of what the platform puts on the nodes (only a simulated lab's has any).
NODES_PLAN = "calico: nodes (BIRD standing in for calico-node)"


def frr_switches(ctx: LayerContext) -> list[str]:
    """The peering switches that run FRR (all of them on the simulated lab)."""
    return [
        s.name
        for s in topology.peering_switches(ctx.inventory)
        if (ctx.platform.switch_platform() or s.platform) == "frr"
    ]


def _digest(*texts: str) -> str:
    return hashlib.sha256("\0".join(texts).encode()).hexdigest()


def fabric_digest(ctx: LayerContext) -> str:
    """Changes when any switch's or node's BGP configuration does: the switches' FRR,
    the Calico resources calico-node configures a node from, and what the platform
    puts on the nodes (BIRD's configuration on the simulated lab)."""
    inventory = ctx.inventory
    texts = [
        switches.config(inventory, topology.switch(inventory, name), platform="frr")  # type: ignore[arg-type]
        for name in frr_switches(ctx)
    ]
    texts.append(calico_render.resources_yaml(inventory))
    texts += [a.fingerprint for s in topology.nodes(inventory) for a in node_bgp(ctx, s)]
    return _digest(*texts)


def node_bgp(ctx: LayerContext, server: Server) -> list[Action]:
    """What the platform puts on ``server`` to configure its BGP (nothing on a real lab)."""
    return list(ctx.platform.node_bgp(ctx, server))


class CalicoLayer:
    name = "calico"
    # The switches' FRR needs nothing of Kubernetes; the nodes' side (BIRD and its CNI
    # file on the simulated lab) needs the nodes up. Its pod blocks are the inventory's.
    needs = ("os",)

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
        nodes = [a for server in topology.nodes(inventory) for a in node_bgp(ctx, server)]
        if not nodes:
            return  # calico-node, from Calico's manifest (layer calico-resources), does the rest
        yield Plan.of(NODES_PLAN, nodes)
        calico = inventory.cluster.calico
        # Where calico-node's confd takes the nodes' BGP over (in the next layer), the
        # nodes' mesh is the Nodes confd reads from the API: a server joining a running
        # lab is in the others' configuration only then, so the mesh is that layer's to
        # wait for, as on a real lab; here only the sessions with a switch.
        switches_only = ctx.platform.confd_takes_over()
        which = " with a switch" if switches_only else ""
        yield Plan.of(
            "calico: sessions",
            [
                LocalStep(
                    "calico.established",
                    f"wait up to {calico.hold_time + 30} s for every BGP session{which} "
                    "to be Established and every pod block learned by every peering switch"
                    + (" (the node mesh: after calico-resources)" if switches_only else ""),
                    fabric_digest(ctx),
                    subject=SWITCHES_ONLY if switches_only else "",
                )
            ],
        )
