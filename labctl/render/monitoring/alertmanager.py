"""Alertmanager's configuration: where firing alerts go, from cluster.monitoring.receivers.

Every receiver gets every alert (one child route each, ``continue``), grouped by
alert and instance. Secrets never appear: a webhook's token is
``authorization.credentials_file`` and an email password ``auth_password_file``,
both paths the layer fills (0600) from the inventory's references. With no
receivers, alerts are kept in Alertmanager for ``labctl monitoring status``.
"""

from __future__ import annotations

from typing import Any

from labctl.inventory.model import Inventory, Receiver
from labctl.render.monitoring.paths import SERVER_PATHS, Paths

NOWHERE = "nowhere"  # the root route's receiver: holds alerts, sends nothing


def _receiver(inv: Inventory, r: Receiver, paths: Paths) -> dict[str, Any]:
    secret = paths.secret_file(r.name, r.secret_field)
    if r.type == "webhook":
        http = {"authorization": {"type": "Bearer", "credentials_file": secret}}
        return {
            "name": r.name,
            "webhook_configs": [{"url": r.url, "send_resolved": True, "http_config": http}],
        }
    sender = r.sender or f"alertmanager@{inv.lab.domain}"
    return {
        "name": r.name,
        "email_configs": [
            {
                "to": r.address,
                "from": sender,
                "smarthost": r.smarthost,
                "auth_username": r.username or sender,
                "auth_password_file": secret,
                "send_resolved": True,
            }
        ],
    }


def alertmanager_config(inv: Inventory, paths: Paths = SERVER_PATHS) -> dict[str, Any]:
    receivers = inv.cluster.monitoring.receivers
    route: dict[str, Any] = {
        "receiver": NOWHERE,
        "group_by": ["alertname", "instance"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
    }
    if receivers:
        route["routes"] = [{"receiver": r.name, "continue": True} for r in receivers]
    return {
        "route": route,
        "receivers": [{"name": NOWHERE}, *(_receiver(inv, r, paths) for r in receivers)],
    }
