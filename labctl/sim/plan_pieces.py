"""The plan pieces only the simulated lab has, handed to the layers by its platform.

Where a real lab runs something labctl does not plan (calico-node configuring BGP on
the nodes, a registry the nodes pull the control plane's images from), the simulated
lab stands in for it with actions of its own: BIRD 1.6 as a unit on each node, with
the ``bird.cfg`` calico-node would write and a CNI configuration in place of
calico-node's (``node_bgp``), and the pods runtime's images imported into each node's
containerd from the build cache (``image_imports``). ``labctl/sim/platform.py``'s
methods return these; the layer that calls them adds what it gets, the same call
on a real lab returning nothing (``labctl/platform.py``).
"""

from __future__ import annotations

import hashlib
from functools import partial

from labctl.calico.fill import fill_for
from labctl.data import shell
from labctl.engine.actions import Action, PutFile, Run, WaitFor, ssh_answers
from labctl.engine.layer import LayerContext
from labctl.inventory.model import Server
from labctl.render.kubernetes import common as c
from labctl.render.kubernetes.addons import coredns_image
from labctl.sim.render import bird, calico_node
from labctl.sim.render.kubernetes import SANDBOX_IMAGE

RESTART_BIRD = f"systemctl restart {calico_node.UNIT_NAME}"
ENSURE_BIRD = (
    f"systemctl is-active -q {calico_node.UNIT_NAME} || "
    f"{{ systemctl start {calico_node.UNIT_NAME}; "
    f"systemctl is-active -q {calico_node.UNIT_NAME}; }}"
)


def node_bgp(ctx: LayerContext, server: Server, bird_binary: str) -> list[Action]:
    """BIRD 1.6 (``bird_binary``) standing in for calico-node on ``server``: its
    configuration (passwords filled in as it is written), its unit, the CNI
    configuration, and BIRD (re)started when any of them changed."""
    inventory = ctx.inventory
    node = server.name
    unit = calico_node.unit(bird_binary)
    config, fill = fill_for(inventory, partial(bird.config, inventory, server))
    digest = hashlib.sha256("\0".join((config, unit)).encode()).hexdigest()
    actions: list[Action] = [
        ssh_answers(node, inventory.lab.ssh.boot_wait),
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
        actions.append(PutFile(node, ctx.on_node(node, calico_node.CNI_PATH), cni.encode(), 0o644))
    return [
        *actions,
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


def node_bgp_query(bird_binary: str) -> tuple[str, ...]:
    """What prints a node's BIRD protocols (birdc ships beside bird)."""
    return (calico_node.birdc(bird_binary), "-s", bird.CONTROL_SOCKET, "show", "protocols")


# The pods runtime's images, imported into the node's containerd unless it has them
# (labctl/data/scripts/kubernetes-images-import.sh says its arguments).
IMPORT_IMAGES = shell.body("kubernetes-images-import")


def image_imports(ctx: LayerContext, server: Server, bin_dir: str) -> list[Action]:
    """The pods runtime: the images its pods need, from the build cache beside
    ``bin_dir`` (labctl/sim/images.py writes them), under the upstream names the
    manifests use."""
    inventory = ctx.inventory
    # kube-proxy's DaemonSet runs on every node (its pods use host networking); CoreDNS's
    # Deployment may put its pods on any of them.
    wanted = [SANDBOX_IMAGE, c.image(inventory, "kube-proxy"), coredns_image(inventory)]
    if server in c.control_plane(inventory):
        wanted += [c.image(inventory, component) for component in c.CONTROL_PLANE]
    folder = c.image_dir(bin_dir)
    pairs = [f"{image.rsplit('/', 1)[-1].split(':', 1)[0]}.tar={image}" for image in wanted]
    return [
        Run(
            server.name,
            ("sh", "-c", IMPORT_IMAGES, "labctl-kube-images", folder, *pairs),
            timeout=300.0,
            what=f"import {', '.join(wanted)} into containerd from {folder}",
        )
    ]
