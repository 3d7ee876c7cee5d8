"""`labctl reset` planned from live facts: the steps in order, and every refusal's sentence."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from labctl.day2.apply import Reset
from labctl.day2.live import decode_ceph, layers_run
from labctl.day2.retire import CephFacts, EtcdMember, LiveLab, Pool, Step, plan_reset
from labctl.engine.journal import Journal
from labctl.errors import LabctlError
from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from labctl.os import survey
from tests.conftest import REFERENCE
from tests.labctl_process import run_labctl


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return require_inventory(REFERENCE)


def etcd(sick: tuple[str, ...] = ()) -> tuple[EtcdMember, ...]:
    return tuple(
        EtcdMember(name, i + 1, False, name not in sick)
        for i, name in enumerate(("fohn", "chequita", "wind"))
    )


OSDS = {"fohn": (0, 1, 2), "chequita": (3, 4), "wind": (5, 6), "spare": (7,)}


def ceph(quorum: tuple[str, ...] = ("fohn", "chequita", "wind"), size: int = 2) -> CephFacts:
    return CephFacts(("fohn", "chequita", "wind"), quorum, OSDS, (Pool("rbd", size, min(size, 2)),))


def test_one_server_is_taken_out_of_every_component_in_order(inventory: Inventory) -> None:
    live = LiveLab(
        etcd=etcd(),
        ceph=ceph(),
        nodes=("fohn", "chequita", "wind"),
        bgp={"astrid": ("31.31.164.222", "31.31.164.221"), "kek-core": ("31.31.164.220",)},
    )
    plan = plan_reset(inventory, ["wind"], live)
    assert plan.refusals == ()
    assert [(s.kind, s.target) for s in plan.steps] == [
        ("cordon", "wind"),
        ("delete-node", "wind"),
        ("etcd-remove", "3"),
        ("osd-out", "5 6"),
        ("osd-wait", "5 6"),
        ("osd-purge", "5 6"),
        ("mon-remove", "wind"),
        ("bgp-remove", "astrid 31.31.164.222"),
        ("wipe", "wind"),
        ("power-off", "wind"),
    ]
    assert "remove etcd member wind (3)" in plan.destroyed()
    assert "wait until" not in " ".join(plan.destroyed())


def test_a_component_whose_layer_never_ran_has_no_step_and_says_so(
    inventory: Inventory,
) -> None:
    plan = plan_reset(inventory, ["wind"], LiveLab(etcd=etcd()))
    assert [s.kind for s in plan.steps] == ["etcd-remove", "wipe", "power-off"]
    assert any(n.startswith("Ceph: its layer has not run here") for n in plan.notes)


def test_removal_below_etcd_quorum_is_refused_naming_the_sick_member(
    inventory: Inventory,
) -> None:
    plan = plan_reset(inventory, ["wind"], LiveLab(etcd=etcd(sick=("chequita",))))
    assert plan.steps == ()
    assert plan.refusals == (
        "etcd: after removing wind, 2 voting members need 2 healthy and only 1 are "
        "(not healthy: chequita)",
    )
    # With every member healthy the same removal goes ahead.
    assert plan_reset(inventory, ["wind"], LiveLab(etcd=etcd())).refusals == ()


def test_a_learner_leaving_costs_no_quorum(inventory: Inventory) -> None:
    members = (*etcd(sick=("chequita",))[:2], EtcdMember("wind", 3, True, True))
    assert plan_reset(inventory, ["wind"], LiveLab(etcd=members)).refusals == ()


def test_removing_every_voter_is_refused_unless_the_whole_lab_is_reset(
    inventory: Inventory,
) -> None:
    everyone = ["fohn", "chequita", "wind"]
    plan = plan_reset(inventory, everyone, LiveLab(etcd=etcd()))
    assert plan.refusals[0].startswith("etcd: fohn, chequita, wind hold every voting member")
    whole = plan_reset(inventory, [], LiveLab(), whole_lab=True)
    assert whole.refusals == ()
    assert [s.kind for s in whole.steps] == ["wipe", "power-off"] * 3


def test_removal_below_ceph_monitor_quorum_is_refused(inventory: Inventory) -> None:
    plan = plan_reset(inventory, ["wind"], LiveLab(ceph=ceph(quorum=("fohn", "wind"))))
    assert plan.refusals == (
        "Ceph: after removing the monitor of wind, 2 monitors need 2 in quorum and only 1 "
        "are (out of quorum: chequita)",
    )


def test_a_pool_left_on_fewer_hosts_than_its_size_is_refused_by_name(
    inventory: Inventory,
) -> None:
    # The reference lab: size 3 on the three hosts that hold OSDs.
    facts = CephFacts(("fohn", "chequita", "wind"), ("fohn", "chequita", "wind"),
                      {"fohn": (0,), "chequita": (1,), "wind": (2,)},
                      (Pool("rbd", 3, 2), Pool("cephfs_data", 2, 1)))  # fmt: skip
    plan = plan_reset(inventory, ["wind"], LiveLab(ceph=facts))
    assert plan.refusals == (
        "Ceph: pool rbd keeps 3 copies on different hosts (size 3, failure domain host); "
        "without wind only 2 host(s) hold OSDs (chequita, fohn): its objects would stay "
        "degraded and the OSDs never safe to destroy",
    )
    # Below min_size too: the pool's last copies.
    two = plan_reset(inventory, ["wind", "chequita"], LiveLab(ceph=facts))
    assert any(
        "pool rbd" in r and "I/O would stop (min_size 2) and its data could be lost" in r
        for r in two.refusals
    )
    assert any("pool cephfs_data" in r for r in two.refusals)


def test_resetting_the_last_control_plane_node_is_refused(inventory: Inventory) -> None:
    live = LiveLab(nodes=("fohn", "chequita", "wind"))
    assert plan_reset(inventory, ["fohn"], live).refusals == (
        "Kubernetes: the control plane runs only on fohn; resetting it would take the API "
        "down for good (reset the whole lab with --all instead)",
    )
    # Before the kubernetes layer ran there is no API to lose.
    assert plan_reset(inventory, ["fohn"], LiveLab()).refusals == ()


def test_an_unknown_server_is_refused_naming_the_known_ones(inventory: Inventory) -> None:
    plan = plan_reset(inventory, ["gust"], LiveLab())
    assert plan.refusals == (
        "no server named 'gust' in the inventory (servers: fohn, chequita, wind)",
    )


def test_ceph_facts_are_decoded_from_its_json() -> None:
    quorum = {"monmap": {"mons": [{"name": "fohn"}, {"name": "wind"}]}, "quorum_names": ["fohn"]}
    tree = {"nodes": [
        {"id": -1, "type": "root", "name": "default", "children": [-2]},
        {"id": -2, "type": "host", "name": "fohn", "children": [1, 0]},
        {"id": 0, "type": "osd", "name": "osd.0"}, {"id": 1, "type": "osd", "name": "osd.1"},
    ]}  # fmt: skip
    pools = [{"pool_name": "rbd", "size": 3, "min_size": 2}]
    facts = decode_ceph(quorum, tree, pools)
    assert facts == CephFacts(("fohn", "wind"), ("fohn",), {"fohn": (0, 1)}, (Pool("rbd", 3, 2),))


def test_the_layers_that_ran_are_the_journals(tmp_path: Path) -> None:
    assert layers_run(tmp_path) == set()
    journal = Journal(tmp_path)
    journal.record("put-file:wind:/etc/etcd/etcd.env", "f1", "etcd: members")
    journal.record("run:astrid:systemctl restart frr", "f2", "calico: switches")
    assert layers_run(tmp_path) == {"etcd", "calico"}
    journal.forget("wind")
    assert layers_run(tmp_path) == {"calico"}
    assert json.loads((tmp_path / "journal.jsonl").read_text().splitlines()[-1])["forget"]


LOOPBACK = {"fohn": "127.31.164.220", "chequita": "127.31.164.221", "wind": "127.31.164.222"}


@contextmanager
def answering(tmp_path: Path, *names: str) -> Iterator[Path]:
    """The reference lab moved onto loopback (its public /28 as 127.31.164.208/28, SSH
    on a free port), with the servers ``names`` accepting connections on that port:
    the reset's question whether a server answers SSH gets a real answer, and nothing
    leaves this machine."""
    listeners: list[socket.socket] = []
    try:
        for name in ["fohn", *(n for n in names if n != "fohn")]:  # fohn's picks the port
            sock = socket.socket()
            sock.bind((LOOPBACK[name], listeners[0].getsockname()[1] if listeners else 0))
            sock.listen()
            listeners.append(sock)
        port = listeners[0].getsockname()[1]
        if "fohn" not in names:
            listeners.pop(0).close()  # the port stays free: fohn does not answer
        text = REFERENCE.read_text().replace("31.31.164.", "127.31.164.")
        text = text.replace(
            "  ssh:\n    user: core\n", f"  ssh:\n    user: core\n    port: {port}\n"
        )
        (tmp_path / "inventory.yaml").write_text(text)
        yield tmp_path
    finally:
        for sock in listeners:
            sock.close()


def test_reset_dry_run_says_every_step_and_changes_nothing(tmp_path: Path) -> None:
    with answering(tmp_path, "fohn", "chequita", "wind") as lab:
        done = run_labctl("reset", "wind", "--dry-run", cwd=lab)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            "wipe wind: etcd member data (/var/lib/etcd, moved aside); Kubernetes state (the "
            "kubelet: /var/lib/kubelet, /etc/kubernetes); Calico's node state "
            "(/var/lib/calico, /var/run/calico, its CNI configuration); Ceph monitor wind, mds "
            "wind, osd.10 on /dev/sdb, osd.11 on /dev/sdc, osd.12 on /dev/sdd, osd.13 on "
            "/dev/sde, osd.14 on /dev/sdf, osd.15 on /dev/sdg (each device's first MiB zeroed) "
            "(/var/lib/ceph, /etc/ceph); certificates and keys (/etc/ssl/etcd, "
            "/etc/kubernetes/ssl); labctl's units (the monitoring exporters' among them)",
            "power wind off",
        ]
        assert "etcd: its layer has not run here (the journal), nothing to remove" in done.stderr
        assert not (lab / ".labctl" / "journal.jsonl").exists()
        as_json = json.loads(
            run_labctl("reset", "--all", "--dry-run", "-o", "json", cwd=lab).stdout
        )
    assert as_json["ok"] and as_json["servers"] == ["fohn", "chequita", "wind"]
    assert [s["kind"] for s in as_json["steps"]] == ["wipe", "power-off"] * 3
    assert as_json["notes"][0].startswith("kept: each server's OS, the switches' configuration")


def test_reset_refuses_without_confirmation_and_names_what_it_would_destroy(
    tmp_path: Path,
) -> None:
    with answering(tmp_path, "fohn", "chequita", "wind") as lab:
        done = run_labctl("reset", "--all", cwd=lab)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert (
        "refusing to reset the whole lab (fohn, chequita, wind) without a terminal to "
        "confirm; add --yes" in done.stderr
    )
    for name in ("fohn", "chequita", "wind"):  # each server, and what it loses
        assert f"  wipe {name}: etcd member data (/var/lib/etcd, moved aside)" in done.stderr
        assert f"  power {name} off" in done.stderr
    assert "Kubernetes state (the kubelet and the control plane" in done.stderr
    assert not (lab / ".labctl").exists()  # nothing changed, not even a state directory
    unknown = run_labctl("reset", "gust", "-o", "json", cwd=lab)
    assert unknown.returncode == 1
    assert json.loads(unknown.stdout)["refused"] == [
        "no server named 'gust' in the inventory (servers: fohn, chequita, wind)"
    ]
    neither = run_labctl("reset", cwd=lab)
    assert neither.returncode == 2 and "name the servers to reset, or --all" in neither.stderr


def test_reset_all_is_refused_while_a_server_no_reset_wiped_does_not_answer(
    tmp_path: Path,
) -> None:
    """On main ``--all`` asked nothing: wind's wipe would fail over SSH half way through
    the lab, or, skipped, leave wind's etcd data to rejoin the next cluster."""
    with answering(tmp_path, "fohn", "chequita") as lab:
        done = run_labctl("reset", "--all", "--yes", "-o", "json", cwd=lab)
        assert done.returncode == 1, done.stdout + done.stderr
        report = json.loads(done.stdout)
        assert report["steps"] == [] and report["refused"] == [
            "wind (127.31.164.222) does not answer SSH and no reset has wiped it: a whole-lab "
            "reset wipes every server, and a server left with its etcd data would bring its "
            "old member back into the cluster the next bootstrap forms (the same token and "
            "peer URLs make the same ids); power it on (`labctl power on wind`) or take it out "
            "of the inventory, then reset again"
        ]
        # An interrupted --all that wiped wind and powered it off resumes past it.
        record = survey.reset_record(lab / ".labctl", "wind")
        record.parent.mkdir(parents=True)
        record.write_text('{"os": "kept"}\n')
        resumed = run_labctl("reset", "--all", "--dry-run", "-o", "json", cwd=lab)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    steps = [(s["kind"], s["server"]) for s in json.loads(resumed.stdout)["steps"]]
    assert steps == [
        ("wipe", "fohn"), ("power-off", "fohn"),
        ("wipe", "chequita"), ("power-off", "chequita"),
        ("fence", "wind"),
    ]  # fmt: skip


