"""A rolling etcd upgrade end to end: 3.4.23 -> 3.5.21 on a simulated three-member lab.

The smallest lab that proves it (power, PKI and etcd on three servers, in etcd's
default container runtime): the cluster is formed at Debian's 3.4.23, then the
inventory names 3.5.21 (``labctl etcd build``'s, in /var/cache/labctl/etcd).
``labctl plan`` names the order first: followers, the leader last. During the
upgrade a probe writes and reads a key every 0.5 s and asks every member's health:
no read fails, and never more than one member is down. labctl is SIGKILLed once the
first member answers at 3.5.21; the next run resumes, and does not restart that
member again (its process start time is unchanged). Afterwards every member runs
3.5.21, the cluster version is 3.5.0, the key written before is there, and a re-run
changes nothing. Its own lab: etcd refuses a downgrade, so the shared lab could not
be put back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from labctl.drivers.etcd import EtcdClient, EtcdEndpoint, EtcdTls
from labctl.errors import LabctlError
from tests.e2e.conftest import Lab, simulated_lab
from tests.labctl_process import run_labctl

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from gen_inventory import generate  # benchmarks/ holds scripts, not a package

pytestmark = pytest.mark.e2e
OLD, NEW = "3.4.23", "3.5.21"


def inventory(version: str) -> str:
    data = generate(3)
    data["cluster"].pop("ceph", None)  # not this test's: sim up makes no Ceph image
    for server in data["servers"]:
        server["roles"] = [r for r in server["roles"] if not r.startswith("ceph-")]
        server["disks"] = [d for d in server.get("disks", []) if d.get("role") != "osd"]
    data["cluster"]["pki"] = {"passphrase": {"env": "LABCTL_CA_PASSPHRASE"}, "operator": "e2e"}
    data["cluster"]["etcd"]["version"] = version
    return yaml.safe_dump(data, sort_keys=False)


@pytest.fixture
def lab3(tmp_path: Path) -> Iterator[Lab]:
    with simulated_lab(tmp_path, inventory(OLD)) as lab:
        yield lab


def labctl(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return run_labctl(*args, cwd=lab.workdir, env=lab.env(), timeout=900)


def bootstrap(lab: Lab, *args: str) -> dict[str, object]:
    done = labctl(lab, "bootstrap", "-o", "json", *args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report: dict[str, object] = json.loads(done.stdout)
    return report


def moved(report: dict[str, object]) -> list[dict[str, object]]:
    """The steps of ``report`` that did something (neither unchanged nor skipped)."""
    return [
        step
        for layer in report["layers"]  # type: ignore[attr-defined]
        for plan in layer["plans"]
        for step in plan["steps"]
        if step["outcome"] not in ("unchanged", "skipped")
    ]


def endpoints(lab: Lab) -> list[EtcdEndpoint]:
    data = yaml.safe_load((lab.workdir / "inventory.yaml").read_text())
    return [
        EtcdEndpoint(s["name"], f"https://{a['address']}:2379")
        for s in data["servers"]
        for nic in s["nics"]
        for a in nic.get("addresses", [])
        if a.get("network") == "public"
    ]


def client(lab: Lab, timeout: float = 2.0) -> EtcdClient:
    ssl = lab.workdir / "ssl"
    key = next(ssl.glob("etcd-client-*-key.pem"))
    tls = EtcdTls(ssl / "ca.pem", Path(str(key).replace("-key.pem", ".pem")), key)
    return EtcdClient(endpoints(lab), tls, timeout)


def started(lab: Lab, name: str) -> str:
    """When ``name``'s etcd process started, as it says in its metrics."""
    ssl = lab.workdir / "ssl"
    key = next(ssl.glob("etcd-client-*-key.pem"))
    url = next(e.url for e in endpoints(lab) if e.name == name)
    done = subprocess.run(
        ["curl", "-sf", "--cacert", str(ssl / "ca.pem"), "--cert",
         str(key).replace("-key.pem", ".pem"), "--key", str(key), f"{url}/metrics"],
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    return next(
        line.split()[1]
        for line in done.stdout.splitlines()
        if line.startswith("process_start_time_seconds ")
    )


@dataclass
class Probe:
    """Every 0.5 s: a key written and read back, and every member's health asked."""

    lab: Lab
    ticks: int = 0
    # When each tick began (monotonic): proves the probe watched the whole upgrade,
    # whatever the upgrade's length (a tick count only said how long it took).
    tick_times: list[float] = field(default_factory=list)
    failed_reads: list[str] = field(default_factory=list)
    failed_writes: list[str] = field(default_factory=list)
    most_down: int = 0
    down_seen: list[tuple[str, ...]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def wait_for_tick_after(self, moment: float, within: float = 30.0) -> None:
        """Until a tick has begun after ``moment`` (the probe's clients are connected)."""
        end = time.monotonic() + within
        while not (self.tick_times and self.tick_times[-1] > moment):
            assert time.monotonic() < end, f"the probe did not tick within {within} s"
            time.sleep(0.05)

    def run(self) -> None:
        with client(self.lab, 1.5) as kv, client(self.lab, 1.0) as health:
            while not self.stop.is_set():
                self.ticks += 1
                self.tick_times.append(time.monotonic())
                value = f"tick-{self.ticks}".encode()
                try:
                    kv.put("/labctl/probe", value)
                except LabctlError as exc:
                    self.failed_writes.append(f"tick {self.ticks}: {exc}")
                    value = b""
                try:
                    got = kv.get("/labctl/probe")
                    if value and got != value:
                        self.failed_reads.append(f"tick {self.ticks}: read {got!r}, not {value!r}")
                except LabctlError as exc:
                    self.failed_reads.append(f"tick {self.ticks}: {exc}")
                down = tuple(e.name for e in health.endpoints if health.healthy(e) is not None)
                if down:
                    self.down_seen.append(down)
                self.most_down = max(self.most_down, len(down))
                self.stop.wait(0.5)


def test_etcd_upgrades_member_by_member_resumes_after_sigkill_and_moves_the_cluster_version(
    lab3: Lab,
) -> None:
    lab = lab3
    bootstrap(lab, "--only", "power", "--only", "pki", "--only", "etcd")
    with client(lab) as c:
        c.put("/labctl/e2e", b"kept")
        states = {e.name: c.status(e) for e in c.endpoints}
    assert {s.version for s in states.values()} == {OLD}
    leader = next(name for name, s in states.items() if s.is_leader)

    # The plan names the order before anything moves: followers, then the leader.
    (lab.workdir / "inventory.yaml").write_text(inventory(NEW))
    shown = labctl(lab, "plan", "-o", "json")
    plan = json.loads(shown.stdout)
    (etcd,) = [v for v in plan["versions"] if v["component"] == "etcd"]
    assert etcd["change"] == "upgrade", etcd
    order = [batch[0] for batch in etcd["order"]]
    assert sorted(order) == sorted(states) and order[-1] == leader, (order, leader)

    probe = Probe(lab)
    watcher = threading.Thread(target=probe.run, daemon=True)
    watcher.start()
    try:
        probe.wait_for_tick_after(time.monotonic())
        begun = time.monotonic()
        victim = subprocess.Popen(
            [sys.executable, "-m", "labctl", "bootstrap", "--only", "pki", "--only", "etcd"],
            cwd=lab.workdir, env={**os.environ, **lab.env()},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        first = None
        with client(lab, 1.0) as c:
            end = time.monotonic() + 600
            while victim.poll() is None and time.monotonic() < end and first is None:
                for e in c.endpoints:
                    try:
                        if c.status(e).version == NEW and c.healthy(e) is None:
                            first = e.name
                    except LabctlError:
                        pass
                time.sleep(0.2)
        assert first is not None, "no member reached 3.5.21 before labctl ended"
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        killed_after = time.monotonic() - begun
        assert first == order[0], (first, order)
        first_started = started(lab, first)

        resumed_at = time.monotonic()
        bootstrap(lab, "--only", "pki", "--only", "etcd")
        resumed_done = time.monotonic()
        resumed = resumed_done - resumed_at
        probe.wait_for_tick_after(resumed_done)
    finally:
        probe.stop.set()
        watcher.join(timeout=30)

    assert started(lab, first) == first_started, f"{first} was restarted again on resume"
    # The probe watched from before the upgrade began to after the resumed run ended,
    # never blind for longer than one slow tick (two 1.5 s KV timeouts, three 1 s
    # health asks, the 0.5 s pause): no member could go down unseen.
    assert probe.tick_times and probe.tick_times[0] < begun, probe
    assert probe.tick_times[-1] > resumed_done, probe
    gaps = [b - a for a, b in zip(probe.tick_times, probe.tick_times[1:], strict=False)]
    assert max(gaps) < 8.0, (max(gaps), probe)
    assert probe.failed_reads == [], probe.failed_reads
    assert probe.most_down <= 1, probe.down_seen
    with client(lab) as c:
        assert {c.status(e).version for e in c.endpoints} == {NEW}
        assert {c.versions(e).cluster for e in c.endpoints} == {"3.5.0"}
        assert c.get("/labctl/e2e") == b"kept"
    print(
        f"etcd {OLD} -> {NEW}: killed after {killed_after:.1f} s (first member up at {NEW}), "
        f"resumed run {resumed:.1f} s; probe: {probe.ticks} ticks, "
        f"{len(probe.failed_writes)} failed writes, members down at once at most "
        f"{probe.most_down}"
    )

    # Converged: a re-run restarts nothing.
    assert moved(bootstrap(lab, "--only", "etcd")) == []
