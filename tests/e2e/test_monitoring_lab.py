"""The monitoring layer end to end on the shared simulated lab, with Debian's programs.

After power, pki, etcd, kubernetes and calico, `labctl bootstrap --only monitoring`
runs node-exporter on every node and Prometheus, Alertmanager and the IPMI and SNMP
exporters on fohn; then every target the inventory implies (listed from the
inventory by ``render/monitoring/targets.py``) must be up in Prometheus's own
``/api/v1/targets``: the BMCs read over IPMI and the PDUs and astrid over SNMPv3 with
the inventory's credentials, etcd and the Kubernetes components over TLS with the
``prometheus`` identity the pki layer minted, under the metrics-only ClusterRole.
Every BGP session the inventory implies (the node-to-node mesh and each node's side of
its switch sessions) is Established as Prometheus reads it from each node's BGP
exporter (Debian's prometheus-bird-exporter on calico-node's BIRD socket).
Every certificate the pki layer placed has its notAfter in Prometheus, read by each
node's node-exporter from the textfile the pki layer wrote beside them, equal to the
store's. `labctl monitoring status -o json` says the same. Every program runs as the container
of its image the inventory names (``docker ps`` on the node; the images are made by
`sim up` from Debian's binaries, no override from `sim env`), and none as root: each
process's uid, read from this machine's /proc (the nodes share its kernel), is its
program's own.

Then the alerts meet the real Prometheus: wind is powered off through its BMC
(ipmitool, a hard off) until NodeDown (wind) and EtcdQuorumAtRisk (2 of 3 members up)
fire, and on again until both resolve, each time measured; then pdu1's outlet 1 (fohn's
first supply: fohn, where Prometheus runs, keeps its second) is cut over SNMPv3 until
the PDU's status string as Prometheus reads it from the SNMP exporter says so, and
switched back. The test's inventory sets those two alerts' ``for:`` to 10 s
(``alert_for``; their own is 1m), so the bound is that, a scrape interval and a
scrape timeout (5 s each) and an evaluation (5 s), and the lab ends as it started:
every target up, nothing firing.

The inventory is the reference one without its Ceph section (written beside it as
monitoring.yaml): the shared lab never runs the ceph layer (its PGs would cost
minutes, tests/e2e/test_ceph_lab.py has its own lab), and a scrape interval of 5 s
keeps the layer's one wait short. Run in name order, the shared lab comes from
tests/e2e/test_kubernetes_lab.py's last test with etcd and Kubernetes already formed
(their first bootstraps are proven there), so their runs here are converged ones and
calico's and monitoring's are still their first on this lab; run alone, it bootstraps
them all from nothing. The test takes the lab down at its end: it leaves a control
plane and the monitoring units enabled, and the next file's tests use labs of their
own anyway.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from labctl.inventory.topology import sessions
from labctl.pki import expiry
from labctl.pki.lab_pki import PkiSession
from labctl.pki.placement import node_files
from labctl.render.monitoring import units
from labctl.render.monitoring.targets import targets
from tests.conftest import REFERENCE
from tests.e2e.conftest import DIGIPOWER_STATUS, NODES, SECRETS, Lab, release_shared_lab, run
from tests.labctl_process import run_labctl

pytestmark = pytest.mark.e2e

ALERT_FOR = "10s"  # the test inventory's for: of NodeDown and EtcdQuorumAtRisk
# A condition is seen within a scrape interval and a scrape timeout (5 s each), held for
# ALERT_FOR, then seen firing at the next evaluation (5 s): 25 s, and 20 s to spare.
FIRE_BOUND = 45.0
RESOLVE_BOUND = 90.0  # wind boots, its units start, the next scrape and evaluation
PROMETHEUS = f"http://{NODES['fohn']}:9090"


def monitoring_inventory() -> str:
    """The reference inventory without Ceph, scraped every 5 s, NodeDown and
    EtcdQuorumAtRisk firing after 10 s (not their own 1m)."""
    text = REFERENCE.read_text()
    text = text[: text.index("\n  ceph:\n") + 1]
    for role in (", ceph-mon", ", ceph-osd", ", ceph-mds"):
        text = text.replace(role, "")
    return text.replace(
        "\ncluster:\n",
        "\ncluster:\n  monitoring:\n    scrape_interval: 5s\n"
        f"    alert_for: {{NodeDown: {ALERT_FOR}, EtcdQuorumAtRisk: {ALERT_FOR}}}\n",
        1,
    )


def labctl(lab: Lab, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return run_labctl(*args, "-i", "monitoring.yaml", cwd=lab.workdir, env=lab.env(),
                      timeout=timeout)  # fmt: skip


def pss_mib(prefix: str) -> float:
    """The Pss of every process on this machine whose program starts with ``prefix``."""
    total = 0
    for proc in Path("/proc").iterdir():
        try:
            argv0 = (proc / "cmdline").read_bytes().split(b"\0", 1)[0].decode()
            if not argv0.startswith(prefix):
                continue
            rollup = (proc / "smaps_rollup").read_text()
        except (OSError, ValueError):
            continue
        total += next(
            int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")
        )
    return total / 1024


def processes(program: str) -> list[tuple[int, int]]:
    """(pid, real uid) of every process on this machine whose argv[0] is ``program``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if (proc / "cmdline").read_bytes().split(b"\0", 1)[0].decode() != program:
                continue
            status = (proc / "status").read_text()
        except (OSError, ValueError):
            continue
        uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
        found.append((int(proc.name), int(uid)))
    return found


