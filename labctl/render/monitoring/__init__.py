"""What the monitoring layer will install, rendered from the inventory (pure).

Prometheus's ``prometheus.yml`` and alerting rules, Alertmanager's
``alertmanager.yml``, the SNMP exporter's ``snmp.yml``, the RBAC that lets
Prometheus read metrics and nothing else, and Grafana dashboards: each a function of the inventory
returning Python data the caller dumps to YAML. Nothing here reads a secret:
Alertmanager gets ``*_file`` paths, and the SNMP modules take a resolver the
caller supplies. The layer that writes and runs these on the lab is not built yet
(docs/monitoring.md); the tests prove the renders with Debian's own promtool,
amtool and snmp_exporter, offline.
"""

from __future__ import annotations

from typing import Any

import yaml

from labctl.render.monitoring.alertmanager import alertmanager_config
from labctl.render.monitoring.dashboards import dashboards
from labctl.render.monitoring.paths import OPERATOR_PATHS, SERVER_PATHS, Paths
from labctl.render.monitoring.prometheus import prometheus_config, prometheus_flags, rbac
from labctl.render.monitoring.rules import alert_rules
from labctl.render.monitoring.snmp import snmp_config

__all__ = [
    "OPERATOR_PATHS",
    "SERVER_PATHS",
    "Paths",
    "alert_rules",
    "alertmanager_config",
    "dashboards",
    "dump",
    "prometheus_config",
    "prometheus_flags",
    "rbac",
    "snmp_config",
]


def dump(document: Any) -> str:
    """A rendered document as the YAML its program reads, keys in the render's order."""
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=100)
