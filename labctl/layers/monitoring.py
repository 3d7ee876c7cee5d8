"""The monitoring layer: Prometheus watching the whole lab, from the same inventory.

Last in the bootstrap order, because it watches what the layers before it made; it
needs nothing of Ceph's, so it runs beside the ceph layer (its wait for the targets
waits for the managers as for any other). Plans, in order:

* **node-exporter and the BGP exporter** on every server: their users, their units
  (``render/monitoring/units.py``) and the tmpfiles entry that lets the BGP exporter's
  user talk to calico-node's BIRD, enabled, restarted when they changed, then a wait
  until each serves ``/metrics`` on the node.
* **Prometheus** on the monitoring servers (``cluster.monitoring``; the control plane by
  default): prometheus.yml, the inventory's alerting rules, alertmanager.yml with each
  receiver's secret in a file of its own, the SNMP exporter's snmp.yml and the IPMI
  exporter's modules (the device credentials: filled in from their references as the
  file is written, 0600 and owned by the exporter's own user, never in the plan), then
  the programs' users and the four units, each
  restarted when it or a file it reads changed, and a wait until each answers. etcd and
  the Kubernetes components are scraped with the ``prometheus`` client certificates
  the pki layer placed on these servers; a re-mint of them (their hash, from the fact
  ``PkiFiles``) restarts the units too, since Prometheus's unit copies the keys at start.
* Not here: the managers' ``prometheus`` module (it serves ``:9283``), which the ceph
  layer turns on once they run (``layers/ceph.py``, ``scraped``).
* **RBAC** (local work ``monitoring.rbac``): the ``labctl:prometheus`` ClusterRole
  (metrics and nothing else) and its binding to the user ``prometheus``, by
  server-side apply through the API.
* **targets** (local work ``monitoring.targets``): a bounded wait until Prometheus
  reports every target the inventory implies up (``render/monitoring/targets.py``):
  the one time the layer waits for a scrape.

Each program runs as its own user, never root, in a container of its image or as
Debian's binary (``platform.monitoring_runtime``: ``cluster.monitoring.runtime`` as the
lab runs it); the units say how (``render/monitoring/units.py``).

Running Prometheus on the operator's machine (``operator: true``) is not built: the
layer refuses it with a sentence rather than leave the lab half watched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from labctl.data import shell
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
from labctl.errors import LabctlError
from labctl.inventory.model import Inventory, SecretRef, Server
from labctl.inventory.problems import format_path
from labctl.monitoring.profiles import snmp_yml
from labctl.monitoring.status import wait_seconds
from labctl.pki.facts import PkiFiles
from labctl.pki.placement import TEXTFILE_DIR
from labctl.render import monitoring as render
from labctl.render.monitoring import units
from labctl.render.monitoring.targets import monitoring_servers

# Files holding secrets are written with these; the plan holds the masked text.
SecretFn = Callable[[SecretRef], str]
READY = 'for url; do curl -fsS -o /dev/null --max-time 2 "$url" || exit 1; done'
RESTART = 'systemctl restart "$@"'
USERS = shell.body("monitoring-users")


def masking(ref: SecretRef) -> str:
    """A secret's stand-in in the plan's text (never its value)."""
    return f"<secret: {ref.describe()}>"


def resolving(lookup: SecretFn) -> SecretFn:
    return lookup


class MonitoringLayer:
    name = "monitoring"
    # It watches what the others built: the prometheus identity (pki) and its RBAC
    # through the API (kubernetes). Not ceph (the managers' module is the ceph layer's
    # step) nor calico-resources (calico-node's BIRD, which the BGP exporter reads): the
    # wait for the targets waits for the managers and the BGP exporters like any other
    # target, within its bound, while those layers go on beside this one.
    needs = ("pki", "kubernetes")
    # The prometheus identity's files the pki layer placed: Prometheus's unit copies its
    # keys at start, so a re-minted one reaches Prometheus only through a restart.
    facts = (PkiFiles,)

    def local_work(self) -> Mapping[str, LocalWorkFactory]:
        """The work of the ``LocalStep``s this layer's plans hold, by step name."""
        from labctl.monitoring.work import RbacWork, TargetsWork

        return {"monitoring.rbac": RbacWork, "monitoring.targets": TargetsWork}

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        inv = ctx.inventory
        if inv.cluster.monitoring.operator:
            raise LabctlError(
                f"{ctx.inventory_path}: cluster.monitoring.operator: running Prometheus on "
                "the operator's machine is not built by the monitoring layer yet; name "
                "monitoring servers instead (docs/monitoring.md)"
            )
        yield Plan.of("monitoring: node-exporter", list(self.node_exporters(ctx)))
        yield Plan.of("monitoring: prometheus", list(self.servers(ctx)))
        rbac = render.dump(render.rbac())
        digest = hashlib.sha256(rbac.encode()).hexdigest()
        config = render.dump(render.prometheus_config(inv))
        yield Plan.of(
            "monitoring: targets",
            [
                LocalStep(
                    "monitoring.rbac",
                    "apply the ClusterRole labctl:prometheus (metrics only) and its binding",
                    digest,
                ),
                LocalStep(
                    "monitoring.targets",
                    f"wait up to {wait_seconds(inv):g} s for Prometheus to report every "
                    f"target the inventory implies up ({len(render_targets(inv))} targets)",
                    hashlib.sha256(config.encode()).hexdigest(),
                ),
            ],
        )

    def node_exporters(self, ctx: LayerContext) -> Iterator[Action]:
        runtime = ctx.platform.monitoring_runtime(ctx.inventory)
        tmpfiles = units.bird_tmpfiles().encode()
        for server in ctx.inventory.servers:
            node = server.name
            node_units = [
                units.node_exporter(ctx.inventory, server, runtime),
                units.bird_exporter(ctx.inventory, server, runtime),
            ]
            yield ssh_answers(node, ctx.inventory.lab.ssh.boot_wait)
            programs = [units.PROGRAMS[name] for name in units.NODE_UNITS]
            yield users(node, programs, "node-exporter")
            files = [
                PutFile(node, ctx.on_node(node, f"/etc/systemd/system/{u.name}"), u.text.encode())
                for u in node_units
            ]
            # Read by the BGP exporter's unit (as root) and by systemd-tmpfiles at boot.
            files.append(PutFile(node, ctx.on_node(node, units.BIRD_TMPFILES), tmpfiles))
            yield from files
            yield Run(
                node,
                ("mkdir", "-p", ctx.on_node(node, TEXTFILE_DIR)),
            )
            triggers = tuple(f.fingerprint for f in files)
            yield from start(ctx, server, node_units, triggers, (), "node-exporter")

    def servers(self, ctx: LayerContext) -> Iterator[Action]:
        inv = ctx.inventory

        def snmp(secret: SecretFn) -> str:
            return snmp_yml(inv, secret)

        def ipmi(secret: SecretFn) -> str:
            return render.dump(units.ipmi_config(inv, secret, workarounds))

        runtime = ctx.platform.monitoring_runtime(inv)
        programs = units.PROGRAMS
        workarounds = ctx.platform.ipmi_exporter_workarounds()
        plain = [
            (units.PROMETHEUS_YML, render.dump(render.prometheus_config(inv))),
            (units.RULES_YML, render.dump(render.alert_rules(inv))),
            (units.ALERTMANAGER_YML, render.dump(render.alertmanager_config(inv))),
        ]
        for server in monitoring_servers(inv):
            node = server.name
            unit_files = units.server_units(inv, server, runtime)
            files: list[PutFile] = [
                PutFile(node, ctx.on_node(node, path), text.encode(), 0o644, "root:root")
                for path, text in plain
            ]
            snmp_owner = programs[units.SNMP_EXPORTER].owner
            ipmi_owner = programs[units.IPMI_EXPORTER].owner
            files += [
                secret_file(ctx, node, units.SNMP_YML, snmp, snmp_uses(inv), snmp_owner),
                secret_file(ctx, node, units.IPMI_YML, ipmi, bmc_uses(inv), ipmi_owner),
                *receiver_files(ctx, node, programs[units.ALERTMANAGER].owner),
            ]
            files += [
                PutFile(node, ctx.on_node(node, f"/etc/systemd/system/{u.name}"), u.text.encode())
                for u in unit_files
            ]
            yield ssh_answers(node, inv.lab.ssh.boot_wait)
            yield users(node, [programs[name] for name in units.SERVER_UNITS], "monitoring")
            owned = (
                (units.PROMETHEUS_DATA, programs[units.PROMETHEUS].owner),
                (units.ALERTMANAGER_DATA, programs[units.ALERTMANAGER].owner),
                (units.IPMI_HOME, ipmi_owner),
            )
            yield Run(
                node,
                (
                    "mkdir",
                    "-p",
                    *(ctx.on_node(node, path) for path, _ in owned),
                    ctx.on_node(node, render.SERVER_PATHS.secrets),
                ),
            )
            # What each program writes is its own user's (-R: a lab monitored before
            # the programs had users of their own has root's files there).
            for path, owner in owned:
                yield Run(node, ("chown", "-R", owner, ctx.on_node(node, path)))
            yield from files
            triggers = (*(f.fingerprint for f in files), identity_digest(ctx, node))
            uses = tuple(u for f in files for u in f.secrets)
            yield from start(ctx, server, unit_files, triggers, uses, "monitoring")