def prometheus(path: str, **params: str) -> Any:
    """Prometheus's answer on fohn (its ``data``)."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{PROMETHEUS}{path}{query}", timeout=5) as answer:
        return json.load(answer)["data"]


def firing() -> set[tuple[str, str]]:
    """(alert, instance) of every alert Prometheus has firing now."""
    return {
        (a["labels"]["alertname"], a["labels"].get("instance", ""))
        for a in prometheus("/api/v1/alerts")["alerts"]
        if a["state"] == "firing"
    }


def wait(what: str, bound: float, done: Callable[[], bool]) -> float:
    """Seconds until ``done()``, polled every half second; fails after ``bound``."""
    start = time.monotonic()
    while not done():
        assert time.monotonic() - start < bound, f"{what}: not within {bound:g} s"
        time.sleep(0.5)
    return time.monotonic() - start


def chassis(bmc: str, password: str, verb: str) -> None:
    """`ipmitool chassis power VERB` to a BMC, as an operator would (a hard off)."""
    argv = ["ipmitool", "-I", "lanplus", "-C", "3", "-H", bmc, "-U", "labctl", "-P", password]
    done = run(*argv, "chassis", "power", verb)
    assert done.returncode == 0, done.stdout + done.stderr


def pdu_outlets(address: str, states: str, secrets: dict[str, str]) -> None:
    """Set a DigiPower PDU's outlets from its status string (``0,1,1,...``) over SNMPv3."""
    snmp = ["-v3", "-l", "authPriv", "-u", "labctl", "-a", "SHA", "-A"]
    snmp += [secrets["LABCTL_PDU_AUTH_KEY"], "-x", "AES", "-X", secrets["LABCTL_PDU_PRIV_KEY"]]
    done = run("snmpset", *snmp, address, DIGIPOWER_STATUS, "s", states)
    assert done.returncode == 0, done.stdout + done.stderr


def sample(expr: str) -> dict[str, Any]:
    """The one series ``expr`` gives now (its ``metric`` labels and ``value``)."""
    found = prometheus("/api/v1/query", query=expr)["result"]
    assert len(found) == 1, (expr, found)
    return dict(found[0])


def outlet_status(pdu: str) -> str:
    """The PDU's status string as Prometheus last read it through the SNMP exporter
    (``pdu_outlet_status`` carries it as a label of the same name)."""
    return str(sample(f'pdu_outlet_status{{instance="{pdu}"}}')["metric"]["pdu_outlet_status"])


