"""What Prometheus says of the lab: targets up or down by job, and firing alerts.

Read from Prometheus's own API (``/api/v1/targets``, ``/api/v1/alerts``) on the first
monitoring server, and compared with the targets the inventory implies
(``render/monitoring/targets.py``): a target the inventory implies that Prometheus
does not list is reported missing, so an old prometheus.yml shows. The reading
(``lab_status``) is pure: the API's JSON in, a ``Status`` out; ``ask`` and
``wait_all_up`` do the HTTP, each request bounded by a timeout.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from labctl.errors import LabctlError
from labctl.inventory.model import Inventory
from labctl.render.monitoring.targets import targets, unwatched_bgp

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


def seconds(duration: str) -> float:
    """A Prometheus duration (``30s``, ``1h30m``) in seconds."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"{duration!r} is not a Prometheus duration")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def wait_seconds(inv: Inventory) -> float:
    """How long the layer waits for every target: two scrape intervals and a minute for
    the programs to start (the first scrape of each target comes within one interval)."""
    return 2 * seconds(inv.cluster.monitoring.scrape_interval) + 60.0


def prometheus_url(inv: Inventory) -> str:
    """Where the operator's machine asks Prometheus: the first monitoring server."""
    found = [t for t in targets(inv) if t.job == "prometheus"]
    if not found:
        raise LabctlError("the inventory runs no Prometheus")
    return f"http://{found[0].address}"


@dataclass(frozen=True)
class Target:
    job: str
    instance: str
    health: str  # up, down, unknown (not scraped yet), missing (not in Prometheus)
    error: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"job": self.job, "instance": self.instance, "health": self.health,
                "error": self.error}  # fmt: skip


@dataclass(frozen=True)
class Alert:
    name: str
    instance: str
    severity: str
    since: str
    summary: str

    def as_dict(self) -> dict[str, str]:
        return {"alert": self.name, "instance": self.instance, "severity": self.severity,
                "since": self.since, "summary": self.summary}  # fmt: skip


@dataclass(frozen=True)
class Status:
    url: str
    targets: list[Target] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    # (switch, why): sessions the inventory implies that no target reads (not a failure:
    # how the inventory reads that switch; said so a green status does not overclaim)
    unwatched: list[tuple[str, str]] = field(default_factory=list)

    @property
    def not_up(self) -> list[Target]:
        return [t for t in self.targets if t.health != "up"]

    def by_job(self) -> dict[str, dict[str, list[str]]]:
        jobs: dict[str, dict[str, list[str]]] = {}
        for t in self.targets:
            jobs.setdefault(t.job, {}).setdefault(t.health, []).append(t.instance)
        return jobs

    def as_dict(self) -> dict[str, Any]:
        return {
            "prometheus": self.url,
            "jobs": self.by_job(),
            "targets": [t.as_dict() for t in self.targets],
            "firing": [a.as_dict() for a in self.alerts],
            "ok": not self.not_up and not self.alerts,
            "unwatched_bgp": [{"switch": sw, "why": why} for sw, why in self.unwatched],
        }

    def text(self) -> str:
        lines = [f"Prometheus {self.url}"]
        for job, states in self.by_job().items():
            up = len(states.get("up", []))
            total = sum(len(v) for v in states.values())
            bad = "; ".join(
                f"{health}: {', '.join(names)}"
                for health, names in states.items()
                if health != "up"
            )
            lines.append(f"  {job:<20} {up}/{total} up" + (f"  ({bad})" if bad else ""))
        for t in self.not_up:
            if t.error:
                lines.append(f"  {t.job}/{t.instance}: {t.error}")
        if self.alerts:
            lines.append("Firing:")
            for a in self.alerts:
                lines.append(
                    f"  {a.name} [{a.severity}] {a.instance}: {a.summary} (since {a.since})"
                )
        else:
            lines.append("Firing: none")
        for switch, why in self.unwatched:
            lines.append(f"Not watched: {switch}'s BGP sessions, {why}")
        return "\n".join(lines)


def lab_status(
    inv: Inventory, url: str, targets_doc: dict[str, Any], alerts_doc: dict[str, Any]
) -> Status:
    """The inventory's targets as Prometheus reports them, and the alerts firing. Pure."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for t in targets_doc.get("data", {}).get("activeTargets", []):
        labels = t.get("labels", {})
        seen[(labels.get("job", ""), labels.get("instance", ""))] = t
    out = []
    for want in targets(inv):
        found = seen.get((want.job, want.instance))
        if found is None:
            out.append(Target(want.job, want.instance, "missing", "not in Prometheus's targets"))
        else:
            out.append(
                Target(
                    want.job,
                    want.instance,
                    found.get("health", "unknown"),
                    found.get("lastError", ""),
                )
            )
    alerts = [
        Alert(
            a.get("labels", {}).get("alertname", ""),
            a.get("labels", {}).get("instance", ""),
            a.get("labels", {}).get("severity", ""),
            a.get("activeAt", ""),
            a.get("annotations", {}).get("summary", ""),
        )
        for a in alerts_doc.get("data", {}).get("alerts", [])
        if a.get("state") == "firing"
    ]
    return Status(url, out, alerts, unwatched_bgp(inv))


def _get(url: str, timeout: float) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            doc: dict[str, Any] = json.load(answer)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise LabctlError(f"Prometheus at {url} did not answer: {exc}") from exc
    if doc.get("status") != "success":
        raise LabctlError(f"Prometheus at {url} answered {doc.get('status')}: {doc.get('error')}")
    return doc


def ask(inv: Inventory, timeout: float = 5.0) -> Status:
    """Prometheus's word now, each request bounded by ``timeout`` seconds."""
    url = prometheus_url(inv)
    found = _get(f"{url}/api/v1/targets?state=active", timeout)
    alerts = _get(f"{url}/api/v1/alerts", timeout)
    return lab_status(inv, url, found, alerts)


def wait_all_up(inv: Inventory, timeout: float, interval: float = 2.0) -> tuple[float, Status]:
    """Seconds until every target the inventory implies is up, and the last status;
    LabctlError naming those still not up after ``timeout``."""
    start = time.monotonic()
    while True:
        try:
            status = ask(inv)
        except LabctlError as exc:
            why = str(exc)
        else:
            if not status.not_up:
                return time.monotonic() - start, status
            why = "; ".join(
                f"{t.job}/{t.instance} {t.health}" + (f" ({t.error})" if t.error else "")
                for t in status.not_up
            )
        if time.monotonic() - start > timeout:
            raise LabctlError(f"not every target is up after {timeout:g} s: {why}")
        time.sleep(interval)
