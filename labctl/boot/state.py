"""Where a boot service keeps its files, and the install reports it receives.

The service runs as processes of its own (dnsmasq, the HTTP endpoint) while the
os layer's steps wait on what it writes, so everything between them goes
through files in the state directory: pid files to stop exactly what was
started, the request log (one JSON line per answer, with its time), and one
report per server, written atomically when its installer POSTs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.files import write_atomic


@dataclass(frozen=True)
class BootDirs:
    root: Path

    @classmethod
    def of(cls, state_dir: Path) -> BootDirs:
        # Absolute: dnsmasq changes to / at start, so a relative path would point there.
        return cls(state_dir.resolve() / "boot")

    @property
    def tftp(self) -> Path:
        return self.root / "tftp"

    @property
    def dnsmasq_conf(self) -> Path:
        return self.root / "dnsmasq.conf"

    @property
    def dnsmasq_pid(self) -> Path:
        return self.root / "dnsmasq.pid"

    @property
    def dnsmasq_log(self) -> Path:
        return self.root / "dnsmasq.log"

    @property
    def leases(self) -> Path:
        return self.root / "dnsmasq.leases"

    @property
    def http_pid(self) -> Path:
        return self.root / "http.pid"

    @property
    def http_log(self) -> Path:
        return self.root / "http.log"

    @property
    def serving(self) -> Path:
        """The fingerprint of what the running service was started to serve."""
        return self.root / "serving"

    @property
    def requests(self) -> Path:
        return self.root / "requests.jsonl"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def report_path(self, server: str) -> Path:
        return self.reports / f"{server}.json"


@dataclass(frozen=True)
class Report:
    """What a server's installer said: ok or failed, and its own words."""

    server: str
    result: str
    message: str
    received: float
    address: str

    @property
    def ok(self) -> bool:
        return self.result == "ok"

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def write_report(dirs: BootDirs, report: Report) -> None:
    write_atomic(dirs.report_path(report.server), (json.dumps(report.as_dict()) + "\n").encode())


def read_report(dirs: BootDirs, server: str) -> Report | None:
    path = dirs.report_path(server)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return Report(
        str(data.get("server", server)),
        str(data.get("result", "failed")),
        str(data.get("message", "")),
        float(data.get("received", 0.0)),
        str(data.get("address", "")),
    )


def clear_report(dirs: BootDirs, server: str) -> None:
    dirs.report_path(server).unlink(missing_ok=True)


def now() -> float:
    return time.time()
