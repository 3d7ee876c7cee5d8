"""etcd member changes end to end, on a simulated five-server lab.

The generated lab (``benchmarks/gen_inventory.py``) forms etcd on its first three
servers. Two more get the etcd role: labctl adds them one at a time as learners,
starts and promotes each; labctl is SIGKILLed once the first learner is in the
cluster, and the next run finishes the job. Then the two leave again, one at a
time: removed, their units stopped, their data moved aside. The cluster is
healthy after each run, a key written first is still there, and a re-run
changes nothing.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from labctl.engine.actions import Run
from labctl.engine.facts import Facts
from labctl.engine.layer import LayerContext
from labctl.etcd.membership import EtcdChanges, EtcdJoined
from labctl.etcd.token import EtcdToken, TokenRecord
from labctl.etcd.upgrade import EtcdVersions
from labctl.inventory import require_inventory
from labctl.layers.etcd import EtcdLayer, is_restart
from labctl.sim.platform import SimPlatform
from tests.e2e.conftest import Lab, run, simulated_lab
from tests.labctl_process import run_labctl

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from gen_inventory import generate  # benchmarks/ holds scripts, not a package

pytestmark = pytest.mark.e2e
COUNT = 5


@pytest.fixture
def lab5(tmp_path: Path) -> Iterator[Lab]:
    with simulated_lab(tmp_path, yaml.safe_dump(generate(COUNT), sort_keys=False)) as lab:
        yield lab


def inventory(etcd_members: int) -> str:
    data = generate(COUNT)
    data["cluster"]["pki"] = {"passphrase": {"env": "LABCTL_CA_PASSPHRASE"}, "operator": "e2e"}
    for i, server in enumerate(data["servers"]):
        roles = [r for r in server["roles"] if r != "etcd"]
        server["roles"] = ["etcd", *roles] if i < etcd_members else roles
    return yaml.safe_dump(data, sort_keys=False)


def labctl(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return run_labctl(*args, cwd=lab.workdir, env=lab.env(), timeout=600)


def bootstrap(lab: Lab, *args: str) -> dict[str, object]:
    done = labctl(lab, "bootstrap", "-o", "json", *args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report: dict[str, object] = json.loads(done.stdout)
    return report


def outcomes(report: dict[str, object]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for layer in report["layers"]:  # type: ignore[attr-defined]
        for plan in layer["plans"]:
            found.setdefault(plan["layer"], set()).update(s["outcome"] for s in plan["steps"])
    return found


def etcdctl(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    ssl = lab.workdir / "ssl"
    key = next(ssl.glob("etcd-client-*-key.pem"))
    return run(
        "etcdctl", "--endpoints", endpoints(lab), "--cacert", str(ssl / "ca.pem"),
        "--cert", str(key).replace("-key.pem", ".pem"), "--key", str(key),
        "--dial-timeout", "2s", "--command-timeout", "3s", *args,
    )  # fmt: skip


def members(lab: Lab) -> list[dict[str, object]]:
    done = etcdctl(lab, "-w", "json", "member", "list")
    if done.returncode != 0:
        return []
    listed: list[dict[str, object]] = json.loads(done.stdout)["members"]
    return listed


def endpoints(lab: Lab) -> str:
    data = yaml.safe_load((lab.workdir / "inventory.yaml").read_text())
    public = [
        a["address"]
        for s in data["servers"][:3]
        for nic in s["nics"]
        for a in nic.get("addresses", [])
        if a.get("network") == "public"
    ]
    return ",".join(f"https://{address}:2379" for address in public)


def etcd_status(lab: Lab) -> dict[str, object]:
    done = labctl(lab, "etcd", "status", "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    status: dict[str, object] = json.loads(done.stdout)
    return status


def restart_step(lab: Lab, node: str) -> tuple[str, ...]:
    """The members plan's restart of ``node``: the argv it sends over SSH."""
    inventory = require_inventory(lab.workdir / "inventory.yaml")
    kept = TokenRecord.load(lab.workdir / ".labctl")
    assert kept is not None  # the token the lab was formed with
    # The argv does not depend on the others.
    quiet = Facts.of(EtcdToken(kept.token), EtcdChanges(), EtcdJoined(), EtcdVersions())
    ctx = LayerContext(
        inventory, lab.workdir / "inventory.yaml", lab.workdir / "plan-only", facts=quiet
    )
    plans = EtcdLayer().plans(replace(ctx, platform=SimPlatform(etcd="host")))
    members_plan = next(p for p in plans if p.layer == "etcd: members")
    step = next(s for s in members_plan.steps if s.target == node and is_restart(s.action))
    assert isinstance(step.action, Run)
    return tuple(step.action.argv)


