"""The etcd layer's plans and renders for the reference inventory, against reviewed goldens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labctl.engine.actions import PutFile, Run
from labctl.engine.facts import Facts
from labctl.engine.layer import LayerContext
from labctl.etcd.membership import RECORD_NAME, EtcdChanges, EtcdJoined, MembershipRecord
from labctl.etcd.restore import RESTORE, EtcdRestore
from labctl.etcd.token import EtcdToken
from labctl.etcd.upgrade import EtcdVersions
from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from labctl.layers.etcd import EtcdLayer, is_restart
from labctl.render import etcd as render
from labctl.render.systemd import env_text
from labctl.sim.platform import SimPlatform
from tests.conftest import REFERENCE, assert_golden


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return require_inventory(REFERENCE)


# The cluster's token, as a formation chose it (etcd/token.py keeps it).
TOKEN = "sthlm-etcd-0123456789ab"
# A cluster where no member joins or leaves, and none joined a running cluster.
QUIET = Facts.of(EtcdToken(TOKEN), EtcdChanges(), EtcdJoined(), EtcdVersions())


def test_etcd_plans_match_golden(inventory: Inventory, tmp_path: Path) -> None:
    ctx = LayerContext(inventory, REFERENCE, tmp_path / "state", facts=QUIET)
    plans = [plan.as_dict() for plan in EtcdLayer().plans(ctx)]
    assert [p["layer"] for p in plans] == [
        "etcd: token",
        "etcd: snapshot",
        "etcd: membership",
        "etcd: members",
        "etcd: health",
    ]
    assert_golden("plan-etcd.json", json.dumps(plans, indent=2) + "\n")


JOINED_WITH = (
    "fohn=https://31.31.164.220:2380,chequita=https://31.31.164.221:2380,"
    "wind=https://31.31.164.222:2380"
)


def with_facts(
    joining: tuple[str, ...] = (),
    leaving: tuple[tuple[str, str], ...] = (),
    joined: tuple[tuple[str, tuple[str, str]], ...] = (),
) -> LayerContext:
    facts = Facts.of(
        EtcdToken(TOKEN), EtcdChanges(joining, leaving), EtcdJoined(joined), EtcdVersions()
    )
    return LayerContext(
        require_inventory(REFERENCE),
        REFERENCE,
        Path("/nonexistent/state"),  # plans read facts, never the state directory
        facts=facts,
        platform=SimPlatform(etcd="host"),
    )


def test_a_joiner_is_added_started_and_promoted_on_its_own_after_the_members(
    tmp_path: Path,
) -> None:
    ctx = with_facts(joining=("wind",), joined=(("wind", (JOINED_WITH, "beef")),))
    plans = list(EtcdLayer().plans(ctx))
    assert [p.layer for p in plans] == [
        "etcd: token",
        "etcd: snapshot",
        "etcd: membership",
        "etcd: members",
        "etcd: add wind",
        "etcd: start wind",
        "etcd: promote wind",
        "etcd: health",
    ]
    assert {s.target for s in plans[3].steps} == {"fohn", "chequita"}
    assert [s.action.as_dict()["subject"] for p in (plans[4], plans[6]) for s in p.steps] == [
        "wind",
        "wind",
    ]
    env = next(
        s.action for s in plans[5].steps if str(s.action.as_dict().get("path")).endswith("env")
    )
    assert isinstance(env, PutFile)
    assert b"ETCD_INITIAL_CLUSTER_STATE=existing" in env.content
    assert f"ETCD_INITIAL_CLUSTER={JOINED_WITH}".encode() in env.content
    restart = next(s.action for s in plans[5].steps if "restart" in s.action.describe())
    assert isinstance(restart, Run) and "beef" in restart.triggers  # a new id restarts it


def test_a_leaver_is_removed_then_stopped_with_its_data_kept_then_forgotten(
    tmp_path: Path,
) -> None:
    ctx = with_facts(leaving=(("wind", "c0ffee"), ("gone.example", "abc")))
    plans = list(EtcdLayer().plans(ctx))
    assert [p.layer for p in plans][4:] == [
        "etcd: remove wind",
        "etcd: stop wind",
        "etcd: forget wind",
        "etcd: remove gone.example",
        "etcd: forget gone.example",  # not in the inventory: no node to reach
        "etcd: health",
    ]
    stop = plans[5].steps[-1].action
    assert isinstance(stop, Run) and stop.triggers == ("c0ffee",)
    assert 'mv "$d" "$d.removed-' in stop.argv[2] and "rm " not in stop.argv[2]


def test_a_dry_run_does_not_plan_from_a_record_it_did_not_just_write(tmp_path: Path) -> None:
    state = tmp_path / "state"
    record = MembershipRecord(
        state / RECORD_NAME, ["wind"], {"x": "1"}, {"wind": (JOINED_WITH, "beef")}
    )
    record.save()  # an earlier run's record, left behind
    dry = LayerContext(require_inventory(REFERENCE), REFERENCE, state, dry_run=True)
    dry.facts.gather([EtcdToken, EtcdChanges, EtcdJoined, EtcdVersions], dry)  # none asked
    plans = list(EtcdLayer().plans(dry))
    assert [p.layer for p in plans][-2:] == ["etcd: members", "etcd: health"]
    assert {s.target for s in plans[3].steps} == {"fohn", "chequita", "wind"}
    # ... and says what it assumed, once each (no token is kept in this state either).
    said = dry.facts.take_assumed()
    assert said[0].startswith("planned as if the cluster's token is sthlm-etcd ")
    assert "etcd: token makes it" in said[0]
    assert said[1].startswith("planned as if no member joins or leaves")
    assert "etcd: membership makes it" in said[1]
    # A real run plans from the record the membership step wrote.
    real = LayerContext(dry.inventory, REFERENCE, state)
    real.facts.gather([EtcdChanges, EtcdJoined], real)
    assert real.fact(EtcdChanges) == EtcdChanges(("wind",), (("x", "1"),))
    assert real.fact(EtcdJoined).of("wind") == (JOINED_WITH, "beef")


def test_a_changed_initial_cluster_rewrites_the_file_but_restarts_no_member(
    inventory: Inventory,
) -> None:
    fohn = inventory.server("fohn")
    before = render.member_files(inventory, fohn, "host", TOKEN)
    after = render.member_files(
        inventory, fohn, "host", TOKEN, joined_with=JOINED_WITH + ",x=https://x"
    )
    assert after.env != before.env  # the file is rewritten ...
    assert after.restart_digest == before.restart_digest  # ... and the member not restarted
    moved = render.member_files(
        inventory, fohn, "container", TOKEN, joined_with=JOINED_WITH + ",x=https://x"
    )
    assert moved.restart_digest != before.restart_digest  # a real setting still restarts it


@pytest.mark.parametrize("runtime", ["container", "host"])
def test_member_files_match_golden(inventory: Inventory, runtime: str) -> None:
    files = render.member_files(inventory, inventory.server("fohn"), runtime, TOKEN)
    assert_golden("etcd-fohn.env", files.env)
    assert_golden(f"etcd-member-fohn-{runtime}.service", files.unit)


def test_runtimes_differ_only_in_how_etcd_is_started(inventory: Inventory) -> None:
    fohn = inventory.server("fohn")
    host = render.member_files(inventory, fohn, "host", TOKEN).unit.splitlines()
    container = render.member_files(inventory, fohn, "container", TOKEN).unit.splitlines()
    differ = {line.split("=")[0] for line in set(host) ^ set(container)}
    assert differ == {"ExecStartPre", "ExecStart", "ExecStop"}
    assert (
        render.member_files(inventory, fohn, "host", TOKEN).env
        == render.member_files(inventory, fohn, "container", TOKEN).env
    )


def test_members_listen_on_the_address_labctl_reaches_them_or_on_etcd_network(
    inventory: Inventory, tmp_path: Path
) -> None:
    fohn = inventory.server("fohn")
    assert render.client_url(inventory, fohn) == "https://31.31.164.220:2379"
    assert render.initial_cluster(inventory) == (
        "fohn=https://31.31.164.220:2380,chequita=https://31.31.164.221:2380,"
        "wind=https://31.31.164.222:2380"
    )
    edited = tmp_path / "inventory.yaml"
    edited.write_text(
        REFERENCE.read_text().replace(
            "  etcd:\n    version: 3.4.23", "  etcd:\n    version: 3.4.23\n    network: storage"
        )
    )
    on_storage = require_inventory(edited)
    assert render.peer_url(on_storage, on_storage.server("fohn")) == "https://10.31.10.20:2380"


def test_the_container_runs_under_the_engine_the_os_ships(inventory: Inventory) -> None:
    fohn = inventory.server("fohn")
    assert render.container_engine(fohn) == "/usr/bin/docker"  # Flatcar
    assert render.image(inventory) == "quay.io/coreos/etcd:v3.4.23"


def test_config_digest_follows_the_members_files(inventory: Inventory) -> None:
    host = render.config_digest(inventory, "host", TOKEN)
    assert host != render.config_digest(inventory, "container", TOKEN)
    assert host == render.config_digest(inventory, "host", TOKEN)
    assert host != render.config_digest(inventory, "host", "sthlm-etcd")  # a new formation


def test_env_values_with_spaces_are_refused() -> None:
    with pytest.raises(ValueError, match="ETCD_NAME"):
        env_text({"ETCD_NAME": "two words"})


def test_restore_stops_everyone_before_anyone_starts(inventory: Inventory, tmp_path: Path) -> None:
    facts = Facts.of(EtcdToken(TOKEN, restore="abc-1"))  # what its token step recorded
    ctx = LayerContext(
        inventory, REFERENCE, tmp_path / "state", platform=SimPlatform(etcd="host"), facts=facts
    )
    token, members_plan, health = list(EtcdRestore(b"snapshot", "abc-1").plans(ctx))
    assert token.steps[0].action.as_dict()["name"] == "etcd.restore-token"
    starts = [s for s in members_plan.steps if s.id.startswith("start:")]
    assert [s.target for s in starts] == ["fohn", "chequita", "wind"]
    for start in starts:
        assert set(start.after) == {"restore:fohn", "restore:chequita", "restore:wind"}
    restore = next(s for s in members_plan.steps if s.id == "restore:wind")
    argv = restore.action.as_dict()["argv"]
    # The shipped script, every value one argument of it (nothing pasted into it).
    assert argv[:4] == ["sh", "-c", RESTORE, "labctl-etcd-restore"]
    assert argv[4:7] == ["/var/lib/etcd", TOKEN, "/var/lib/labctl/etcd-restore-abc-1.db"]
    assert argv[argv.index("--initial-cluster-token") + 1] == TOKEN
    assert 'mv "$d" "$d.before-restore-' in argv[2]
    assert "rm -rf" not in argv[2]  # the old data is moved aside, never deleted
    assert health.steps[0].action.as_dict()["name"] == "etcd.healthy"


def test_members_restart_one_at_a_time(inventory: Inventory, tmp_path: Path) -> None:
    ctx = LayerContext(inventory, REFERENCE, tmp_path / "state", facts=QUIET)
    members_plan = next(p for p in EtcdLayer().plans(ctx) if p.layer == "etcd: members")
    restarts = [s for s in members_plan.steps if is_restart(s.action)]
    assert [s.target for s in restarts] == ["fohn", "chequita", "wind"]
    assert [s.after for s in restarts] == [(), (restarts[0].id,), (restarts[1].id,)]
    others = [s for s in members_plan.steps if not is_restart(s.action)]
    assert all(s.after == () for s in others)  # files go everywhere at once
