"""The etcd layer end to end: a real TLS etcd cluster on the simulated reference lab.

Bootstrap forms it from the inventory, in its default runtime: each member is the
container of the inventory's image under the node's podman (Flatcar's `docker`), made
here from Debian's etcd and loaded from an archive; the real `etcdctl` talks to it
with labctl's operator certificate and is refused with a certificate from another
CA; a member's power cycle keeps the data (and runs a new container); the quorum guard
counts a member whose etcd is stopped as down; a snapshot brings back a deleted key
through `labctl etcd restore` (etcdctl from the image); a data directory of another
cluster is refused, untouched.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any, cast

import pytest

from labctl.etcd.token import TokenRecord
from tests.e2e.conftest import NODES, Lab, release_shared_lab, run
from tests.labctl_process import run_labctl

pytestmark = pytest.mark.e2e
FOHN = f"https://{NODES['fohn']}:2379"
ALL = ",".join(f"https://{address}:2379" for address in NODES.values())


def labctl(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return run_labctl(*args, cwd=lab.workdir, env=lab.env())


def etcdctl(
    lab: Lab, *args: str, cert: str = "etcd-client-bluecmd"
) -> subprocess.CompletedProcess[str]:
    ssl = lab.workdir / "ssl"
    return run(
        "etcdctl", "--endpoints", ALL, "--cacert", str(ssl / "ca.pem"),
        "--cert", str(ssl / f"{cert}.pem"), "--key", str(ssl / f"{cert}-key.pem"),
        "--dial-timeout", "3s", "--command-timeout", "5s", *args,
    )  # fmt: skip


# The layers up to etcd: the ceph layer forms Ceph on the simulated lab only with the
# host's binaries and settings for one machine (tests/e2e/test_ceph_lab.py does).
UP_TO_ETCD = ("--only", "power", "--only", "pki", "--only", "etcd")


def bootstrap(lab: Lab, *extra: str) -> dict[str, Any]:
    done = labctl(lab, "bootstrap", "-o", "json", *(extra or UP_TO_ETCD))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def wait_healthy(lab: Lab, deadline: float = 60) -> dict[str, Any]:
    end = time.monotonic() + deadline
    while True:
        done = labctl(lab, "etcd", "status", "-o", "json")
        if done.returncode == 0:
            status: dict[str, Any] = json.loads(done.stdout)
            return status
        assert time.monotonic() < end, done.stdout + done.stderr
        time.sleep(1)


def running_in_containers(lab: Lab) -> None:
    """Each member is the inventory's default runtime: the container ``etcd-member`` of
    image quay.io/coreos/etcd:v3.4.23 under the node's own engine (Flatcar's
    /usr/bin/docker), and the process serving :2379 is that container's."""
    for name, address in NODES.items():
        listed = lab.ssh(address, "command -v docker && docker ps --format '{{.Names}} {{.Image}}'")
        assert listed.returncode == 0, listed.stdout + listed.stderr
        which, *lines = listed.stdout.splitlines()
        assert which == "/usr/bin/docker", (name, which)  # Flatcar's, podman's CLI here
        rows = [line.split() for line in lines]
        assert rows == [["etcd-member", "quay.io/coreos/etcd:v3.4.23"]], (name, rows)
        # The member's process runs the image's /usr/local/bin/etcd (the node has none).
        exe = lab.ssh(
            address,
            "readlink /proc/$(docker inspect --format '{{.State.Pid}}' etcd-member)/exe"
            " && test ! -e /usr/local/bin/etcd",
        )
        assert exe.returncode == 0 and exe.stdout.strip() == "/usr/local/bin/etcd", (name, exe)