def test_members_join_one_at_a_time_survive_a_sigkill_and_leave_again(lab5: Lab) -> None:
    lab = lab5
    (lab.workdir / "inventory.yaml").write_text(inventory(3))
    bootstrap(lab, "--only", "power", "--only", "pki", "--only", "etcd")
    assert len(members(lab)) == 3
    assert etcdctl(lab, "put", "/labctl/e2e", "kept").returncode == 0

    # A formed member's restart step returns only once the member is healthy again
    # (the next member's restart waits for it: a rolling restart).
    address = endpoints(lab).split(",")[0].removeprefix("https://").removesuffix(":2379")
    pid = lab.ssh(address, "systemctl status etcd-member.service | grep 'Main PID'").stdout
    step = restart_step(lab, "node00000")
    # The step leaves alone a member already running its files (etcd-restart.sh: a
    # resumed run does not restart it twice); whether the bootstrap's last write and
    # the member's start fell in one second decided it here. Its files written again,
    # as a changed file would be, it must restart.
    files = step[12:]
    assert files and all(f.startswith("/") for f in files), step
    assert lab.ssh(address, shlex.join(("touch", *files))).returncode == 0
    start = time.monotonic()
    restarted = lab.ssh(address, shlex.join(step))
    took = time.monotonic() - start
    assert restarted.returncode == 0, restarted.stderr
    assert "not restarted" not in restarted.stdout, restarted.stdout
    assert pid.strip().startswith("Main PID")
    assert lab.ssh(address, "systemctl status etcd-member.service | grep 'Main PID'").stdout != pid
    assert etcdctl(lab, "endpoint", "health").returncode == 0
    print(f"rolling restart of one member, healthy again after {took:.2f} s")

    # Two more members; labctl is killed once the first is in as a learner.
    (lab.workdir / "inventory.yaml").write_text(inventory(5))
    victim = subprocess.Popen(
        [sys.executable, "-m", "labctl", "bootstrap", "--only", "pki", "--only", "etcd"],
        cwd=lab.workdir, env={**os.environ, **lab.env()},
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    seen_learner = False
    end = time.monotonic() + 300
    while victim.poll() is None and time.monotonic() < end:
        if any(m.get("isLearner") for m in members(lab)):
            seen_learner = True
            victim.send_signal(signal.SIGKILL)
            break
        time.sleep(0.2)
    victim.wait(timeout=30)
    assert seen_learner, "labctl never added a learner before it finished"

    resumed = bootstrap(lab, "--only", "pki", "--only", "etcd")
    plans = outcomes(resumed)
    assert "etcd: promote node00003" in plans and "etcd: promote node00004" in plans
    listed = members(lab)
    assert len(listed) == 5 and not any(m.get("isLearner") for m in listed), listed
    status = etcd_status(lab)
    assert all(m["healthy"] for m in status["members"]), status  # type: ignore[attr-defined]
    got = etcdctl(lab, "get", "/labctl/e2e", "--print-value-only")
    assert got.stdout.strip() == "kept"

    # Converged: nothing changes.
    again = outcomes(bootstrap(lab, "--only", "etcd"))
    assert set().union(*again.values()) <= {"unchanged", "skipped"}, again
    assert etcdctl(lab, "get", "/labctl/e2e", "--print-value-only").stdout.strip() == "kept"

    # Back to three: removed one at a time, stopped, data moved aside.
    (lab.workdir / "inventory.yaml").write_text(inventory(3))
    shrunk = outcomes(bootstrap(lab, "--only", "etcd"))
    assert shrunk["etcd: remove node00003"] == {"changed"}
    assert shrunk["etcd: remove node00004"] == {"changed"}
    assert len(members(lab)) == 3
    status = etcd_status(lab)
    assert [m["name"] for m in status["members"]] == [  # type: ignore[attr-defined]
        "node00000",
        "node00001",
        "node00002",
    ]
    again = outcomes(bootstrap(lab, "--only", "etcd"))
    assert set().union(*again.values()) <= {"unchanged", "skipped"}, again
    assert etcdctl(lab, "get", "/labctl/e2e", "--print-value-only").stdout.strip() == "kept"