def test_the_whole_lab_names_what_each_server_loses_and_needs_no_quorum(
    inventory: Inventory,
) -> None:
    plan = plan_reset(inventory, [], LiveLab(), whole_lab=True)
    assert plan.refusals == ()
    wipes = {s.server: s.sentence for s in plan.steps if s.kind == "wipe"}
    assert wipes["fohn"].startswith(
        "wipe fohn: etcd member data (/var/lib/etcd, moved aside); Kubernetes state (the "
        "kubelet and the control plane: /var/lib/kubelet, /etc/kubernetes); Calico's node "
        "state (/var/lib/calico, /var/run/calico, its CNI configuration); Ceph monitor "
        "fohn, manager fohn, osd.0 on /dev/sdb, "
    )
    # fohn runs Prometheus and Alertmanager (the control plane's, monitoring.servers unset)
    assert "Prometheus's and Alertmanager's data and configuration" in wipes["fohn"]
    assert "Prometheus" not in wipes["wind"]
    assert "mds chequita" in wipes["chequita"] and "osd.9 on /dev/sdd" in wipes["chequita"]
    for sentence in wipes.values():
        assert "certificates and keys (/etc/ssl/etcd, /etc/kubernetes/ssl)" in sentence
    assert plan.destroyed() == [s.sentence for s in plan.steps]
    # A server silent but wiped by an earlier reset is only fenced; one never wiped refuses.
    resumed = plan_reset(inventory, [], LiveLab(silent=("wind",), wiped=("wind",)), True)
    assert [(s.kind, s.server) for s in resumed.steps][-1] == ("fence", "wind")
    refused = plan_reset(inventory, [], LiveLab(silent=("chequita", "wind")), True)
    assert refused.steps == () and refused.refusals[0].startswith(
        "chequita (31.31.164.221), wind (31.31.164.222) do not answer SSH and no reset has "
        "wiped them"
    )


