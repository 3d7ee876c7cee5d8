"""The plan pieces only the simulated lab has, handed to the layers by its platform.

Where a real lab runs something labctl does not plan (calico-node configuring BGP on
the nodes, a registry the nodes pull the control plane's images from), the simulated
lab stands in for it with actions of its own: BIRD 1.6 as a unit on each node, with
the ``bird.cfg`` calico-node would write and a CNI configuration in place of
calico-node's (``node_bgp``), and the pods runtime's images imported into each node's
containerd from the build cache (``image_imports``), and the etcd image a new
``cluster.etcd.version`` names loaded into each node's podman (``etcd_images``).
``labctl/sim/platform.py``'s methods return these; the layer that calls them adds what
it gets, the same call on a real lab returning nothing (``labctl/platform.py``).
"""

from __future__ import annotations

import functools
import hashlib
import shlex
from functools import partial

from labctl.calico.fill import fill_for
from labctl.data import shell
from labctl.engine.actions import Action, PutFile, Run, SecretUse, WaitFor, ssh_answers
from labctl.engine.layer import LayerContext
from labctl.inventory.model import Server
from labctl.render import etcd as render_etcd
from labctl.render.kubernetes import common as c
from labctl.render.kubernetes.addons import coredns_image
from labctl.sim.render import bird, calico_confd, calico_felix, calico_node
from labctl.sim.render.kubernetes import SANDBOX_IMAGE

RESTART_BIRD = f"systemctl restart {calico_node.UNIT_NAME}"
ENSURE_BIRD = (
    f"systemctl is-active -q {calico_node.UNIT_NAME} || "
    f"{{ systemctl start {calico_node.UNIT_NAME}; "
    f"systemctl is-active -q {calico_node.UNIT_NAME}; }}"
)


def node_bgp(
    ctx: LayerContext, server: Server, bird_binary: str, confd: bool = False
) -> list[Action]:
    """BIRD 1.6 (``bird_binary``) on ``server`` with labctl's configuration (passwords
    filled in as it is written), its unit, and BIRD (re)started when either changed.
    ``confd``: calico-node's confd takes BIRD over once Calico's objects are on the API
    (``node_bgp_agent``): labctl's file goes beside confd's, and Calico's CNI
    configuration comes with confd; else the stand-in CNI configuration too."""
    inventory = ctx.inventory
    node = server.name
    path = calico_node.STAND_IN_CONFIG if confd else bird.CONFIG_PATH
    unit = calico_node.unit(bird_binary, path)
    config, fill = fill_for(inventory, partial(bird.config, inventory, server))
    actions: list[Action] = [
        ssh_answers(node, inventory.lab.ssh.boot_wait),
        PutFile(
            node,
            ctx.on_node(node, path),
            config.encode(),
            0o600,
            secret=fill is not None,
            fill=fill,
        ),
        PutFile(node, ctx.on_node(node, calico_node.UNIT_PATH), unit.encode(), 0o644),
    ]
    cni = None if confd else calico_node.cni_conflist(inventory, server)
    if cni is not None:
        actions.append(PutFile(node, ctx.on_node(node, calico_node.CNI_PATH), cni.encode(), 0o644))
    return [
        *actions,
        Run(node, calico_node.LINK_DEBIAN_PLUGINS, what="link Debian's CNI plugins"),
        Run(node, ("systemctl", "enable", calico_node.UNIT_NAME)),
        *_restarts(node, config, unit, fill.uses if fill else (), confd),
        WaitFor(
            node,
            ("sh", "-c", ENSURE_BIRD),
            deadline=30.0,
            what=f"{calico_node.UNIT_NAME} to be running",
        ),
    ]


# Once confd wrote the bird.cfg BIRD runs, confd reloads BIRD itself (``birdc
# configure``) when Calico's objects change; restarting BIRD for a change of labctl's
# file beside it would only drop every session of the node (a server joining changes
# every node's stand-in file: one more mesh peer).
RESTART_UNLESS_CONFD = (
    f"grep -qsx {shlex.quote(calico_node.CONFD_MARK)} {bird.CONFIG_PATH} || {RESTART_BIRD}"
)


def _restarts(
    node: str, config: str, unit: str, secrets: tuple[SecretUse, ...], confd: bool
) -> list[Action]:
    """BIRD restarted when its unit or labctl's file changed; with ``confd``, a change of
    labctl's file alone restarts it only while BIRD still runs that file."""
    reload = f"systemctl daemon-reload && {RESTART_BIRD}"
    # One step, not a daemon-reload step of its own: the journal knows a Run by its
    # argv, and a bare `systemctl daemon-reload` is also the etcd layer's, whose re-run
    # would then see it changed and run it again.
    if not confd:
        digest = hashlib.sha256("\0".join((config, unit)).encode()).hexdigest()
        return [
            Run(
                node,
                ("sh", "-c", reload),
                triggers=(digest,),
                what=f"systemctl daemon-reload; {RESTART_BIRD}",
                secrets=secrets,
            )
        ]
    return [
        Run(
            node,
            ("sh", "-c", reload),
            triggers=(hashlib.sha256(unit.encode()).hexdigest(),),
            what=f"systemctl daemon-reload; {RESTART_BIRD}",
        ),
        Run(
            node,
            ("sh", "-c", RESTART_UNLESS_CONFD),
            triggers=(hashlib.sha256(config.encode()).hexdigest(),),
            what=f"{RESTART_BIRD}, unless BIRD runs the bird.cfg confd wrote",
            secrets=secrets,
        ),
    ]