def test_bootstrap_forms_a_tls_cluster_that_survives_a_member_power_cycle(
    new_shared_lab: Lab,
) -> None:
    """On a lab no test has bootstrapped: etcd's first run forms the cluster."""
    lab = new_shared_lab
    report = bootstrap(lab)
    layers = {x["layer"]: x["status"] for x in report["layers"]}
    assert layers["etcd"] == "applied", layers

    status = wait_healthy(lab)
    members = status["members"]
    assert [m["name"] for m in members] == ["fohn", "chequita", "wind"]
    assert sum(m["leader"] for m in members) == 1
    running_in_containers(lab)

    # The real etcdctl, with the operator's certificate that labctl minted.
    assert etcdctl(lab, "put", "/labctl/e2e", "kept").returncode == 0
    listed = etcdctl(lab, "member", "list", "-w", "json")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)["members"]) == 3

    # A client certificate from another CA is refused.
    other = lab.workdir / "other"
    other.mkdir()
    made = run(
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", str(other / "intruder-key.pem"), "-out", str(other / "intruder.pem"),
        "-subj", "/CN=intruder", "-days", "1",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    for name in ("intruder.pem", "intruder-key.pem"):
        (lab.workdir / "ssl" / name).write_bytes((other / name).read_bytes())
    refused = etcdctl(lab, "get", "/labctl/e2e", cert="intruder")
    assert refused.returncode != 0 and "kept" not in refused.stdout

    # A converged re-run changes nothing.
    start = time.monotonic()
    again = bootstrap(lab, "--only", "etcd")
    print(f"converged `labctl bootstrap --only etcd` on the sim: {time.monotonic() - start:.2f} s")
    outcomes = {
        s["outcome"] for layer in again["layers"] for plan in layer["plans"] for s in plan["steps"]
    }
    assert outcomes <= {"unchanged", "skipped"}, outcomes

    # A member's power cycle (the guard allows one of three) keeps the data.
    cycled = labctl(lab, "power", "cycle", "wind")
    assert cycled.returncode == 0, cycled.stdout + cycled.stderr
    wait_healthy(lab)
    running_in_containers(lab)  # the boot's unit removed the dead container, ran a new one
    got = etcdctl(lab, "get", "/labctl/e2e", "--print-value-only")
    assert got.returncode == 0 and got.stdout.strip() == "kept"

    # The guard reads etcd's own health: wind is on but its member is stopped, so
    # taking chequita down would leave one healthy member of three.
    assert lab.ssh(NODES["wind"], "systemctl stop etcd-member.service").returncode == 0
    refused = labctl(lab, "power", "off", "chequita")
    assert refused.returncode == 1
    assert "wind is on but its etcd member is unhealthy" in refused.stderr, refused.stderr
    assert lab.ssh(NODES["chequita"], "true").returncode == 0  # nothing was done
    assert lab.ssh(NODES["wind"], "systemctl start etcd-member.service").returncode == 0
    wait_healthy(lab)


def test_snapshot_restore_and_a_foreign_data_directory(shared_lab: Lab) -> None:
    """On the lab the test above formed (a converged run here), which it then destroys."""
    lab = shared_lab
    bootstrap(lab)
    wait_healthy(lab)
    assert etcdctl(lab, "put", "/labctl/precious", "v1").returncode == 0

    taken = labctl(lab, "etcd", "snapshot", "-o", "json")
    assert taken.returncode == 0, taken.stdout + taken.stderr
    snapshot = Path(json.loads(taken.stdout)["path"])
    checked = run("etcdctl", "snapshot", "status", str(snapshot), "-w", "json")
    assert checked.returncode == 0 and json.loads(checked.stdout)["totalKey"] >= 1

    assert etcdctl(lab, "del", "/labctl/precious").returncode == 0
    assert etcdctl(lab, "get", "/labctl/precious", "--print-value-only").stdout.strip() == ""
    refused = labctl(lab, "etcd", "restore", str(snapshot))  # no terminal, no --yes
    assert refused.returncode == 2 and "--yes" in refused.stderr

    formed = TokenRecord.load(lab.workdir / ".labctl")
    old_ids = cluster_ids(lab)
    restored = labctl(lab, "etcd", "restore", str(snapshot), "--yes", "-o", "json")
    assert restored.returncode == 0, restored.stdout[-3000:] + restored.stderr[-3000:]
    wait_healthy(lab)
    # A restored cluster is a new formation: a new token, recorded, so new ids.
    token = TokenRecord.load(lab.workdir / ".labctl")
    assert formed is not None and token is not None and token.token != formed.token
    assert token.restore and cluster_ids(lab).isdisjoint(old_ids), (old_ids, token)
    back = etcdctl(lab, "get", "/labctl/precious", "--print-value-only")
    assert back.stdout.strip() == "v1", back.stdout + back.stderr
    aside = lab.ssh(NODES["wind"], "ls -d /var/lib/etcd.before-restore-*")
    assert aside.returncode == 0, "the data before the restore is kept, moved aside"

    # The bootstrap after it writes the new token into the members' environment files
    # (a start-up-only line) and runs nothing again: no second rolling restart.
    started = member_pids(lab)
    after = bootstrap(lab, "--only", "etcd")
    layers = cast(list[dict[str, Any]], after["layers"])
    ran = {
        s["step_id"]
        for layer in layers
        for plan in layer["plans"]
        for s in plan["steps"]
        if s["outcome"] not in ("unchanged", "skipped")
    }
    assert not {step for step in ran if step.startswith("run:")}, ran
    assert member_pids(lab) == started, "a member restarted after the restore"

    # A member whose data directory holds another cluster's data is refused, untouched.
    marker = "/var/lib/etcd/.labctl-cluster"
    assert lab.ssh(NODES["wind"], f"echo other-lab-etcd > {marker}").returncode == 0
    assert lab.ssh(NODES["wind"], "systemctl restart etcd-member.service").returncode == 0
    (lab.workdir / "inventory.yaml").write_text(
        (lab.workdir / "inventory.yaml")
        .read_text()
        .replace(
            "  etcd:\n    version: 3.4.23", "  etcd:\n    version: 3.4.23\n    health_timeout: 30"
        )
    )
    done = labctl(lab, "bootstrap", "--only", "etcd")
    assert done.returncode == 1
    assert f"another cluster (other-lab-etcd, not {token.token})" in done.stdout + done.stderr
    kept = lab.ssh(NODES["wind"], f"cat {marker}; ls /var/lib/etcd/member")
    assert kept.returncode == 0 and kept.stdout.startswith("other-lab-etcd")
    release_shared_lab()  # wind's data is another cluster's now: no test gets this lab


def member_pids(lab: Lab) -> dict[str, str]:
    """Each member's etcd process, as systemd names it (a restart changes it)."""
    pids = {}
    for name, address in NODES.items():
        done = lab.ssh(address, "systemctl status etcd-member.service | grep 'Main PID'")
        assert done.returncode == 0 and "Main PID" in done.stdout, done.stdout + done.stderr
        pids[name] = done.stdout.split("Main PID:")[1].split()[0]
    return pids


def cluster_ids(lab: Lab) -> set[int]:
    """The cluster id every member's own status reports."""
    done = etcdctl(lab, "endpoint", "status", "-w", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    return {e["Status"]["header"]["cluster_id"] for e in json.loads(done.stdout)}
