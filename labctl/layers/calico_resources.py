"""The calico-resources layer: Calico on the Kubernetes API, every Node Ready, the fabric up.

A layer of its own, after calico and kubernetes, because it needs the API server
while the BGP fabric does not: ``bootstrap --only calico`` brings up the
sessions on a lab with no Kubernetes (and the 30-node benchmark measures just
that). It applies, by server-side apply, the CustomResourceDefinitions of
Calico's manifest (``cluster.calico.manifest``, fetched and checked by SHA-256)
or, on the simulated lab without one, labctl's stand-in definitions; then the
rest of the manifest (calico-node, on a real lab); then the IPPool,
BGPConfiguration, BGPPeers and each Node's BGP annotations that
``render/calico.py`` renders. Then it waits for every Node to be Ready, which
needs the pod network calico-node (or, on the simulated lab, the calico layer's
stand-in) configures. On a real lab it last waits for every session with a
switch to be Established, read from the switches: only now, with calico-node
running, can they be. On the simulated lab the calico layer proved them with BIRD
standing in; where the platform runs calico-node's confd here (``node_bgp_agent``),
this layer waits again, from both ends, for the switch sessions and the node mesh,
which confd builds from the Nodes it reads (a joining server's too). A real lab
without a manifest is refused (LAB120, checked before the run by ``labctl
bootstrap``; here again, for a context made another way): it would apply stand-ins,
and no Node would ever turn Ready.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping

from labctl.calico.work import BLOCKS_FROM_API, nodes_ready_timeout
from labctl.engine.actions import Action, LocalStep
from labctl.engine.appliers import LocalWorkFactory
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan
from labctl.errors import LabctlError
from labctl.inventory import topology
from labctl.inventory.model import Server
from labctl.layers.calico import fabric_digest
from labctl.render import calico as calico_render

# What the platform runs of calico-node on the nodes (only the simulated lab has any).
AGENTS_PLAN = "calico-resources: calico-node's confd and CNI plugin on the nodes"


def node_bgp_agent(ctx: LayerContext, server: Server) -> list[Action]:
    """What the platform runs of calico-node on ``server`` (nothing on a real lab)."""
    return list(ctx.platform.node_bgp_agent(ctx, server))


class CalicoResourcesLayer:
    name = "calico-resources"
    # Calico's objects go to the API; the Nodes turn Ready once the nodes' BGP (calico
    # layer) gives them their pod network; the sessions it waits for are the switches'.
    needs = ("kubernetes", "calico")
    # The lab checks (inventory/checks_calico.py) a run of this layer needs: on a real
    # lab, calico-node from Calico's manifest and switches whose sessions can be read.
    lab_checks = ("LAB120", "LAB121")

    def local_work(self) -> Mapping[str, LocalWorkFactory]:
        """The work of the ``LocalStep``s this layer's plans hold, by step name."""
        from labctl.calico.work import EstablishedWork, NodesReadyWork, ResourcesWork

        return {
            "calico.established": EstablishedWork,
            "calico.resources": ResourcesWork,
            "calico.nodes-ready": NodesReadyWork,
        }

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        calico = ctx.inventory.cluster.calico
        stand_in = ctx.platform.bgp_stand_in() is not None
        # Without a manifest only the platform's own definitions could be applied.
        if calico.manifest is None and not ctx.platform.calico_kinds(ctx.inventory):
            raise LabctlError(
                f"{ctx.inventory_path}: cluster.calico.manifest is not set: on a real lab "
                "nothing would install calico-node and no Node would turn Ready (LAB120)"
            )
        if calico.manifest is None:
            source = "labctl's stand-in definitions of Calico's kinds (no cluster.calico.manifest)"
        elif stand_in:
            source = f"the definitions from {calico.manifest.url} (BIRD stands in for calico-node)"
        else:
            source = calico.manifest.url
        digest = hashlib.sha256(
            "\0".join(
                (
                    calico_render.resources_yaml(ctx.inventory),
                    calico.manifest.sha256 if calico.manifest else "stand-in",
                    str(stand_in),
                )
            ).encode()
        ).hexdigest()
        ready = nodes_ready_timeout(stand_in)
        steps: list[Action] = [
            LocalStep(
                "calico.resources",
                f"apply {source}, then the IPPool, BGPConfiguration, BGPPeers and each "
                "Node's BGP annotations",
                digest,
            ),
            LocalStep(
                "calico.nodes-ready",
                f"wait up to {ready:g} s for every Node to be Ready (its pod network configured)",
                "",
            ),
        ]
        agents = [a for s in topology.nodes(ctx.inventory) for a in node_bgp_agent(ctx, s)]
        established: list[Action] = []
        if not stand_in or agents:
            # Not the calico layer's fingerprint: there the nodes ran labctl's own BIRD
            # configuration (on the simulated lab); here calico-node's, whose blocks are
            # the ones Calico's IPAM gave the nodes (read from the API).
            fabric = hashlib.sha256(
                "\0".join(
                    (fabric_digest(ctx), "switches", *(a.fingerprint for a in agents))
                ).encode()
            ).hexdigest()
            # Where the platform runs confd (the nodes' BIRD read too), the node mesh
            # is proven here: confd has every Node's BGP address now, a joining one's too.
            which = "session (the node mesh too)" if agents else "session with a switch"
            asked = "as the switches and nodes say" if agents else "as the switches say"
            established.append(
                LocalStep(
                    "calico.established",
                    f"wait up to {calico.hold_time + 30} s for every BGP {which} "
                    "to be Established and every pod block learned, " + asked,
                    fabric,
                    # calico-node's confd took over from the platform's BIRD configuration
                    subject=BLOCKS_FROM_API if agents else "",
                )
            )
        if not agents:
            yield Plan.of("calico-resources: objects", steps + established)
            return
        # The platform runs calico-node's programs itself (the simulated lab): once the
        # API holds what they read, before the Nodes can turn Ready on their CNI plugin.
        yield Plan.of("calico-resources: objects", steps[:1])
        yield Plan.of(AGENTS_PLAN, agents)
        yield Plan.of("calico-resources: nodes", steps[1:] + established)
