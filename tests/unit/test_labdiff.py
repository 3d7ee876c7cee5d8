"""`labctl plan`'s whole-lab diff (labctl/labdiff/): its parts, its JSON shape, the command."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from labctl.engine.executor import Outcome, RunReport, StepResult
from labctl.engine.journal import Journal
from labctl.engine.runner import LayerOutcome
from labctl.errors import LabctlError
from labctl.inventory import require_inventory
from labctl.labdiff.diff import (
    LayerChange,
    lab_diff,
    layer_change,
    located,
    server_changes,
    version_changes,
    wanted_versions,
)
from labctl.labdiff.running import Journaled, Observed, ceph_hosts, ceph_versions, read_journal
from labctl.labdiff.skew import Running, Wanted
from tests.conftest import REFERENCE
from tests.day_two import NEW_SERVER, changed_inventory
from tests.labctl_process import run_labctl

INVENTORY = require_inventory(REFERENCE)

# What `ceph versions -f json` answers (Ceph 16's shape: per daemon kind, then overall).
CEPH_VERSIONS = {
    "mon": {"ceph version 16.2.15 (618f440892089921c3e944a991122ddc44e60516) pacific (stable)": 3},
    "mgr": {"ceph version 16.2.15 (618f440892089921c3e944a991122ddc44e60516) pacific (stable)": 3},
    "osd": {
        "ceph version 15.2.17 (8a82819d84cf884bd39c17e3236e0632ac146dc4) octopus (stable)": 2,
        "ceph version 16.2.15 (618f440892089921c3e944a991122ddc44e60516) pacific (stable)": 14,
    },
    "overall": {"ceph version 16.2.15 (618f...) pacific (stable)": 20},
}


def test_ceph_versions_are_read_per_daemon_kind() -> None:
    assert ceph_versions(CEPH_VERSIONS) == {
        "mgr": ("16.2.15",),
        "mon": ("16.2.15",),
        "osd": ("15.2.17", "16.2.15"),
    }
    assert ceph_versions("not json") == {}
    tree = {"nodes": [{"type": "root", "name": "default"}, {"type": "host", "name": "wind"}]}
    assert ceph_hosts(tree) == {"wind"}


def test_the_journal_names_the_machines_worked_on_and_forgets_reinstalled_ones(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path)
    journal.record("put-file:fohn:/etc/etcd.env", "f1", "etcd")
    journal.record("run:ghost:systemctl restart etcd", "f2", "etcd: start ghost")
    journal.record("put-file:kek-core:/etc/frr/frr.conf", "f3", "calico")
    journal.record("local:pki.mint", "f4", "pki")
    journal.record("run:gone:true", "f5", "os")
    journal.forget("gone")
    found = read_journal(tmp_path)
    assert found.hosts == {"fohn", "ghost", "kek-core"}
    assert found.layers == {"etcd", "calico", "pki"}  # gone's os entry was forgotten too
    assert read_journal(tmp_path / "none") == Journaled()
    assert not (tmp_path / "none").exists()  # reading writes nothing


def test_servers_join_stay_or_leave_by_the_journal_and_what_runs() -> None:
    observed = Observed(
        journal=Journaled(frozenset({"fohn", "chequita", "ghost", "kek-core", "pdu1"})),
        live={"kubernetes": frozenset({"fohn", "typhoon"}), "etcd": frozenset({"ghost"})},
    )
    found = {s.name: s for s in server_changes(INVENTORY, observed)}
    assert {n: s.change for n, s in found.items()} == {
        "fohn": "stay",
        "chequita": "stay",
        "wind": "join",
        "ghost": "leave",
        "typhoon": "leave",
    }
    assert found["ghost"].seen_in == ("journal", "etcd")
    assert found["typhoon"].seen_in == ("kubernetes",)
    assert found["fohn"].seen_in == ("journal", "kubernetes")
    assert found["wind"].roles == ("ceph-mds", "ceph-mon", "ceph-osd", "etcd", "worker")
    # A server that leaves: bootstrap does not take it out; the plan says what does.
    then = (
        "ghost leaves: bootstrap does not take a server out of the lab; run "
        "`labctl reset ghost` while the inventory still names it, then delete it"
    )
    assert found["ghost"].as_dict()["then"] == then
    text = lab_diff(INVENTORY, "inventory.yaml", observed, [], []).render_text()
    assert f"  - ghost (seen in journal, etcd)\n    {then}" in text


def test_version_changes_say_upgrade_none_downgrade_or_unknown() -> None:
    running = Running(
        api_servers={"https://api:6443": "v1.35.2"},
        kubelets={"fohn": "v1.35.2"},
        etcd={"fohn": "3.4.23"},
        ceph={"mon": ("17.2.7",)},
    )
    found = {
        v.component: v
        for v in version_changes(
            Wanted(kubernetes="1.36.3", etcd="3.4.23", ceph="16.2.15"), Observed(running=running)
        )
    }
    assert found["kubernetes"].change == "upgrade"
    assert found["kubernetes"].running == {
        "api-server https://api:6443": "1.35.2",
        "kubelet fohn": "1.35.2",
    }
    assert found["etcd"].change == "none"
    assert found["ceph"].change == "downgrade"
    assert found["ceph"].running == {"ceph-mon": "17.2.7"}
    (unknown,) = version_changes(Wanted(etcd="3.5.0"), Observed())
    assert unknown.change == "unknown"
    assert unknown.line() == "etcd: 3.5.0 wanted; what runs is not known"


def _result(step_id: str, target: str, outcome: Outcome, **kw: str) -> StepResult:
    return StepResult(step_id, target, f"about {step_id}", outcome, 0.1, **kw)  # type: ignore[arg-type]


def test_a_layers_dry_run_becomes_its_steps_by_node_with_the_reason() -> None:
    report = RunReport(
        "etcd",
        [
            _result("put-file:fohn:/etc/etcd.env", "fohn", Outcome.WOULD_CHANGE, reason="differs"),
            _result("run:fohn:restart", "fohn", Outcome.WOULD_CHANGE, reason="not run yet"),
            _result("put-file:wind:/etc/etcd.env", "wind", Outcome.UNCHANGED),
            _result("run:wind:restart", "wind", Outcome.SKIPPED),
        ],
    )
    change = layer_change(LayerOutcome("etcd", "dry-run", [report]))
    assert change.status == "changes"
    assert change.already_true == 2
    assert change.as_dict() == {
        "layer": "etcd",
        "status": "changes",
        "already_true": 2,
        "nodes": [
            {
                "node": "fohn",
                "steps": [
                    {
                        "action": "put-file",
                        "what": "about put-file:fohn:/etc/etcd.env",
                        "reason": "differs",
                    },
                    {"action": "run", "what": "about run:fohn:restart", "reason": "not run yet"},
                ],
            }
        ],
    }
    failed = RunReport(
        "power", [_result("set-power:fohn:on", "fohn", Outcome.FAILED, error="no password")]
    )
    refused = layer_change(LayerOutcome("power", "failed", [failed]))
    assert refused.status == "could-not-ask"
    assert refused.could_not_ask == ("fohn: about set-power:fohn:on: no password",)
    quiet = layer_change(LayerOutcome("pki", "dry-run", [RunReport("pki", [])]))
    assert quiet.status == "nothing-to-do"
    assert layer_change(LayerOutcome("later", "not-built")).status == "not-built"
    waiting = layer_change(LayerOutcome("etcd", "dry-run", [], ["the rest is planned once ..."]))
    assert waiting.status == "planned-in-part"


def test_the_diffs_json_shape_is_stable() -> None:
    observed = Observed(
        journal=Journaled(frozenset({"fohn"}), frozenset({"etcd"})),
        running=Running(etcd={"fohn": "3.4.23"}),
        not_asked=["kubernetes: not asked: its layer has not run from this state directory"],
    )
    diff = lab_diff(
        INVENTORY, "inventory.yaml", observed, [LayerChange("pki", "nothing-to-do")], ["x: y"]
    )
    shape = diff.as_dict()
    assert list(shape) == [
        "format",
        "ok",
        "inventory",
        "stand_ins",
        "servers",
        "versions",
        "skew",
        "layers",
        "not_asked",
    ]
    assert shape["format"] == 1 and shape["ok"] is True
    assert shape["servers"] == {
        "join": [
            {"name": "chequita", "roles": ["ceph-mds", "ceph-mon", "ceph-osd", "etcd", "worker"]},
            {"name": "wind", "roles": ["ceph-mds", "ceph-mon", "ceph-osd", "etcd", "worker"]},
        ],
        "leave": [],
        "stay": ["fohn"],
    }
    assert [v["component"] for v in shape["versions"]] == ["etcd", "kubernetes", "ceph"]
    assert list(shape["versions"][0]) == ["component", "field", "wanted", "running", "change"]
    assert shape["skew"] == []
    assert json.loads(diff.to_json()) == shape
    text = diff.render_text()
    assert "servers: 2 join, 0 leave, 1 stay" in text
    assert "etcd: 3.4.23 wanted, running 3.4.23 on fohn: no change" in text
    assert "1. pki: nothing to change" in text


def test_a_skew_problem_makes_the_diff_not_ok_and_is_located_in_the_file() -> None:
    text = changed_inventory(REFERENCE.read_text(), add_server=False, etcd="3.6.0")
    observed = Observed(running=Running(etcd={"fohn": "3.4.23"}))
    from labctl.inventory import check_text

    inventory = check_text(text, "changed.yaml").inventory
    assert inventory is not None
    diff = lab_diff(inventory, "changed.yaml", observed, [])
    (problem,) = diff.skew
    assert not diff.ok
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "version: 3.6.0" in t)
    said = located(problem, text, "changed.yaml")
    assert said.startswith(f"changed.yaml:{line}:")
    assert "cluster.etcd.version: 3.6.0 skips a minor version" in said
    # Left at its default, the field is located at the mapping that would hold it.
    default = located(problem, REFERENCE.read_text(), "inventory.yaml")
    assert default.startswith("inventory.yaml:") and default.count(":") >= 3


def test_wanted_versions_are_the_inventorys() -> None:
    assert wanted_versions(INVENTORY) == Wanted("1.36.3", "3.4.23", "16.2.15")


SIM_ENV = {"LABCTL_ETCD_RUNTIME": "host", "LABCTL_SWITCH_PLATFORM": "frr"}


def test_plan_without_a_lab_says_what_it_can_and_what_it_could_not_ask(tmp_path: Path) -> None:
    """On main `plan -o json` was the layers' dry runs only (no servers, versions, shape)."""
    work = tmp_path / "lab"
    work.mkdir()
    inventory = work / "inventory.yaml"
    inventory.write_text(changed_inventory(REFERENCE.read_text(), etcd="3.5.9"))
    args = ("plan", "pki", "etcd", "-i", str(inventory), "--state-dir", str(work / ".labctl"))
    done = run_labctl(*args, "-o", "json", cwd=work, env=SIM_ENV, timeout=60)
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    found = json.loads(done.stdout)
    assert found["format"] == 1
    assert [s["name"] for s in found["servers"]["join"]] == [
        "fohn",
        "chequita",
        "wind",
        NEW_SERVER,
    ]
    assert found["servers"]["leave"] == []
    etcd = found["versions"][0]
    assert (etcd["component"], etcd["wanted"], etcd["change"]) == ("etcd", "3.5.9", "unknown")
    assert [layer["layer"] for layer in found["layers"]] == ["pki", "etcd"]
    assert len(found["not_asked"]) == 3
    assert all("its layer has not run" in why for why in found["not_asked"])
    assert found["stand_ins"]
    text = run_labctl(*args, cwd=work, env=SIM_ENV, timeout=60)
    assert f"+ {NEW_SERVER} (worker)" in text.stdout
    assert "not asked:" in text.stdout


