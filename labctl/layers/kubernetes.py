"""The kubernetes layer: the control plane on its nodes, a kubelet on every server.

Five plans, in order. First, from the operator's machine, every server at once gets the
Kubernetes binaries it runs in ``binary_dir`` at the inventory's version, sent from
this machine's build where the node lacks them (local work ``kubernetes.binaries``,
``kubernetes/delivery.py``). Then on every server each service's files are written
(``render/kubernetes``) and the service is enabled, restarted when its files or the
node's certificates changed, and started if it is not running: whatever the platform
runs before the kubelet (``Platform.node_runtime``: on the simulated lab, whose nodes
share one kernel, a containerd of labctl's), the control-plane units (host runtime)
or static pod manifests (static-pods runtime, run by the kubelet), and the kubelet,
after the images the platform puts on the node (``Platform.image_imports``). Then, from the
operator's machine with the admin certificate: the API answers ``/readyz`` (local
work ``kubernetes.ready``), the addons are applied (``kubernetes.addons``), and
every server is a Node (``kubernetes.nodes``). A re-run on a working cluster changes nothing.

When a registered Node's kubelet runs another version than the inventory's, the nodes
plan is the rolling upgrade of ``kubernetes/upgrade.py``: control-plane nodes one at a
time, then the others in batches, each drained first and uncordoned once Ready at the
new version. (Before it, a version change restarted every kubelet at once, undrained.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping

from labctl.data import shell
from labctl.engine.actions import Action, LocalStep, PutFile, Run, WaitFor, ssh_answers
from labctl.engine.appliers import LocalWorkFactory
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan
from labctl.inventory.model import Server
from labctl.kubernetes import upgrade
from labctl.pki.facts import PkiFiles
from labctl.render.kubernetes import common as c
from labctl.render.kubernetes import host, kubelet
from labctl.render.kubernetes.node import Service, services


def runtime(ctx: LayerContext) -> str:
    """How the control plane runs, as the platform says (``common.runtime`` checks it)."""
    return c.runtime(ctx.inventory, ctx.platform.kube_runtime(ctx.inventory))


def bin_dir(ctx: LayerContext) -> str:
    """The nodes' folder for the Kubernetes binaries, as the platform says."""
    return c.bin_dir(ctx.inventory, ctx.platform.kube_bin_dir(ctx.inventory))


# Whether a control-plane node is back: labctl/data/scripts/kubernetes-control-plane-ready.sh.
CONTROL_PLANE_READY = shell.body("kubernetes-control-plane-ready")
READY_NAME = "labctl-kube-control-plane-ready"


def control_plane_ready(ctx: LayerContext, server: Server) -> list[Action]:
    """On a control-plane node, last: wait until its API server is ready (and serves its
    current certificate). The next control-plane node's changes wait for this."""
    inventory = ctx.inventory
    if server not in c.control_plane(inventory):
        return []
    address = c.node_address(inventory, server)
    port = str(inventory.cluster.kubernetes.api_endpoint.port)
    static = c.static_pods(runtime(ctx))
    cert = ctx.on_node(server.name, c.ssl("apiserver.pem")) if static else "-"
    # The unit that runs the API server: a wait that runs out names it if it is down.
    unit = kubelet.UNIT_NAME if static else host.unit_name("kube-apiserver")
    return [
        WaitFor(
            server.name,
            ("sh", "-c", CONTROL_PLANE_READY, READY_NAME, address, port, cert, unit),
            deadline=inventory.cluster.kubernetes.ready_timeout,
            what=f"kube-apiserver on {server.name} to answer /readyz"
            + (" with its current certificate" if cert != "-" else ""),
        )
    ]


def disrupts_control_plane(action: Action) -> bool:
    """Whether ``action`` stops or replaces a control-plane component, or is the wait
    for one to be back: these go one control-plane node at a time (``Plan.rolling``),
    so a rotation never takes every API server down at once."""
    if isinstance(action, PutFile):
        return any(
            action.path.endswith(f"{c.MANIFESTS_DIR}/{component}.yaml")
            for component in c.CONTROL_PLANE
        )
    if isinstance(action, Run):
        restarts = {("systemctl", "restart", host.unit_name(x)) for x in c.CONTROL_PLANE}
        return action.argv in restarts
    return isinstance(action, WaitFor) and action.argv[3:4] == (READY_NAME,)


def _ensure_running(unit: str) -> str:
    return f"systemctl is-active -q {unit} || systemctl start {unit}; systemctl is-active -q {unit}"


def pki_digest(ctx: LayerContext, node: str) -> str:
    """The hash of the certificates and keys the pki layer put on ``node``: a rotation
    changes it, and with it every service's restart trigger. Empty in a dry run with no
    PKI yet (nothing runs that could hold an old certificate)."""
    return ctx.fact(PkiFiles, otherwise=PkiFiles()).digest(node)


def binaries_step(ctx: LayerContext) -> LocalStep:
    """Every node gets the binaries it runs at the inventory's version, from this
    machine's build, unless it has them (local work ``kubernetes.binaries``)."""
    inventory = ctx.inventory
    folder = bin_dir(ctx)
    want = c.version(inventory)
    each = [
        f"{name} ({', '.join(names)})"
        for name, names in c.binaries_by_node(inventory, runtime(ctx)).items()
    ]
    return LocalStep(
        "kubernetes.binaries",
        f"Kubernetes {want} in {folder} on {', '.join(each)}",
        hashlib.sha256(f"{want}\0{folder}\0{' '.join(each)}".encode()).hexdigest(),
    )


