"""The monitoring programs' systemd units and the IPMI exporter's config, from the inventory.

What the monitoring layer runs and with what command line, as data (pure): node-exporter
on every server; Prometheus, Alertmanager and the IPMI and SNMP exporters on the
monitoring servers. They run Debian 12's binaries (``prometheus``,
``prometheus-node-exporter``, ``prometheus-alertmanager``, ``prometheus-ipmi-exporter``,
``prometheus-snmp-exporter``) from units of labctl's own (``labctl-*``), so they never
collide with a package's own units, and as root: their files (client keys, the
exporters' credentials) are root's and 0600. The exporters that hold device
credentials listen on loopback only; Prometheus asks them there (``paths.py``).

``ipmi_config`` is the IPMI exporter's module per BMC (user, password, LAN 2.0, the
collectors for sensors, chassis power and the SEL); like snmp.yml it takes the
password only through ``resolve``, so this module never reads a secret.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labctl.inventory.model import Inventory, SecretRef
from labctl.render.monitoring.paths import SERVER_PATHS
from labctl.render.monitoring.prometheus import prometheus_flags
from labctl.render.monitoring.targets import (
    ALERTMANAGER_PORT,
    NODE_EXPORTER_PORT,
    PROMETHEUS_PORT,
)
from labctl.render.systemd import Unit, exec_command, unit_text

CONFIG_DIR = "/etc/prometheus"
PROMETHEUS_YML = f"{CONFIG_DIR}/labctl-prometheus.yml"
ALERTMANAGER_YML = f"{CONFIG_DIR}/labctl-alertmanager.yml"
SNMP_YML = f"{CONFIG_DIR}/labctl-snmp.yml"
IPMI_YML = f"{CONFIG_DIR}/labctl-ipmi.yml"
RULES_YML = SERVER_PATHS.rules
PROMETHEUS_DATA = "/var/lib/prometheus/labctl"
ALERTMANAGER_DATA = "/var/lib/prometheus/labctl-alertmanager"
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"

NODE_EXPORTER = "labctl-node-exporter.service"
PROMETHEUS = "labctl-prometheus.service"
ALERTMANAGER = "labctl-alertmanager.service"
SNMP_EXPORTER = "labctl-snmp-exporter.service"
IPMI_EXPORTER = "labctl-ipmi-exporter.service"
# The monitoring servers' units in the order they start: exporters before Prometheus.
SERVER_UNITS = (IPMI_EXPORTER, SNMP_EXPORTER, ALERTMANAGER, PROMETHEUS)

Resolve = Callable[[SecretRef], str]


@dataclass(frozen=True)
class UnitFile:
    name: str
    text: str
    ready_url: str  # what answers once the program serves (asked on the node itself)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


def _unit(what: str, argv: list[str]) -> Unit:
    return {
        "Unit": [
            ("Description", f"{what} (written by labctl's monitoring layer)"),
            ("Wants", "network-online.target"),
            ("After", "network-online.target"),
        ],
        "Service": [
            ("ExecStart", exec_command(argv)),
            ("Restart", "always"),
            ("RestartSec", "5"),
        ],
        "Install": [("WantedBy", "multi-user.target")],
    }


def _file(name: str, what: str, argv: list[str], ready: str) -> UnitFile:
    return UnitFile(name, unit_text(_unit(what, argv)), ready)


def node_exporter() -> UnitFile:
    return _file(
        NODE_EXPORTER,
        "Prometheus node exporter",
        [
            "/usr/bin/prometheus-node-exporter",
            f"--web.listen-address=:{NODE_EXPORTER_PORT}",
            f"--collector.textfile.directory={TEXTFILE_DIR}",
        ],
        f"http://127.0.0.1:{NODE_EXPORTER_PORT}/metrics",
    )


def server_units(inv: Inventory) -> list[UnitFile]:
    """The monitoring servers' units, in ``SERVER_UNITS`` order."""
    ipmi = SERVER_PATHS.ipmi_exporter
    snmp = SERVER_PATHS.snmp_exporter
    return [
        _file(
            IPMI_EXPORTER,
            "Prometheus IPMI exporter (every BMC of the inventory)",
            [
                "/usr/bin/prometheus-ipmi-exporter",
                f"--config.file={IPMI_YML}",
                f"--web.listen-address={ipmi}",
            ],
            f"http://{ipmi}/metrics",
        ),
        _file(
            SNMP_EXPORTER,
            "Prometheus SNMP exporter (PDUs, switches' BGP sessions)",
            [
                "/usr/bin/prometheus-snmp-exporter",
                f"--config.file={SNMP_YML}",
                f"--web.listen-address={snmp}",
            ],
            f"http://{snmp}/metrics",
        ),
        _file(
            ALERTMANAGER,
            "Prometheus Alertmanager",
            [
                "/usr/bin/prometheus-alertmanager",
                f"--config.file={ALERTMANAGER_YML}",
                f"--storage.path={ALERTMANAGER_DATA}",
                f"--web.listen-address=:{ALERTMANAGER_PORT}",
                # One Alertmanager per server, not a gossip cluster: no cluster port.
                "--cluster.listen-address=",
            ],
            f"http://127.0.0.1:{ALERTMANAGER_PORT}/-/ready",
        ),
        _file(
            PROMETHEUS,
            "Prometheus",
            [
                "/usr/bin/prometheus",
                *prometheus_flags(inv, PROMETHEUS_YML),
                f"--storage.tsdb.path={PROMETHEUS_DATA}",
                f"--web.listen-address=:{PROMETHEUS_PORT}",
            ],
            f"http://127.0.0.1:{PROMETHEUS_PORT}/-/ready",
        ),
    ]


def ipmi_config(
    inv: Inventory, resolve: Resolve, workarounds: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The IPMI exporter's modules, one per server's BMC (the module Prometheus names);
    ``workarounds`` are FreeIPMI's flags the platform says its BMCs need."""
    modules: dict[str, Any] = {}
    for server in inv.servers:
        bmc = server.bmc
        module: dict[str, Any] = {
            "user": bmc.username,
            "pass": resolve(bmc.password),
            "driver": "LAN_2_0",
            "privilege": "admin",
            "timeout": 10000,
            "collectors": ["bmc", "ipmi", "chassis", "sel"],
        }
        if workarounds:
            module["workaround_flags"] = list(workarounds)
        modules[server.name] = module
    return {"modules": modules}