@dataclass(frozen=True)
class AlertTimes:
    """Seconds measured by one ``alerts_round``."""

    fired: float  # wind off by its BMC until NodeDown and EtcdQuorumAtRisk fire
    resolved: float  # wind on until neither fires
    cut_seen: float  # pdu1:1 cut until Prometheus reads it off
    back_seen: float  # pdu1:1 on again until Prometheus reads it on
    settled: float  # then until every target is up and nothing fires

    def line(self) -> str:
        return (
            f"wind off by its BMC: NodeDown and EtcdQuorumAtRisk firing in {self.fired:.1f} s "
            f"(for: {ALERT_FOR}); on: resolved in {self.resolved:.1f} s; pdu1:1 cut seen in "
            f"{self.cut_seen:.1f} s, back in {self.back_seen:.1f} s; every target up and "
            f"nothing firing {self.settled:.1f} s later"
        )


def alerts_round(
    inventory: Inventory,
    secrets: dict[str, str],
    status: Callable[[], subprocess.CompletedProcess[str]],
) -> AlertTimes:
    """Power wind off through its BMC until NodeDown and EtcdQuorumAtRisk fire, on until
    they resolve; cut pdu1:1 until Prometheus reads it, switch it back; then wait until
    the lab is whole again. ``status`` runs `labctl monitoring status -o json` on the
    lab (benchmarks/bench_monitoring.py times rounds of the same)."""
    bmc = next(s.bmc for s in inventory.servers if s.name == "wind")
    pdu1 = next(p for p in inventory.pdus if p.name == "pdu1")
    password = secrets["LABCTL_BMC_PASSWORD_WIND"]
    wind_alerts = {("NodeDown", "wind"), ("EtcdQuorumAtRisk", "")}

    chassis(bmc.address, password, "off")
    fired = wait("NodeDown and EtcdQuorumAtRisk firing", FIRE_BOUND,
                 lambda: wind_alerts <= firing())  # fmt: skip
    # The BMC still answers, and says the chassis is off.
    assert sample('ipmi_chassis_power_state{instance="wind"}')["value"][1] == "0"
    done = status()
    report = json.loads(done.stdout)
    assert done.returncode == 1 and not report["ok"], done.stdout + done.stderr
    assert wind_alerts <= {(a["alert"], a["instance"]) for a in report["firing"]}, report
    down = {(t["job"], t["instance"]) for t in report["targets"] if t["health"] == "down"}
    assert {("node", "wind"), ("etcd", "wind")} <= down, report["targets"]

    chassis(bmc.address, password, "on")
    resolved = wait("NodeDown and EtcdQuorumAtRisk resolved", RESOLVE_BOUND,
                    lambda: not wind_alerts & firing())  # fmt: skip

    normal = outlet_status("pdu1")
    assert normal.split(",")[0] == "1", normal  # outlet 1 (fohn's first supply) is on
    cut = ",".join(["0", *normal.split(",")[1:]])
    pdu_outlets(pdu1.address, cut, secrets)
    try:
        cut_seen = wait("pdu1:1 off in Prometheus", 20, lambda: outlet_status("pdu1") == cut)
    finally:
        pdu_outlets(pdu1.address, normal, secrets)
    back_seen = wait("pdu1:1 on in Prometheus", 20, lambda: outlet_status("pdu1") == normal)

    def whole() -> bool:
        done = status()
        return done.returncode == 0 and bool(json.loads(done.stdout)["ok"])

    settled = wait("every target up, nothing firing", 120, whole)
    return AlertTimes(fired, resolved, cut_seen, back_seen, settled)