def test_plan_layers_keeps_the_layer_by_layer_dry_run(tmp_path: Path) -> None:
    work = tmp_path / "lab"
    work.mkdir()
    (work / "inventory.yaml").write_text(REFERENCE.read_text())
    args = ("plan", "--layers", "pki", "--state-dir", str(work / ".labctl"), "-o", "json")
    done = run_labctl(*args, cwd=work, env=SIM_ENV, timeout=60)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["ok"] is True
    assert [layer["layer"] for layer in found["layers"]] == ["pki"]
    assert "plans" in found["layers"][0]


def test_the_components_are_asked_at_once_and_said_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 28: bootstrap's preflight asked etcd, Kubernetes and Ceph one after another
    (2.2 s of a 8.6 s converged run, most of it two containerised `ceph` calls): they
    are asked at once now. Each reader here waits until all three are asking; one after
    another, the first would wait alone until the barrier gives up."""
    from labctl.labdiff import running

    journal = Journal(tmp_path)
    for layer in ("etcd", "kubernetes", "ceph"):
        journal.record(f"run:fohn:{layer}", "f", layer)
    together = threading.Barrier(3, timeout=5)
    lives: list[bool] = []

    def reader(part: Running, fails: bool = False) -> Callable[..., Running]:
        def read(inventory: object, base_dir: Path, seen: Observed, live: bool) -> Running:
            together.wait()
            lives.append(live)
            seen.not_asked.append(f"a note from {sorted(part.etcd or part.ceph or {'k': 1})}")
            if fails:
                raise LabctlError("no answer")
            return part

        return read

    monkeypatch.setattr(
        running,
        "READERS",
        {
            "etcd": reader(Running(etcd={"fohn": "3.5.21"})),
            "kubernetes": reader(Running(kubelets={"fohn": "v1.36.3"}), fails=True),
            "ceph": reader(Running(ceph={"mon": ("16.2.15",)})),
        },
    )
    seen = running.observe(
        INVENTORY, tmp_path, tmp_path, ("etcd", "kubernetes", "ceph"), live=False
    )
    assert seen.asked == ["etcd", "ceph"]
    assert seen.running.etcd == {"fohn": "3.5.21"} and seen.running.ceph == {"mon": ("16.2.15",)}
    assert seen.not_asked == [
        "a note from ['fohn']",
        "a note from ['k']",
        "kubernetes: could not ask: no answer",
        "a note from ['mon']",
    ]
    assert lives == [False] * 3


def test_the_preflight_asks_ceph_its_versions_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The preflight needs versions, not which hosts hold OSDs: one `ceph` call (each
    is a container run on a containerised lab), where `plan`'s diff makes two."""
    from labctl.ceph import cluster
    from labctl.labdiff import running

    asked: list[tuple[str, ...]] = []

    class Cli:
        def json(self, *args: str) -> object:
            asked.append(args)
            return CEPH_VERSIONS if args == ("versions",) else {"nodes": []}

    class Session:
        cli = Cli()

        def __init__(self, *args: object) -> None:
            pass

        def __enter__(self) -> Session:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    monkeypatch.setattr(cluster, "CephSession", Session)
    Journal(tmp_path).record("run:fohn:ceph", "f", "ceph")
    running.observe(INVENTORY, tmp_path, tmp_path, ("ceph",), live=False)
    assert asked == [("versions",)]
    asked.clear()
    seen = running.observe(INVENTORY, tmp_path, tmp_path, ("ceph",))
    assert asked == [("versions",), ("osd", "tree")] and seen.live == {"ceph": frozenset()}
