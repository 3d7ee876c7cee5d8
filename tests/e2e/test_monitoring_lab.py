"""The monitoring layer end to end on the shared simulated lab, with Debian's programs.

After power, pki, etcd, kubernetes and calico, `labctl bootstrap --only monitoring`
runs node-exporter on every node and Prometheus, Alertmanager and the IPMI and SNMP
exporters on fohn; then every target the inventory implies (listed from the
inventory by ``render/monitoring/targets.py``) must be up in Prometheus's own
``/api/v1/targets``: the BMCs read over IPMI and the PDUs and astrid over SNMPv3 with
the inventory's credentials, etcd and the Kubernetes components over TLS with the
``prometheus`` identity the pki layer minted, under the metrics-only ClusterRole.
`labctl monitoring status -o json` says the same.

The inventory is the reference one without its Ceph section (written beside it as
monitoring.yaml): the shared lab never runs the ceph layer (its PGs would cost
minutes, tests/e2e/test_ceph_lab.py has its own lab), and a scrape interval of 5 s
keeps the layer's one wait short. The test takes the lab down at its end: it leaves
a control plane and the monitoring units enabled, and the next file's tests use
labs of their own anyway.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from labctl.inventory import require_inventory
from labctl.render.monitoring.targets import targets
from tests.conftest import REFERENCE
from tests.e2e.conftest import NODES, Lab, release_shared_lab
from tests.labctl_process import run_labctl

pytestmark = pytest.mark.e2e


def monitoring_inventory() -> str:
    """The reference inventory without Ceph, scraped every 5 s."""
    text = REFERENCE.read_text()
    text = text[: text.index("\n  ceph:\n") + 1]
    for role in (", ceph-mon", ", ceph-osd", ", ceph-mds"):
        text = text.replace(role, "")
    return text.replace("\ncluster:\n", "\ncluster:\n  monitoring: {scrape_interval: 5s}\n", 1)


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
        pss = pss_mib("/usr/bin/prometheus")
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

        status = labctl(lab, "monitoring", "status", "-o", "json")
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads(status.stdout)
        assert report["ok"] and report["firing"] == []
        assert {t["health"] for t in report["targets"]} == {"up"}

        # The device credentials are on fohn in root-only files, and only there.
        modes = lab.ssh(NODES["fohn"], "stat -c '%a %U' /etc/prometheus/labctl-ipmi.yml "
                        "/etc/prometheus/labctl-snmp.yml").stdout.split("\n")  # fmt: skip
        assert modes[:2] == ["600 root", "600 root"]
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
    except BaseException:
        logs = lab.ssh(NODES["fohn"], "tail -n 5 /var/log/labctl-units/labctl-*.log")
        print(logs.stdout)  # what each program said last (the fixture then takes the lab down)
        raise
    release_shared_lab()  # a control plane and the monitoring units are left enabled
