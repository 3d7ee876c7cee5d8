"""`labctl reset` end to end on the shared reference lab: refused below quorum, then a
server taken out of etcd, wiped and powered off, then built again by a bootstrap.

The lab is the shared one up to etcd (power, pki, etcd: the ceph layer forms Ceph on
the simulated lab only with settings for one machine, and the reference lab's pools
keep 3 copies on its 3 hosts, so any removal there is refused by the pool guard,
tests/unit/test_retire.py). It ends as it started: wind a voting member again, every
member healthy, the key written first still there.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from labctl.engine.journal import Journal, applied_layers, target_of
from labctl.etcd.token import TokenRecord
from tests.e2e.conftest import NODES, Lab, run
from tests.labctl_process import run_labctl

pytestmark = pytest.mark.e2e
ALL = ",".join(f"https://{address}:2379" for address in NODES.values())
UP_TO_ETCD = ("--only", "power", "--only", "pki", "--only", "etcd")


@pytest.fixture
def lab(shared_lab: Lab) -> Lab:
    return shared_lab


def labctl(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return run_labctl(*args, cwd=lab.workdir, env=lab.env(), timeout=300)


def etcdctl(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    ssl = lab.workdir / "ssl"
    return run(
        "etcdctl", "--endpoints", ALL, "--cacert", str(ssl / "ca.pem"),
        "--cert", str(ssl / "etcd-client-bluecmd.pem"),
        "--key", str(ssl / "etcd-client-bluecmd-key.pem"),
        "--dial-timeout", "3s", "--command-timeout", "5s", *args,
    )  # fmt: skip


def members(lab: Lab) -> dict[str, bool]:
    """Member name -> is a learner, from etcd's own member list."""
    listed = etcdctl(lab, "member", "list", "-w", "json")
    assert listed.returncode == 0, listed.stderr
    return {
        m.get("name", ""): bool(m.get("isLearner")) for m in json.loads(listed.stdout)["members"]
    }


