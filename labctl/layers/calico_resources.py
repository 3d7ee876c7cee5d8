"""The calico-resources layer: Calico on the Kubernetes API, and every Node Ready.

A layer of its own, after calico and kubernetes, because it needs the API server
while the BGP fabric does not: ``bootstrap --only calico`` brings up the
sessions on a lab with no Kubernetes (and the 30-node benchmark measures just
that). It applies, by server-side apply, the CustomResourceDefinitions of
Calico's manifest (``cluster.calico.manifest``, fetched and checked by SHA-256)
or, without one, labctl's stand-in definitions; then the rest of the manifest
(calico-node, on a real lab); then the IPPool, BGPConfiguration, BGPPeers and
each Node's BGP annotations that ``render/calico.py`` renders. Last it waits
for every Node to be Ready, which needs the pod network calico-node (or, on the
simulated lab, the calico layer's stand-in) configures.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from labctl.engine.actions import Action, LocalStep
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan
from labctl.render import calico as calico_render


class CalicoResourcesLayer:
    name = "calico-resources"

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        calico = ctx.inventory.cluster.calico
        stand_in = ctx.standins.calico_bird is not None
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
        steps: list[Action] = [
            LocalStep(
                "calico.resources",
                f"apply {source}, then the IPPool, BGPConfiguration, BGPPeers and each "
                "Node's BGP annotations",
                digest,
            )
        ]
        # Without a manifest on a real lab nothing installs calico-node, so no Node
        # would turn Ready: the wait is planned only where a pod network comes.
        if stand_in or calico.manifest is not None:
            steps.append(
                LocalStep(
                    "calico.nodes-ready",
                    "wait up to 60 s for every Node to be Ready (its pod network configured)",
                    "",
                )
            )
        yield Plan.of("calico-resources: objects", steps)