def test_a_component_that_ran_but_does_not_answer_refuses_the_reset(tmp_path: Path) -> None:
    with answering(tmp_path, "wind") as lab:  # its etcd does not (loopback: refused at once)
        Journal(lab / ".labctl").record("put-file:wind:/etc/etcd/etcd.env", "f", "etcd: members")
        done = run_labctl("reset", "wind", "--dry-run", cwd=lab)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "cannot read what etcd runs" in done.stderr
    assert "refusing to remove anything from a lab whose quorum cannot be seen" in done.stderr


def test_a_drain_evicts_neither_daemonsets_nor_static_pods_nor_finished_ones() -> None:
    from labctl.kubernetes.drain import evicted as _evicted

    def pod(phase: str = "Running", **meta: object) -> dict[str, object]:
        return {"metadata": {"name": "p", "namespace": "n", **meta}, "status": {"phase": phase}}

    assert _evicted(pod())
    assert not _evicted(pod(ownerReferences=[{"kind": "DaemonSet", "name": "calico"}]))
    assert _evicted(pod(ownerReferences=[{"kind": "ReplicaSet", "name": "web"}]))
    assert not _evicted(pod(annotations={"kubernetes.io/config.mirror": "x"}))
    assert not _evicted(pod("Succeeded"))


def test_the_reference_labs_ceph_as_it_answered_refuses_any_one_server_removal(
    inventory: Inventory,
) -> None:
    """Ceph's own answers on the simulated reference lab (tests/fixtures/ceph: 16 OSDs
    on 3 hosts) and its pools as the inventory makes them (size 3, min_size 2)."""
    fixtures = Path(__file__).parents[1] / "fixtures" / "ceph"
    quorum = json.loads((fixtures / "quorum_status.json").read_text())
    tree = json.loads((fixtures / "osd-tree.json").read_text())
    assert inventory.cluster.ceph is not None
    pools = [{"pool_name": p.name, "size": p.size, "min_size": 2}
             for p in inventory.cluster.ceph.pools]  # fmt: skip
    facts = decode_ceph(quorum, tree, pools)
    assert facts.osds["wind"] == (10, 11, 12, 13, 14, 15)
    plan = plan_reset(inventory, ["wind"], LiveLab(etcd=etcd(), ceph=facts))
    assert plan.steps == ()
    assert [r.split(" keeps")[0] for r in plan.refusals] == [
        "Ceph: pool rbd",
        "Ceph: pool cephfs_data",
        "Ceph: pool cephfs_metadata",
    ]