def wait_healthy(lab: Lab, deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    while (done := labctl(lab, "etcd", "status", "-o", "json")).returncode != 0:
        assert time.monotonic() < end, done.stdout + done.stderr
        time.sleep(1)


def test_reset_refuses_below_quorum_then_removes_wipes_and_a_bootstrap_builds_it_again(
    lab: Lab,
) -> None:
    started = time.monotonic()
    done = labctl(lab, "bootstrap", "-o", "json", *UP_TO_ETCD)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wait_healthy(lab)
    assert members(lab) == {"fohn": False, "chequita": False, "wind": False}
    assert etcdctl(lab, "put", "/labctl/e2e-reset", "kept").returncode == 0
    ready = time.monotonic()

    # chequita's etcd down: removing wind would leave 2 voters with 1 healthy.
    chequita, wind = NODES["chequita"], NODES["wind"]
    assert lab.ssh(chequita, "systemctl stop etcd-member.service").returncode == 0
    try:
        refused = labctl(lab, "reset", "wind", "--yes", "-o", "json")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        report = json.loads(refused.stdout)
        assert report["refused"] == [
            "etcd: after removing wind, 2 voting members need 2 healthy and only 1 are "
            "(not healthy: chequita)"
        ]
        assert report["steps"] == []
        # Nothing changed: wind's files are still there.
        assert lab.ssh(wind, "test -s /etc/ssl/etcd/ca.pem").returncode == 0
    finally:
        assert lab.ssh(chequita, "systemctl start etcd-member.service").returncode == 0
    wait_healthy(lab)
    assert set(members(lab)) == {"fohn", "chequita", "wind"}

    # Every member healthy: wind leaves etcd, is wiped and powered off.
    calico_ran = "calico" in applied_layers(lab.workdir / ".labctl")
    before = time.monotonic()
    done = labctl(lab, "reset", "wind", "--yes", "-o", "json")
    reset_seconds = time.monotonic() - before
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    # Where an earlier test on the shared lab ran calico (the power restore's graceful
    # cycle does), wind's neighbour goes from both BGP switches too (kek-core, astrid).
    bgp = ["bgp-remove", "bgp-remove"] if calico_ran else []
    assert [s["kind"] for s in report["done"]] == ["etcd-remove", *bgp, "wipe", "power-off"]
    removed = [s["target"].split() for s in report["done"] if s["kind"] == "bgp-remove"]
    assert {switch for switch, _ in removed} == ({"kek-core", "astrid"} if calico_ran else set())
    assert len({address for _, address in removed}) <= 1, removed  # wind's one BGP address
    assert members(lab) == {"fohn": False, "chequita": False}
    power = json.loads(labctl(lab, "power", "status", "wind", "-o", "json").stdout)
    assert [(t["server"], t["after"] or t["before"]) for t in power["targets"]] == [
        ("wind", "off")
    ], power

    # Built again from nothing: wind rejoins as a learner, promoted; the key is there.
    before = time.monotonic()
    done = labctl(lab, "bootstrap", "-o", "json", *UP_TO_ETCD)
    rebuild_seconds = time.monotonic() - before
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wait_healthy(lab)
    assert members(lab) == {"fohn": False, "chequita": False, "wind": False}
    # wind's data directory is a new one; the old one kept aside by the reset.
    aside = lab.ssh(wind, "ls -d /var/lib/etcd.reset-* && test -d /var/lib/etcd/member")
    assert aside.returncode == 0, aside.stdout + aside.stderr
    got = etcdctl(lab, "get", "/labctl/e2e-reset", "--print-value-only")
    assert got.stdout.strip() == "kept"
    assert etcdctl(lab, "del", "/labctl/e2e-reset").returncode == 0
    print(
        f"reset e2e: lab up to etcd {ready - started:.1f} s, `labctl reset wind` "
        f"{reset_seconds:.1f} s, bootstrap back {rebuild_seconds:.1f} s, "
        f"whole test {time.monotonic() - started:.1f} s"
    )


def cluster(lab: Lab) -> tuple[set[int], int]:
    """(cluster ids, highest revision) as every member's own status reports them."""
    done = etcdctl(lab, "endpoint", "status", "-w", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    headers = [e["Status"]["header"] for e in json.loads(done.stdout)]
    assert len(headers) == len(NODES), headers
    return {h["cluster_id"] for h in headers}, max(h["revision"] for h in headers)


# What labctl leaves on a node, looked at with the node's own shell: etcd's data, the
# kubelet's state, the certificates, and the units that start them at boot.
LEFT = (
    "find /var/lib/etcd /var/lib/kubelet /etc/ssl/etcd /etc/kubernetes -mindepth 1"
    " -maxdepth 1 2>/dev/null; ls /etc/systemd/system/etcd-member.service"
    " /etc/systemd/system/kubelet.service 2>/dev/null; true"
)

# Where a kubelet keeps its state and labctl its unit: what the kubernetes layer leaves.
KUBELET_STATE = (
    "mkdir -p /var/lib/kubelet/pki /etc/kubernetes/ssl"
    " && echo cert > /var/lib/kubelet/pki/kubelet-client-current.pem"
    " && echo conf > /etc/kubernetes/kubelet.conf"
    " && printf '[Service]\\nExecStart=/bin/true\\n' > /etc/systemd/system/kubelet.service"
)


def test_reset_all_refuses_without_a_terminal_then_wipes_every_server_and_etcd_forms_anew(
    lab: Lab,
) -> None:
    """The whole lab: refused without a terminal or --yes (nothing changed), then every
    server wiped and powered off, then `bootstrap` forms a new etcd cluster without the
    old key, with a new token and so a new cluster id. Runs after the test above, on the
    same shared lab (etcd there already).

    The kubelet's state is planted, not made by the kubernetes layer: its bootstrap
    needs Kubernetes built on this machine (`labctl kubernetes build`, minutes cold),
    which the e2e suite does not otherwise need for this module."""
    started = time.monotonic()
    done = labctl(lab, "bootstrap", "-o", "json", *UP_TO_ETCD)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wait_healthy(lab)
    assert etcdctl(lab, "put", "/labctl/e2e-reset-all", "old").returncode == 0
    old_ids, old_revision = cluster(lab)
    state = lab.workdir / ".labctl"
    old_token = TokenRecord.load(state)
    assert old_token is not None  # every formation's token is kept (etcd/token.py)
    for address in NODES.values():
        assert lab.ssh(address, KUBELET_STATE).returncode == 0
        left = lab.ssh(address, LEFT)
        assert "/var/lib/kubelet/" in left.stdout and "kubelet.service" in left.stdout, left.stdout
    ready = time.monotonic()

    # No terminal, no --yes: the confirmation names every server and what it loses,
    # then the command refuses; nothing changed (the key, the members, the journal).
    journal = (state / "journal.jsonl").read_bytes()
    refused = labctl(lab, "reset", "--all")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert (
        "refusing to reset the whole lab (fohn, chequita, wind) without a terminal to "
        "confirm; add --yes" in refused.stderr
    ), refused.stderr
    for name in NODES:
        wipe = f"wipe {name}: etcd member data (/var/lib/etcd, moved aside); Kubernetes state"
        assert wipe in refused.stderr and f"power {name} off" in refused.stderr, refused.stderr
    assert "the kubelet and the control plane" in refused.stderr.split("wipe fohn:")[1]
    assert (state / "journal.jsonl").read_bytes() == journal
    got = etcdctl(lab, "get", "/labctl/e2e-reset-all", "--print-value-only")
    assert got.stdout.strip() == "old"
    assert set(members(lab)) == set(NODES)

    # --yes: every server wiped and powered off; the journal remembers none of them.
    before = time.monotonic()
    done = labctl(lab, "reset", "--all", "--yes", "-o", "json")
    reset_seconds = time.monotonic() - before
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert [(s["kind"], s["server"]) for s in report["done"]] == [
        (kind, name) for name in NODES for kind in ("wipe", "power-off")
    ]
    power = json.loads(labctl(lab, "power", "status", *NODES, "-o", "json").stdout)
    assert {(t["server"], t["after"] or t["before"]) for t in power["targets"]} == {
        (name, "off") for name in NODES
    }, power
    remembered = {target_of(e.key) for e in Journal(state).entries()}
    assert remembered & set(NODES) == set(), remembered
    record = state / "etcd-membership.json"
    kept = json.loads(record.read_text()) if record.exists() else {}
    assert not kept.get("joined") and not kept.get("leaving"), kept
    assert TokenRecord.load(state) is None  # forgotten: the next formation gets a new one

    # Powered on again, before any other layer: no etcd member answers, and the
    # nodes hold no etcd data, kubelet state, certificates or labctl units.
    done = labctl(lab, "bootstrap", "--only", "power")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name, address in NODES.items():
        end = time.monotonic() + 60
        while (left := lab.ssh(address, LEFT)).returncode != 0:
            assert time.monotonic() < end, (name, left.stdout + left.stderr)
            time.sleep(1)
        assert left.stdout == "", (name, left.stdout)
        aside = lab.ssh(address, "ls -d /var/lib/etcd.reset-*/member")
        assert aside.returncode == 0, (name, aside.stdout + aside.stderr)
    assert etcdctl(lab, "endpoint", "health").returncode != 0

    # Built again from nothing: a new cluster of three healthy voters, the old key gone.
    before = time.monotonic()
    done = labctl(lab, "bootstrap", "-o", "json", *UP_TO_ETCD)
    rebuild_seconds = time.monotonic() - before
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wait_healthy(lab)
    assert members(lab) == {"fohn": False, "chequita": False, "wind": False}
    new_ids, new_revision = cluster(lab)
    assert new_revision < old_revision, (old_revision, new_revision)
    # A new formation, so a new token and new ids: a member left with the old data could
    # not pass for one of the new cluster's (etcd derives the ids from the token).
    new_token = TokenRecord.load(state)
    assert new_token is not None and new_token.token != old_token.token, (old_token, new_token)
    assert len(new_ids) == 1 and new_ids.isdisjoint(old_ids), (old_ids, new_ids)
    for address in NODES.values():
        env = lab.ssh(address, "grep ^ETCD_INITIAL_CLUSTER_TOKEN= /etc/etcd/etcd.env")
        assert env.stdout.strip() == f"ETCD_INITIAL_CLUSTER_TOKEN={new_token.token}", env.stdout
    got = etcdctl(lab, "get", "/labctl/e2e-reset-all", "--print-value-only")
    assert got.returncode == 0 and got.stdout.strip() == "", got.stdout
    print(
        f"reset --all e2e: lab up to etcd {ready - started:.1f} s, `labctl reset --all` "
        f"{reset_seconds:.1f} s, bootstrap back to etcd {rebuild_seconds:.1f} s, whole test "
        f"{time.monotonic() - started:.1f} s; cluster id {old_ids} -> {new_ids}, revision "
        f"{old_revision} -> {new_revision}"
    )
