"""The etcd cluster's token (``etcd/token.py``): one per formation, kept in the state
directory, reused by every later run, forgotten by ``reset --all``.

The nodes' side is the shipped ``etcd-token.sh`` run by ``sh`` on stand-in data
directories; the asking over SSH is proven on the simulated lab
(``tests/e2e/test_retire_lab.py``: a new cluster id after ``reset --all``).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from labctl.day2.apply import Reset
from labctl.day2.retire import Step
from labctl.engine.actions import PutFile, Run
from labctl.engine.facts import Facts
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan
from labctl.errors import LabctlError
from labctl.etcd import token as tokens
from labctl.etcd.membership import RECORD_NAME as MEMBERSHIP
from labctl.etcd.membership import EtcdChanges, EtcdJoined, MembershipRecord
from labctl.etcd.token import EtcdToken, NodeToken, TokenRecord, decide
from labctl.etcd.upgrade import EtcdVersions
from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from labctl.layers.etcd import EtcdLayer
from tests.conftest import REFERENCE


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return require_inventory(REFERENCE)


def node(name: str, data: bool = False, marker: str = "", env: str = "") -> NodeToken:
    return NodeToken(name, data, marker, env)


def test_a_new_token_when_no_member_holds_data(inventory: Inventory) -> None:
    found = [node("fohn"), node("chequita", env="sthlm-etcd"), node("wind")]
    token, why = decide(inventory, found, "sthlm-etcd-feed")
    assert token == "sthlm-etcd-feed"
    assert why == "a new cluster forms: no member holds etcd data"
    assert tokens.new_token(inventory) != tokens.new_token(inventory)
    assert tokens.new_token(inventory).startswith("sthlm-etcd-")


def test_an_existing_lab_keeps_its_old_token(inventory: Inventory) -> None:
    """A lab formed before tokens per formation: its markers say sthlm-etcd."""
    found = [node(n, data=True, marker="sthlm-etcd", env="sthlm-etcd") for n in ("fohn", "wind")]
    assert decide(inventory, found, "new")[0] == "sthlm-etcd"
    # Data without a marker: the environment file's token, else the old form.
    assert decide(inventory, [node("fohn", data=True, env="x-etcd-1")], "new")[0] == "x-etcd-1"
    assert decide(inventory, [node("fohn", data=True)], "new") == (
        "sthlm-etcd",
        "kept: fohn hold data formed with the old token",
    )


def test_a_marker_without_data_is_kept_too(inventory: Inventory) -> None:
    """A run killed after the restart script marked a member but before etcd wrote data:
    the marker stays (the script never rewrites it), so the token must be that one."""
    found = [node("fohn", marker="sthlm-etcd-abc"), node("wind")]
    assert decide(inventory, found, "new")[0] == "sthlm-etcd-abc"


def test_markers_of_two_clusters_or_a_token_outside_the_grammar_are_refused(
    inventory: Inventory,
) -> None:
    with pytest.raises(LabctlError, match=r"different clusters \(fohn a-etcd, wind b-etcd\)"):
        decide(inventory, [node("fohn", True, "a-etcd"), node("wind", True, "b-etcd")], "new")
    with pytest.raises(LabctlError, match="not a cluster token"):
        decide(inventory, [node("fohn", True, "$(reboot)")], "new")


def test_a_silent_member_stops_the_choice_only_while_no_other_holds_data(
    inventory: Inventory,
) -> None:
    silent = ["wind (no answer)"]
    with pytest.raises(LabctlError, match=r"does not answer .*: wind \(no answer\)"):
        decide(inventory, [node("fohn"), node("chequita")], "new", silent)
    running = [node("fohn", True, "sthlm-etcd"), node("chequita", True, "sthlm-etcd")]
    assert decide(inventory, running, "new", silent)[0] == "sthlm-etcd"


def script_says(data_dir: Path, env: Path) -> NodeToken:
    done = subprocess.run(
        ["sh", "-c", tokens.READ, "labctl-etcd-token", str(data_dir), str(env)],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return NodeToken.parse("fohn", done.stdout)


def test_the_nodes_script_reads_data_marker_and_environment(tmp_path: Path) -> None:
    data, env = tmp_path / "var-lib-etcd", tmp_path / "etcd.env"
    assert script_says(data, env) == node("fohn")  # nothing there: a new node
    env.write_text("ETCD_NAME=fohn\nETCD_INITIAL_CLUSTER_TOKEN=sthlm-etcd\n")
    (data / "member").mkdir(parents=True)
    assert script_says(data, env) == node("fohn", True, "", "sthlm-etcd")
    (data / ".labctl-cluster").write_text("sthlm-etcd-0a1b\n")
    assert script_says(data, env) == node("fohn", True, "sthlm-etcd-0a1b", "sthlm-etcd")


def test_the_record_is_written_whole_and_read_back(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert TokenRecord.load(state) is None
    TokenRecord("sthlm-etcd-1", "2026-12-07T11:00:00Z", "a new cluster forms").save(state)
    assert TokenRecord.load(state) == TokenRecord(
        "sthlm-etcd-1", "2026-12-07T11:00:00Z", "a new cluster forms"
    )
    assert [p.name for p in state.iterdir()] == [tokens.RECORD_NAME]  # no temp file left
    assert oct((state / tokens.RECORD_NAME).stat().st_mode & 0o777) == "0o644"  # not a secret


def test_a_write_that_dies_leaves_the_token_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    TokenRecord("sthlm-etcd-1").save(state)

    def dies(*_: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", dies)
    with pytest.raises(KeyboardInterrupt):
        TokenRecord("sthlm-etcd-2").save(state)
    assert TokenRecord.load(state) == TokenRecord("sthlm-etcd-1")
    assert [p.name for p in state.iterdir()] == [tokens.RECORD_NAME]


def test_a_record_with_no_token_in_it_is_refused(tmp_path: Path) -> None:
    (tmp_path / tokens.RECORD_NAME).write_text(json.dumps({"token": "a b"}))
    with pytest.raises(LabctlError, match="not a token"):
        TokenRecord.load(tmp_path)


def test_a_kept_token_is_reused_without_asking_any_node(
    inventory: Inventory, tmp_path: Path
) -> None:
    """Resume after a SIGKILL between the choice and the members' start: the record is
    there, so the work keeps it (the reference lab's nodes are not reachable from a
    unit test: asking them would fail) and the plans render it."""
    state = tmp_path / "state"
    TokenRecord("sthlm-etcd-c0ffee", "t", "a new cluster forms").save(state)
    ctx = LayerContext(inventory, REFERENCE, state)
    assert tokens.TokenWork().apply(ctx) is False
    assert tokens.TokenWork().observe(ctx) is None
    assert TokenRecord.load(state) == TokenRecord("sthlm-etcd-c0ffee", "t", "a new cluster forms")
    ctx.facts.expect([EtcdToken, EtcdChanges, EtcdJoined, EtcdVersions], "etcd")
    ctx.facts.gather([EtcdChanges, EtcdJoined], ctx)
    ctx.facts.gather([EtcdVersions], ctx)
    plans = list(EtcdLayer().plans(ctx))
    env = next(
        s.action
        for p in plans
        for s in p.steps
        if str(s.action.as_dict().get("path")) == "/etc/etcd/etcd.env"
    )
    assert b"ETCD_INITIAL_CLUSTER_TOKEN=sthlm-etcd-c0ffee\n" in env.content  # type: ignore[union-attr]


def test_a_real_run_without_a_kept_token_does_not_plan_the_members(
    inventory: Inventory, tmp_path: Path
) -> None:
    """The token step makes the fact; a real run that left it out stops at the members."""
    ctx = LayerContext(inventory, REFERENCE, tmp_path / "state")
    ctx.facts.expect([EtcdToken], "etcd")
    plans = EtcdLayer().plans(ctx)
    assert next(plans).layer == "etcd: token"
    with pytest.raises(LabctlError, match=r"no etcd cluster token is kept yet \(etcd: token"):
        next(plans)


def test_a_restore_chooses_a_new_token_once(inventory: Inventory, tmp_path: Path) -> None:
    state = tmp_path / "state"
    TokenRecord("sthlm-etcd-old").save(state)
    ctx = LayerContext(inventory, REFERENCE, state)
    assert tokens.RestoreTokenWork("r1").apply(ctx) is True
    first = TokenRecord.load(state)
    assert first is not None and first.token not in ("sthlm-etcd-old", "sthlm-etcd")
    assert first.restore == "r1"
    assert tokens.RestoreTokenWork("r1").apply(ctx) is False  # the same restore: kept
    assert TokenRecord.load(state) == first
    assert tokens.RestoreTokenWork("r2").apply(ctx) is True  # another restore: another one
    second = TokenRecord.load(state)
    assert second is not None and second.token != first.token


def test_a_restores_new_token_changes_no_remembered_step_of_the_next_bootstrap(
    inventory: Inventory, tmp_path: Path
) -> None:
    """After `labctl etcd restore` (a new token) the members plan writes the token into
    the environment files, a start-up-only line, and runs nothing again: every Run the
    journal remembers (the restart above all) is the same step with the same inputs,
    so a converged lab gets no second rolling restart after its restore."""

    def members(token: str) -> Plan:
        facts = Facts.of(EtcdToken(token), EtcdChanges(), EtcdJoined(), EtcdVersions())
        ctx = LayerContext(inventory, REFERENCE, tmp_path / "state", facts=facts)
        return next(p for p in EtcdLayer().plans(ctx) if p.layer == "etcd: members")

    formed, restored = members("sthlm-etcd-0123456789ab"), members("sthlm-etcd-ba9876543210")
    runs = [
        {(s.action.key, s.action.fingerprint) for s in plan.steps if isinstance(s.action, Run)}
        for plan in (formed, restored)
    ]
    assert runs[0] and runs[0] == runs[1], runs[0] ^ runs[1]
    envs = [
        {s.action.path: s.action.content for s in plan.steps if isinstance(s.action, PutFile)}
        for plan in (formed, restored)
    ]
    changed = {
        line
        for path, text in envs[1].items()
        for line in set(text.decode().splitlines()) ^ set(envs[0][path].decode().splitlines())
    }
    assert {line.split("=")[0] for line in changed} == {"ETCD_INITIAL_CLUSTER_TOKEN"}


class Recorder:
    """An SSH connection that records what it is asked to run (the wipe's script is
    tested in tests/unit/test_reset_wipe.py)."""

    def run(self, argv: tuple[str, ...], **_: Any) -> None:
        self.argv = argv


@pytest.mark.parametrize("whole_lab", [True, False])
def test_reset_all_forgets_the_token_and_a_reset_of_one_server_keeps_it(
    tmp_path: Path, whole_lab: bool
) -> None:
    state = tmp_path / "state"
    TokenRecord("sthlm-etcd-old").save(state)
    reset = Reset(require_inventory(REFERENCE), tmp_path, state, whole_lab=whole_lab)
    ssh = Recorder()
    reset._ssh = lambda name: ssh  # type: ignore[method-assign]
    reset._wipe(Step("wind", "wipe", "wind", "wipe wind"))
    assert ssh.argv[:2] == ("sh", "-c")
    kept = TokenRecord.load(state)
    assert (kept is None) == whole_lab, kept


def test_sim_down_forgets_the_token_and_membership_kept_beside_the_labs_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A simulated lab taken down has no etcd left: the next `up` and bootstrap form a
    new cluster, so the token and the membership record go with the journal (the
    other records stay)."""
    from labctl.sim import lab
    from labctl.sim.record import STATE_FILE

    monkeypatch.setattr(lab, "require_root", lambda: None)  # nothing here needs root
    labctl_state, sim_state = tmp_path / "state", tmp_path / "state" / "sim"
    TokenRecord("sthlm-etcd-old").save(labctl_state)
    joined = {"wind": ("wind=https://10.0.0.1:2380,fire=https://10.0.0.2:2380", "8e9e05c52164694d")}
    MembershipRecord(labctl_state / MEMBERSHIP, ["fire"], {"old": "1"}, joined).save()
    (labctl_state / "journal.jsonl").write_text("{}\n")
    (labctl_state / "kept.json").write_text("{}\n")
    sim_state.mkdir()
    record = {
        "plan": {"host_link": "lbtest-none", "fabric": f"lbtest-{os.getpid()}"},
        "nodes": {}, "pids": {}, "routes": [], "netns": [], "links": [],
        "journal": str(labctl_state / "journal.jsonl"),
    }  # fmt: skip
    (sim_state / STATE_FILE).write_text(json.dumps(record))
    assert lab.down(sim_state) == "the simulated lab is down; everything it made is gone"
    assert not sim_state.exists()
    assert TokenRecord.load(labctl_state) is None
    assert not (labctl_state / MEMBERSHIP).exists()
    assert MembershipRecord.load(labctl_state).joined == {}
    assert not (labctl_state / "journal.jsonl").exists()
    assert (labctl_state / "kept.json").exists()