def render_targets(inv: Inventory) -> list[Any]:
    from labctl.render.monitoring.targets import targets

    return targets(inv)


def start(
    ctx: LayerContext,
    server: Server,
    unit_files: list[units.UnitFile],
    triggers: tuple[str, ...],
    uses: tuple[SecretUse, ...],
    tag: str,
) -> Iterator[Action]:
    """The units reloaded, enabled, restarted when they or their files changed, and
    waited for until each answers on the node."""
    node = server.name
    names = [u.name for u in unit_files]
    digests = tuple(u.digest for u in unit_files)
    yield Run(
        node,
        # Its own name per call site: the journal keeps one fingerprint per command and
        # node, and fohn reloads for node-exporter and again for the server units.
        ("sh", "-c", "systemctl daemon-reload", f"labctl-{tag}-units"),
        triggers=digests,
        what="systemctl daemon-reload (the monitoring units changed)",
    )
    for name in names:
        yield Run(node, ("systemctl", "enable", name))
    yield Run(
        node,
        ("sh", "-c", RESTART, "labctl-monitoring-restart", *names),
        triggers=(*digests, *triggers),
        secrets=uses,
        what=f"systemctl restart {', '.join(names)}",
    )
    yield WaitFor(
        node,
        ("sh", "-c", READY, "labctl-monitoring-ready", *(u.ready_url for u in unit_files)),
        deadline=60.0,
        what=f"{', '.join(names)} to answer",
    )