def node_bgp_agent(
    ctx: LayerContext,
    server: Server,
    bird_binary: str,
    built: str,
    confd_files: dict[str, str],
    felix: bool = False,
) -> list[Action]:
    """calico-node's confd on ``server`` (``calico-node -confd`` from the build ``built``,
    with confd's own files ``confd_files``, relative path to text), writing the
    ``bird.cfg`` BIRD then runs, and Calico's CNI plugin and IPAM in place of the
    stand-in's; confd restarted when any of its files changed, and waited for until
    BIRD runs what it wrote. ``felix``: calico-node's Felix too (``node_felix``)."""
    inventory = ctx.inventory
    node = server.name
    files = {
        f"{calico_confd.CONFD_DIR}/{rel}": (
            calico_confd.conf_d(text, bird_binary) if rel.startswith("conf.d/") else text
        )
        for rel, text in sorted(confd_files.items())
    }
    files[calico_confd.KUBECONFIG] = calico_confd.kubeconfig(inventory)
    files[calico_confd.UNIT_PATH] = calico_confd.unit(
        f"{built}/bin/calico-node", bird_binary, server
    )
    files[calico_confd.CNI_PATH] = calico_confd.cni_conflist(inventory, server)
    files[calico_confd.NODENAME_FILE] = server.name
    digest = hashlib.sha256(
        "\0".join(f"{path}\0{text}" for path, text in files.items()).encode()
    ).hexdigest()
    restart = f"systemctl daemon-reload && systemctl restart {calico_confd.UNIT_NAME}"
    return [
        ssh_answers(node, inventory.lab.ssh.boot_wait),
        *(
            PutFile(node, ctx.on_node(node, path), text.encode(), 0o644)
            for path, text in files.items()
        ),
        Run(node, calico_confd.link_plugins(built), what="link Calico's CNI plugins"),
        Run(node, ("systemctl", "enable", calico_confd.UNIT_NAME)),
        Run(node, ("sh", "-c", restart), triggers=(digest,), what=restart.replace("&&", ";")),
        WaitFor(
            node,
            ("sh", "-c", calico_confd.waits_for(bird_binary)),
            deadline=60.0,
            what="BIRD to run the bird.cfg calico-node's confd wrote",
        ),
        *(node_felix(ctx, server, built) if felix else ()),
    ]


# Felix's first sync (every Node, pool, endpoint and policy, then its iptables and ipsets)
# takes a few seconds on an idle node; a loaded 2-core host running three of them, more.
FELIX_READY_DEADLINE = 90.0


def node_felix(ctx: LayerContext, server: Server, built: str) -> list[Action]:
    """calico-node's Felix on ``server`` (``calico-node -felix`` from the build ``built``,
    with confd's kubeconfig), restarted when its unit changed, and waited for until
    calico-node's readiness probe (``calico-node -felix-ready``) says it is ready."""
    node = server.name
    program = f"{built}/bin/calico-node"
    unit = calico_felix.unit(program, server)
    digest = hashlib.sha256(
        "\0".join((unit, calico_confd.kubeconfig(ctx.inventory))).encode()
    ).hexdigest()
    restart = f"systemctl daemon-reload && systemctl restart {calico_felix.UNIT_NAME}"
    return [
        PutFile(node, ctx.on_node(node, calico_felix.UNIT_PATH), unit.encode(), 0o644),
        Run(node, ("systemctl", "enable", calico_felix.UNIT_NAME)),
        Run(node, ("sh", "-c", restart), triggers=(digest,), what=restart.replace("&&", ";")),
        WaitFor(
            node,
            calico_felix.ready(program),
            deadline=FELIX_READY_DEADLINE,
            what=f"calico-node's Felix on {node} to be ready (calico-node -felix-ready)",
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


# The etcd image, loaded into the node's podman unless it has it (one line: no script).
LOAD_ETCD_IMAGE = 'podman image exists "$1" || podman load -q -i "$2" >/dev/null'


@functools.cache
def _etcd_archive(image: str) -> str:
    """The archive of the etcd image ``image``, made here once (``labctl/sim/engine.py``:
    from this machine's etcd or ``labctl etcd build``'s; a sentence naming the build to
    run when that version is neither)."""
    from labctl.sim import engine

    return str(engine.build(engine.etcd_image(image, engine.etcd_source(image))).path)


def etcd_images(ctx: LayerContext, server: Server) -> list[Action]:
    """The etcd image the inventory names on ``server``, as a registry pull would put it
    there: loaded from the archive made here (the boot loaded the image the lab was made
    with; a new ``cluster.etcd.version`` needs its image before the member restarts)."""
    image = render_etcd.image(ctx.inventory)
    archive = _etcd_archive(image)
    return [
        Run(
            server.name,
            ("sh", "-c", LOAD_ETCD_IMAGE, "labctl-etcd-image", image, archive),
            timeout=120.0,
            what=f"load {image} into the node's podman unless it has it",
        )
    ]
