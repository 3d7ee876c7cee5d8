"""The monitoring layer: Prometheus watching the whole lab, from the same inventory.

Last in the bootstrap order, because it watches what the layers before it made.
Plans, in order:

* **node-exporter** on every server: its unit (``render/monitoring/units.py``), enabled,
  restarted when it changed, then a wait until it serves ``/metrics`` on the node.
* **Prometheus** on the monitoring servers (``cluster.monitoring``; the control plane by
  default): prometheus.yml, the inventory's alerting rules, alertmanager.yml with each
  receiver's secret in a file of its own, the SNMP exporter's snmp.yml and the IPMI
  exporter's modules (the device credentials: filled in from their references as the
  file is written, root's and 0600, never in the plan), then the four units, each
  restarted when it or a file it reads changed, and a wait until each answers. etcd and
  the Kubernetes components are scraped with the ``prometheus`` client certificates
  the pki layer placed on these servers.
* **Ceph**: the manager's ``prometheus`` module turned on (it serves ``:9283``).
* **RBAC** (local work ``monitoring.rbac``): the ``labctl:prometheus`` ClusterRole
  (metrics and nothing else) and its binding to the user ``prometheus``, by
  server-side apply through the API.
* **targets** (local work ``monitoring.targets``): a bounded wait until Prometheus
  reports every target the inventory implies up (``render/monitoring/targets.py``):
  the one time the layer waits for a scrape.

Running Prometheus on the operator's machine (``operator: true``) is not built: the
layer refuses it with a sentence rather than leave the lab half watched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

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
from labctl.render import ceph as ceph_render
from labctl.render import monitoring as render
from labctl.render.monitoring import units
from labctl.render.monitoring.targets import monitoring_servers

# Files holding secrets are written with these; the plan holds the masked text.
SecretFn = Callable[[SecretRef], str]
READY = 'for url; do curl -fsS -o /dev/null --max-time 2 "$url" || exit 1; done'
RESTART = 'systemctl restart "$@"'
MGR_MODULE = 'exec "$@" mgr module enable prometheus --force'


def masking(ref: SecretRef) -> str:
    """A secret's stand-in in the plan's text (never its value)."""
    return f"<secret: {ref.describe()}>"


def resolving(lookup: SecretFn) -> SecretFn:
    return lookup


class MonitoringLayer:
    name = "monitoring"
    # It watches what the others built: the prometheus identity (pki), its RBAC through
    # the API (kubernetes), the Ceph manager's module (ceph), and it waits until every
    # target the inventory implies is up, the pod network's among them (calico-resources).
    needs = ("pki", "kubernetes", "calico-resources", "ceph")

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
        if inv.cluster.ceph is not None:
            yield Plan.of("monitoring: ceph module", [self.ceph_module(inv)])
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
        unit = units.node_exporter()
        for server in ctx.inventory.servers:
            node = server.name
            yield ssh_answers(node, ctx.inventory.lab.ssh.boot_wait)
            yield PutFile(
                node, ctx.on_node(node, f"/etc/systemd/system/{unit.name}"), unit.text.encode()
            )
            yield Run(
                node,
                ("mkdir", "-p", ctx.on_node(node, units.TEXTFILE_DIR)),
            )
            yield from start(ctx, server, [unit], (unit.digest,), (), "node-exporter")

    def servers(self, ctx: LayerContext) -> Iterator[Action]:
        inv = ctx.inventory

        def snmp(secret: SecretFn) -> str:
            return snmp_yml(inv, secret)

        def ipmi(secret: SecretFn) -> str:
            return render.dump(units.ipmi_config(inv, secret, workarounds))

        unit_files = units.server_units(inv)
        workarounds = ctx.platform.ipmi_exporter_workarounds()
        plain = [
            (units.PROMETHEUS_YML, render.dump(render.prometheus_config(inv))),
            (units.RULES_YML, render.dump(render.alert_rules(inv))),
            (units.ALERTMANAGER_YML, render.dump(render.alertmanager_config(inv))),
        ]
        for server in monitoring_servers(inv):
            node = server.name
            files: list[PutFile] = [
                PutFile(node, ctx.on_node(node, path), text.encode(), 0o644, "root:root")
                for path, text in plain
            ]
            files += [
                secret_file(ctx, node, units.SNMP_YML, snmp, snmp_uses(inv)),
                secret_file(ctx, node, units.IPMI_YML, ipmi, bmc_uses(inv)),
                *receiver_files(ctx, node),
            ]
            files += [
                PutFile(node, ctx.on_node(node, f"/etc/systemd/system/{u.name}"), u.text.encode())
                for u in unit_files
            ]
            yield ssh_answers(node, inv.lab.ssh.boot_wait)
            yield Run(
                node,
                (
                    "mkdir",
                    "-p",
                    ctx.on_node(node, units.PROMETHEUS_DATA),
                    ctx.on_node(node, units.ALERTMANAGER_DATA),
                    ctx.on_node(node, render.SERVER_PATHS.secrets),
                ),
            )
            yield from files
            triggers = tuple(f.fingerprint for f in files)
            uses = tuple(u for f in files for u in f.secrets)
            yield from start(ctx, server, unit_files, triggers, uses, "monitoring")

    def ceph_module(self, inv: Inventory) -> Run:
        mon = ceph_render.mons(inv)[0]
        cli = ceph_render.tool(inv, mon, "ceph", ceph_render.runtime(inv))
        return Run(
            mon.name,
            ("sh", "-c", MGR_MODULE, "labctl-ceph-mgr-prometheus", *cli),
            timeout=60.0,
            what="ceph mgr module enable prometheus (the managers serve :9283)",
        )


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


def secret_file(
    ctx: LayerContext,
    node: str,
    path: str,
    text: Callable[[SecretFn], str],
    uses: tuple[SecretUse, ...],
) -> PutFile:
    """A file holding device credentials: root's, 0600, its values filled in as written."""
    fill: Fill[SecretFn] = Fill(uses, text, masking, resolving)
    return PutFile(
        node, ctx.on_node(node, path), fill.masked(), 0o600, "root:root", secret=True, fill=fill
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


def receiver_files(ctx: LayerContext, node: str) -> list[PutFile]:
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
        out.append(secret_file(ctx, node, path, value, (use,)))
    return out