def identity_digest(ctx: LayerContext, node: str) -> str:
    """The hash of the ``prometheus`` identity's certificates and keys (and the CAs) the
    pki layer placed on ``node``: Prometheus reads the certificates where they are but
    copies the keys at each start (``units.key_copies``), so a re-mint must restart it,
    or it would pair a new certificate with its old key's copy. Empty in a dry run with
    no PKI yet."""
    wanted = set(units.IDENTITY_FILES)
    placed = ctx.fact(PkiFiles, otherwise=PkiFiles()).of(node)
    h = hashlib.sha256()
    for f in placed:
        if f.path in wanted:
            h.update(f.path.encode() + b"\0" + f.content + b"\0")
    return h.hexdigest() if placed else ""


def users(node: str, programs: list[units.Program], tag: str) -> Run:
    """The programs' own system users on ``node``, made unless it has them."""
    pairs = [word for p in programs for word in (p.user, str(p.uid))]
    return Run(
        node,
        ("sh", "-c", USERS, f"labctl-{tag}-users", *pairs),
        what=f"the users {', '.join(p.user for p in programs)} (made unless there)",
    )


def secret_file(
    ctx: LayerContext,
    node: str,
    path: str,
    text: Callable[[SecretFn], str],
    uses: tuple[SecretUse, ...],
    owner: str,
) -> PutFile:
    """A file holding credentials: its program's user's (``owner``), 0600, its values
    filled in as written."""
    fill: Fill[SecretFn] = Fill(uses, text, masking, resolving)
    return PutFile(
        node, ctx.on_node(node, path), fill.masked(), 0o600, owner, secret=True, fill=fill
    )


def snmp_uses(inv: Inventory) -> tuple[SecretUse, ...]:
    found: dict[SecretRef, str] = {}
    devices: list[tuple[str, Any]] = [(f"pdus.{p.name}.snmp", p.snmp) for p in inv.pdus]
    devices += [(f"switches.{s.name}.snmp", s.snmp) for s in inv.switches if s.snmp is not None]
    for where, snmp in devices:
        for field in ("community", "auth_key", "priv_key"):
            ref = getattr(snmp, field, None)
            if ref is not None:
                found.setdefault(ref, f"{where}.{field}")
    return tuple(SecretUse(ref, where) for ref, where in found.items())


def bmc_uses(inv: Inventory) -> tuple[SecretUse, ...]:
    found: dict[SecretRef, str] = {}
    for s in inv.servers:
        found.setdefault(s.bmc.password, f"servers.{s.name}.bmc.password")
    return tuple(SecretUse(ref, where) for ref, where in found.items())


def receiver_files(ctx: LayerContext, node: str, owner: str) -> list[PutFile]:
    """Each receiver's secret in its own file, where alertmanager.yml names it."""
    out = []
    for r in ctx.inventory.cluster.monitoring.receivers:
        ref = r.secret
        if ref is None:  # LAB131 refuses such an inventory
            raise LabctlError(f"receiver {r.name} has no {r.secret_field} (LAB131)")
        use = SecretUse(ref, format_path((*r.path, r.secret_field)))

        def value(secret: SecretFn, ref: SecretRef = ref) -> str:
            return secret(ref)

        path = render.SERVER_PATHS.secret_file(r.name, r.secret_field)
        out.append(secret_file(ctx, node, path, value, (use,), owner))
    return out
