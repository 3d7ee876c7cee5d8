"""`labctl plan` on the running reference lab: the whole-lab diff, and bootstrap's skew refusal.

Needs root (CI runs as root). Runs on the shared reference lab (tests/e2e/conftest.py)
after test_sim_lab.py: it brings etcd up as bootstrap would (a converged re-run when an
earlier test did) and changes nothing else. The changed inventories (issue 24: a server
added, etcd's version changed) are copies beside the lab's own, removed afterwards; the
lab's inventory file is never touched.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.day_two import NEW_SERVER, changed_inventory, write_beside
from tests.e2e.conftest import NODES, Lab
from tests.labctl_process import run_labctl

pytestmark = pytest.mark.e2e


@pytest.fixture
def lab(shared_lab: Lab) -> Lab:
    return shared_lab


def labctl(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return run_labctl(*args, cwd=lab.workdir, env=lab.env())


def test_plan_diffs_an_added_server_and_an_etcd_upgrade_and_bootstrap_refuses_a_skip(
    lab: Lab,
) -> None:
    started = time.monotonic()
    up = labctl(lab, "bootstrap", "--only", "power", "--only", "pki", "--only", "etcd")
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
    reference = (lab.workdir / "inventory.yaml").read_text()
    inventory = lab.workdir / "inventory.yaml"
    grown = write_beside(inventory, "day-two.yaml", changed_inventory(reference, etcd="3.5.9"))
    skip = changed_inventory(reference, add_server=False, etcd="3.6.0")
    skipped = write_beside(inventory, "day-two-skip.yaml", skip)
    journal = lab.workdir / ".labctl" / "journal.jsonl"
    try:
        # The lab against its own inventory: nobody joins or leaves, etcd runs what it says.
        same = labctl(lab, "plan", "etcd", "-o", "json")
        assert same.returncode == 0, same.stdout[-3000:] + same.stderr[-2000:]
        found = json.loads(same.stdout)
        assert found["servers"] == {"join": [], "leave": [], "stay": list(NODES)}
        etcd = found["versions"][0]
        assert etcd["running"] == {name: "3.4.23" for name in sorted(NODES)}
        assert (etcd["wanted"], etcd["change"]) == ("3.4.23", "none")
        assert found["layers"][0]["nodes"] == [], found["layers"]  # a converged layer

        # A server added and etcd's next minor: the new server joins, etcd upgrades.
        planned = labctl(lab, "plan", "etcd", "-i", str(grown), "-o", "json")
        assert planned.returncode in (0, 1), planned.stdout[-3000:] + planned.stderr[-2000:]
        found = json.loads(planned.stdout)
        assert found["servers"]["join"] == [{"name": NEW_SERVER, "roles": ["worker"]}]
        assert found["servers"]["stay"] == list(NODES) and found["servers"]["leave"] == []
        etcd = found["versions"][0]
        assert (etcd["wanted"], etcd["change"]) == ("3.5.9", "upgrade")
        assert etcd["running"] == {name: "3.4.23" for name in sorted(NODES)}
        assert found["skew"] == []

        # A skipped minor: plan says so (exit 2), bootstrap refuses before any layer runs.
        before = journal.read_bytes()
        shown = labctl(lab, "plan", "etcd", "-i", str(skipped), "-o", "json")
        assert shown.returncode == 2, shown.stdout[-3000:] + shown.stderr[-2000:]
        (problem,) = json.loads(shown.stdout)["skew"]
        assert (problem["rule"], problem["wanted"], problem["running"]) == (
            "minor-skip",
            "3.6.0",
            "3.4.23",
        )
        refused = labctl(lab, "bootstrap", "--only", "etcd", "-i", str(skipped))
        assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
        line = next(i for i, t in enumerate(skip.splitlines(), 1) if "version: 3.6.0" in t)
        assert f"{skipped}:{line}:" in refused.stderr
        assert "cluster.etcd.version: 3.6.0 skips a minor version" in refused.stderr
        assert "3.4.23" in refused.stderr and "Traceback" not in refused.stderr
        assert journal.read_bytes() == before  # nothing ran
    finally:
        grown.unlink(missing_ok=True)
        skipped.unlink(missing_ok=True)
    print(f"plan e2e on the shared lab: {time.monotonic() - started:.1f} s")