def test_every_target_the_inventory_implies_is_up(shared_lab: Lab) -> None:
    lab = shared_lab
    (lab.workdir / "monitoring.yaml").write_text(monitoring_inventory())
    try:
        before = labctl(lab, "bootstrap", "--only", "power", "--only", "pki", "--only", "etcd",
                        "--only", "kubernetes", "--only", "calico")  # fmt: skip
        assert before.returncode == 0, before.stdout + before.stderr
        start = time.monotonic()
        done = labctl(lab, "bootstrap", "--only", "monitoring", "-o", "json")
        elapsed = time.monotonic() - start
        assert done.returncode == 0, done.stdout + done.stderr
        pss = sum(pss_mib(p.image_binary) for p in units.PROGRAMS.values())
        print(f"bootstrap --only monitoring: {elapsed:.1f} s; their Pss: {pss:.0f} MiB")

        # Prometheus's own word, against the list the inventory implies.
        inventory = require_inventory(lab.workdir / "monitoring.yaml")
        want = {(t.job, t.instance) for t in targets(inventory)}
        url = f"http://{NODES['fohn']}:9090/api/v1/targets?state=active"
        with urllib.request.urlopen(url, timeout=5) as answer:
            active = json.load(answer)["data"]["activeTargets"]
        seen = {(t["labels"]["job"], t["labels"]["instance"]): t for t in active}
        assert set(seen) == want
        down = {k: t["lastError"] for k, t in seen.items() if t["health"] != "up"}
        assert down == {}
        jobs = {job for job, _ in want}
        assert {"node", "ipmi", "snmp-pdu", "snmp-bgp", "etcd", "apiserver", "kubelet",
                "controller-manager", "scheduler"} <= jobs  # fmt: skip

        # The exporters answer for their devices, not only for themselves: every BMC
        # read over IPMI (its chassis power on, its event log), every PDU's outlets
        # over SNMPv3. ipmi_sim holds no sensor records, so the sensors collector
        # (collector="ipmi") reads none: not asked here.
        def query(expr: str) -> dict[str, float]:
            q = urllib.parse.urlencode({"query": expr})
            api = f"http://{NODES['fohn']}:9090/api/v1/query?{q}"
            with urllib.request.urlopen(api, timeout=5) as answer:
                found = json.load(answer)["data"]["result"]
            return {r["metric"].get("instance", ""): float(r["value"][1]) for r in found}

        servers = {s.name for s in inventory.servers}
        for collector in ("bmc", "chassis", "sel"):  # the sim's BMCs have no sensor records
            assert query(f'ipmi_up{{collector="{collector}"}}') == dict.fromkeys(servers, 1.0)
        assert query("ipmi_chassis_power_state") == dict.fromkeys(servers, 1.0)
        pdus = {p.name for p in inventory.pdus}
        assert (
            set(query('count by (instance) ({job="snmp-pdu", __name__=~"pdu_outlet_.*"})')) == pdus
        )

        # Every BGP session the inventory implies, from each node's side (the node-to-node
        # mesh and the nodes' switch sessions), is Established as Prometheus reads it from
        # that node's BGP exporter (calico-node's BIRD through its control socket), named
        # as calico-node names it; and no other BGP protocol is.
        implied = {(s.node, s.protocol) for s in sessions(inventory)}
        established = 'bird_protocol_up{job="bird", proto="BGP", state="Established"} == 1'

        def bgp_seen() -> set[tuple[str, str]]:
            q = urllib.parse.urlencode({"query": established})
            with urllib.request.urlopen(f"{PROMETHEUS}/api/v1/query?{q}", timeout=5) as answer:
                found = json.load(answer)["data"]["result"]
            return {(r["metric"]["instance"], r["metric"]["name"]) for r in found}

        assert any(s.kind == "mesh" for s in sessions(inventory))
        took = wait("every implied BGP session Established in Prometheus", 30,
                    lambda: bgp_seen() == implied)  # fmt: skip
        print(f"{len(implied)} BGP sessions seen Established {took:.1f} s after the layer")

        # Every certificate the pki layer placed has its notAfter in Prometheus, read by
        # each node's node-exporter from the textfile the pki layer wrote (issue 26's
        # LabctlCertificateExpiring reads it), equal to the store's own.
        session = PkiSession(inventory, lab.workdir)
        placed = {
            (server, s.certificate, s.path): float(s.not_after)
            for server in servers
            for s in expiry.samples(node_files(session.input, session.store, server))
        }
        q = urllib.parse.urlencode({"query": expiry.METRIC})
        with urllib.request.urlopen(f"{PROMETHEUS}/api/v1/query?{q}", timeout=5) as answer:
            found = json.load(answer)["data"]["result"]
        read = {
            (r["metric"]["instance"], r["metric"]["certificate"], r["metric"]["path"]):
            float(r["value"][1]) for r in found
        }  # fmt: skip
        assert read == placed and {i for i, _, _ in read} == servers, (read, placed)
        assert {r["metric"]["job"] for r in found} == {"node"}

        status = labctl(lab, "monitoring", "status", "-o", "json")
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads(status.stdout)
        assert report["ok"] and report["firing"] == []
        assert {t["health"] for t in report["targets"]} == {"up"}

        # Each program is its unit's container of the inventory's image: the four on
        # fohn, node-exporter and the BGP exporter on every node; and runs as its own
        # user, never root (the BGP exporter reads BIRD's socket through an ACL).
        assert "LABCTL_MONITORING_RUNTIME" not in lab.env()
        mon = inventory.cluster.monitoring.images
        for node in ("fohn", "chequita", "wind"):
            said = lab.ssh(NODES[node], "docker ps --format '{{.Names}} {{.Image}}'")
            assert said.returncode == 0, said.stdout + said.stderr
            running = set(said.stdout.splitlines())
            assert f"labctl-node-exporter {mon.node_exporter}" in running, running
            assert f"labctl-bird-exporter {mon.bird_exporter}" in running, running
            if node == "fohn":
                assert {
                    f"labctl-prometheus {mon.prometheus}",
                    f"labctl-alertmanager {mon.alertmanager}",
                    f"labctl-snmp-exporter {mon.snmp_exporter}",
                    f"labctl-ipmi-exporter {mon.ipmi_exporter}",
                } <= running, running
        for program in units.PROGRAMS.values():
            found = processes(program.image_binary)
            count = len(inventory.servers) if program.unit in units.NODE_UNITS else 1
            assert [uid for _, uid in found] == [program.uid] * count, (program, found)
            assert processes(program.host_binary) == []  # not Debian's, as a unit

        # The device credentials are on fohn in files only their exporter's user reads,
        # and only there.
        modes = lab.ssh(NODES["fohn"], "stat -c '%a %U' /etc/prometheus/labctl-ipmi.yml "
                        "/etc/prometheus/labctl-snmp.yml").stdout.split("\n")  # fmt: skip
        assert modes[:2] == ["600 labctl-ipmi-exporter", "600 labctl-snmp-exporter"]
        assert lab.ssh(NODES["wind"], "test -e /etc/prometheus/labctl-ipmi.yml").returncode != 0

        # The prometheus identity reads metrics and nothing else.
        who = (
            "curl -s -o /dev/null -w '%{http_code}' --cacert /etc/kubernetes/ssl/ca.pem "
            "--cert /etc/kubernetes/ssl/prometheus.pem "
            "--key /etc/kubernetes/ssl/prometheus-key.pem "
            f"https://{NODES['fohn']}:6443"
        )
        assert lab.ssh(NODES["fohn"], f"{who}/metrics").stdout == "200"
        assert lab.ssh(NODES["fohn"], f"{who}/api/v1/secrets").stdout == "403"

        start = time.monotonic()
        again = labctl(lab, "bootstrap", "--only", "monitoring", "-o", "json")
        print(f"converged bootstrap --only monitoring: {time.monotonic() - start:.1f} s")
        assert again.returncode == 0, again.stdout + again.stderr
        layer = next(x for x in json.loads(again.stdout)["layers"] if x["layer"] == "monitoring")
        assert all(plan["nothing_to_do"] for plan in layer["plans"]), again.stdout

        # The alerts meet the real Prometheus: wind off and on, pdu1:1 cut and back.
        times = alerts_round(
            inventory, SECRETS, lambda: labctl(lab, "monitoring", "status", "-o", "json")
        )
        print(times.line())
    except BaseException:
        logs = lab.ssh(NODES["fohn"], "tail -n 5 /var/log/labctl-units/labctl-*.log")
        print(logs.stdout)  # what each program said last (the fixture then takes the lab down)
        raise
    release_shared_lab()  # a control plane and the monitoring units are left enabled