def test_a_server_that_does_not_answer_leaves_its_peers_without_a_drain_or_a_wipe(
    inventory: Inventory,
) -> None:
    live = LiveLab(
        etcd=etcd(sick=("wind",)),
        nodes=("fohn", "chequita", "wind"),
        bgp={"astrid": ("31.31.164.222",), "kek-core": ("31.31.164.222",)},
        silent=("wind",),
    )
    plan = plan_reset(inventory, ["wind"], live)
    assert plan.refusals == ()
    assert [(s.kind, s.target) for s in plan.steps] == [
        ("delete-node", "wind"),
        ("etcd-remove", "3"),
        ("bgp-remove", "astrid 31.31.164.222"),
        ("bgp-remove", "kek-core 31.31.164.222"),
        ("fence", "wind"),
    ]
    assert (
        "wind does not answer SSH at 31.31.164.222: its Node is deleted without a drain and "
        "its disks are not wiped (steps that need the node are skipped); a replacement comes "
        "with new disks, a server brought back is wiped by `labctl reset` again"
    ) in plan.notes


def test_a_fenced_server_is_forgotten_so_what_comes_back_under_its_name_is_built_again(
    inventory: Inventory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On main only a wiped server was forgotten: a dead one replaced under its name got its
    files back from the next bootstrap but none of the commands the journal remembered
    (tests/e2e/test_servers_lab.py's replaced storm: calico-node's confd never started)."""
    journal = Journal(tmp_path)
    key = "run:wind:systemctl enable calico-confd.service"
    journal.record(key, "f", "calico-resources: calico-node's confd and CNI plugin on the nodes")
    journal.record("run:fohn:true", "f", "calico-resources: objects")
    reset = Reset(inventory, tmp_path, tmp_path)

    def dark(step: Step) -> None:  # the BMC does not answer either (nothing to reach here)
        raise LabctlError("no answer")

    monkeypatch.setattr(reset, "_power_off", dark)
    reset.do(Step("wind", "fence", "wind", "fence wind"))
    remembered = {e.key for e in Journal(tmp_path).entries()}
    assert remembered == {"run:fohn:true"}