def node_services(ctx: LayerContext, server: Server) -> list[Service]:
    return services(
        ctx.inventory,
        server,
        runtime(ctx),
        bin_dir(ctx),
        pki_digest(ctx, server.name),
        node=ctx.platform.node_runtime(ctx.inventory, runtime(ctx)),
    )


def version_trigger(ctx: LayerContext, unit: str) -> tuple[str, ...]:
    """The version, for a unit that execs a Kubernetes binary from a ``binary_dir`` whose
    path does not name the version (``/opt/bin``): its files do not change with the
    version, but the binary under them does, and only a restart runs the new one."""
    execs = {kubelet.UNIT_NAME} | {host.unit_name(x) for x in c.CONTROL_PLANE}
    if unit not in execs or "{version}" in ctx.platform.kube_bin_dir(ctx.inventory):
        return ()
    return (c.version(ctx.inventory),)


def node_actions(ctx: LayerContext, server: Server) -> list[Action]:
    inventory = ctx.inventory
    node = server.name
    found = node_services(ctx, server)
    actions: list[Action] = [
        ssh_answers(node, inventory.lab.ssh.boot_wait),
        Run(
            node,
            (
                "mkdir",
                "-p",
                *(
                    ctx.on_node(node, d)
                    for d in (c.MANIFESTS_DIR, c.KUBELET_DIR, c.AUDIT_LOG_DIR, "/etc/containerd")
                ),
            ),
        ),
    ]
    for service in found:
        actions += [
            PutFile(node, ctx.on_node(node, f.path), f.content.encode(), f.mode, "root:root")
            for f in service.files
        ]
    # Not the bare `systemctl daemon-reload` the etcd layer runs: the journal keys a
    # remembered step by its command, and two layers' reloads with different triggers
    # under one key would each undo the other's record, so neither would converge.
    actions.append(
        Run(
            node,
            ("sh", "-c", "systemctl daemon-reload", "labctl-kubernetes-units"),
            triggers=tuple(s.digest for s in found),
            what="systemctl daemon-reload (for the kubernetes units)",
        )
    )
    for service in found:
        if service.unit == kubelet.UNIT_NAME:  # its static pods' images before it starts
            actions += ctx.platform.image_imports(ctx, server)
        actions += [
            Run(node, ("systemctl", "enable", service.unit)),
            Run(
                node,
                ("systemctl", "restart", service.unit),
                triggers=(service.digest, *version_trigger(ctx, service.unit)),
                what=f"systemctl restart {service.unit} (its files or certificates changed)",
            ),
            WaitFor(
                node,
                ("sh", "-c", _ensure_running(service.unit)),
                deadline=30.0,
                what=f"{service.unit} to be running",
            ),
        ]
    return actions + control_plane_ready(ctx, server)


# What a dry run plans from when the API cannot be asked: no Node to upgrade.
RUNNING = upgrade.RunningNodes()


class KubernetesLayer:
    name = "kubernetes"
    # The API server stores in etcd; every component's certificate is the pki layer's.
    needs = ("etcd", "pki")
    facts = (PkiFiles, upgrade.RunningNodes)

    def local_work(self) -> Mapping[str, LocalWorkFactory]:
        """The work of the ``LocalStep``s this layer's plans hold, by step name."""
        from labctl.kubernetes.work import AddonsWork, BinariesWork, NodesWork, ReadyWork

        return {
            "kubernetes.binaries": BinariesWork,
            upgrade.DRAIN: upgrade.DrainWork,
            upgrade.UNCORDON: upgrade.UncordonWork,
            "kubernetes.ready": ReadyWork,
            "kubernetes.addons": AddonsWork,
            "kubernetes.nodes": NodesWork,
        }

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        inventory = ctx.inventory
        # The binaries first, from this machine: a node's units and kubelet exec them.
        yield Plan.of("kubernetes: binaries", [binaries_step(ctx)])
        actions: list[Action] = []
        digests = []
        by_node: dict[str, list[Action]] = {}
        for server in c.nodes(inventory):
            node_plan = node_actions(ctx, server)
            by_node[server.name] = node_plan
            actions += node_plan
            digests += [a.fingerprint for a in node_plan]
        # A Node at another version: drained and upgraded batch by batch (kubernetes/upgrade.py).
        order = upgrade.order(inventory, ctx.fact(upgrade.RunningNodes, otherwise=RUNNING))
        if order:
            yield upgrade.rolling_upgrade(
                "kubernetes: nodes", inventory, by_node, order, disrupts_control_plane
            )
        else:
            # Nodes in parallel, but control-plane restarts one node at a time, each
            # waiting for the one before to be ready again.
            yield Plan.rolling("kubernetes: nodes", actions, disrupts_control_plane)
        digest = hashlib.sha256("".join(digests).encode()).hexdigest()
        api = c.api_url(inventory)
        yield Plan.of(
            "kubernetes: api",
            [LocalStep("kubernetes.ready", f"wait for {api}/readyz to answer ok", digest)],
        )
        yield Plan.of(
            "kubernetes: addons",
            [
                LocalStep(
                    "kubernetes.addons",
                    "apply RBAC for the API server's kubelet access, kube-proxy and CoreDNS",
                    digest,
                )
            ],
        )
        names = ", ".join(s.name for s in c.nodes(inventory))
        yield Plan.of(
            "kubernetes: registered",
            [LocalStep("kubernetes.nodes", f"wait until {names} are Nodes", digest)],
        )
