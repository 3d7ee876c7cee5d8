"""The rolling etcd upgrade's order and plan (``etcd/upgrade.py``), from live versions.

The reference lab's members are fohn, chequita and wind (inventory order) at 3.4.23.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from labctl.engine.actions import LocalStep, Run
from labctl.engine.facts import Facts
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan
from labctl.etcd import binaries, upgrade
from labctl.etcd.membership import EtcdChanges, EtcdJoined
from labctl.etcd.token import EtcdToken
from labctl.etcd.upgrade import EtcdVersions
from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from labctl.labdiff.diff import version_changes
from labctl.labdiff.running import Observed
from labctl.labdiff.skew import Running, Wanted
from labctl.layers.etcd import EtcdLayer, is_restart
from labctl.render import etcd as render
from labctl.sim.platform import SimPlatform
from tests.conftest import REFERENCE

OLD, NEW = "3.4.23", "3.5.21"


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return at(require_inventory(REFERENCE), NEW)


def at(inventory: Inventory, version: str) -> Inventory:
    etcd = dataclasses.replace(inventory.cluster.etcd, version=version)
    return dataclasses.replace(inventory, cluster=dataclasses.replace(inventory.cluster, etcd=etcd))


def test_followers_go_first_in_inventory_order_and_the_leader_last(inventory: Inventory) -> None:
    running = {"fohn": OLD, "chequita": OLD, "wind": OLD}
    assert upgrade.order(inventory, running, "fohn") == ["chequita", "wind", "fohn"]
    assert upgrade.order(inventory, running, "chequita") == ["fohn", "wind", "chequita"]
    assert upgrade.order(inventory, running, "") == ["fohn", "chequita", "wind"]


def test_members_at_the_new_version_are_left_out_and_checked_first_on_resume(
    inventory: Inventory,
) -> None:
    # A run killed after chequita's restart: it is skipped (read live), the rest follow.
    running = {"fohn": OLD, "chequita": NEW, "wind": OLD}
    assert upgrade.order(inventory, running, "fohn") == ["wind", "fohn"]
    assert upgrade.chain(inventory, running, "fohn") == ["chequita", "wind", "fohn"]
    # A member that did not answer is not known to be upgraded: it stays in the order.
    running = {"fohn": OLD, "chequita": NEW, "wind": ""}
    assert upgrade.order(inventory, running, "chequita") == ["fohn", "wind"]


def test_no_upgrade_when_every_member_that_answers_runs_the_wanted_version(
    inventory: Inventory,
) -> None:
    assert upgrade.order(inventory, {"fohn": NEW, "chequita": NEW, "wind": NEW}, "wind") == []
    assert upgrade.order(inventory, {"fohn": NEW, "chequita": "", "wind": NEW}, "wind") == []
    assert upgrade.order(inventory, {}, "") == []  # nothing asked (a first bootstrap)
    assert upgrade.chain(inventory, {"fohn": NEW}, "fohn") == []


def test_the_wanted_version_is_the_inventorys_or_its_image_tag(inventory: Inventory) -> None:
    assert upgrade.wanted_version(inventory) == NEW
    etcd = dataclasses.replace(inventory.cluster.etcd, version=None, image="mirror/etcd:v3.5.9")
    tagged = dataclasses.replace(
        inventory, cluster=dataclasses.replace(inventory.cluster, etcd=etcd)
    )
    assert upgrade.wanted_version(tagged) == "3.5.9"
    assert upgrade.cluster_version("3.5.21") == "3.5.0"


def members_plan(inventory: Inventory, tmp_path: Path, versions: EtcdVersions) -> Plan:
    facts = Facts.of(EtcdToken("sthlm-etcd"), EtcdChanges(), EtcdJoined(), versions)
    ctx = LayerContext(inventory, REFERENCE, tmp_path / "state", facts=facts)
    return next(p for p in EtcdLayer().plans(ctx) if p.layer == "etcd: members")


def test_the_members_plan_restarts_one_member_at_a_time_between_its_guard_and_its_check(
    inventory: Inventory, tmp_path: Path
) -> None:
    running = EtcdVersions((("fohn", OLD), ("chequita", OLD), ("wind", OLD)), leader="fohn")
    plan = members_plan(inventory, tmp_path, running)
    steps = {s.id: s for s in plan.steps}
    local = [s.action for s in plan.steps if isinstance(s.action, LocalStep)]
    assert [(a.name, a.subject) for a in local] == [
        ("etcd.upgrade", "chequita"),
        ("etcd.upgraded", "chequita"),
        ("etcd.upgrade", "wind"),
        ("etcd.upgraded", "wind"),
        ("etcd.upgrade", "fohn"),
        ("etcd.upgraded", "fohn"),
        ("etcd.cluster-version", ""),
    ]
    restarts = {s.target: s for s in plan.steps if is_restart(s.action)}
    assert set(restarts) == {"fohn", "chequita", "wind"}
    previous: tuple[str, ...] = ()
    for name in ("chequita", "wind", "fohn"):
        guard = steps[f"local:etcd.upgrade:{name}"]
        check = steps[f"local:etcd.upgraded:{name}"]
        assert guard.after == previous  # the member before is back and caught up
        assert restarts[name].after == (guard.id,)  # only once its guard has passed
        assert check.after == (restarts[name].id,)
        previous = (check.id,)
    assert steps["local:etcd.cluster-version"].after == previous
    # Nothing else on a node waits: files are written at once, only restarts take turns.
    others = [s for s in plan.steps if not isinstance(s.action, LocalStep) and s.after]
    assert {s.id for s in others} == {s.id for s in restarts.values()}


def test_without_a_version_change_the_plan_is_the_rolling_restart_as_before(
    inventory: Inventory, tmp_path: Path
) -> None:
    running = EtcdVersions((("fohn", NEW), ("chequita", NEW), ("wind", NEW)), leader="wind")
    plan = members_plan(inventory, tmp_path, running)
    assert not [s for s in plan.steps if isinstance(s.action, LocalStep)]
    assert members_plan(inventory, tmp_path, EtcdVersions()).steps == plan.steps


def test_the_restart_names_the_version_and_the_files_it_skips_on(
    inventory: Inventory, tmp_path: Path
) -> None:
    """A member already at the version, started after its files, is not restarted again
    (the script reads both live: ``data/scripts/etcd-restart.sh``); on the host runtime,
    whose files name no version, the version itself triggers the restart."""
    plan = members_plan(inventory, tmp_path, EtcdVersions())
    restart = next(s.action for s in plan.steps if is_restart(s.action) and s.target == "fohn")
    assert isinstance(restart, Run)
    assert restart.argv[-3:] == (
        NEW,
        "/etc/etcd/etcd.env",
        "/etc/systemd/system/etcd-member.service",
    )
    facts = Facts.of(EtcdToken("sthlm-etcd"), EtcdChanges(), EtcdJoined(), EtcdVersions())
    host = LayerContext(inventory, REFERENCE, tmp_path / "s", facts=facts,
                        platform=SimPlatform(etcd="host"))  # fmt: skip
    plan = next(p for p in EtcdLayer().plans(host) if p.layer == "etcd: members")
    restart = next(s.action for s in plan.steps if is_restart(s.action) and s.target == "fohn")
    assert isinstance(restart, Run) and NEW in restart.triggers


def test_plan_shows_the_members_order_with_the_leader_last(inventory: Inventory) -> None:
    running = Running(etcd={"fohn": OLD, "chequita": OLD, "wind": OLD}, etcd_leader="chequita")
    (change,) = version_changes(Wanted(etcd=NEW), Observed(running=running), inventory)
    assert change.change == "upgrade"
    assert change.order == (("fohn",), ("wind",), ("chequita",))
    assert change.as_dict()["order"] == [["fohn"], ["wind"], ["chequita"]]
    assert "member by member: fohn, then wind, then chequita" in change.line()


def test_on_the_host_runtime_the_new_versions_etcd_is_put_on_every_member_before_any_restart(
    inventory: Inventory, tmp_path: Path
) -> None:
    """Before, the host runtime's unit ran the OS's /usr/bin/etcd whatever the version,
    and nothing put the new binary on the nodes: the upgrade restarted each member onto
    the old one. Now the unit runs labctl's build of the version from its own folder,
    and a plan before the members' sends it there."""
    running = EtcdVersions((("fohn", OLD), ("chequita", OLD), ("wind", OLD)), leader="fohn")
    facts = Facts.of(EtcdToken("sthlm-etcd"), EtcdChanges(), EtcdJoined(), running)
    host = LayerContext(inventory, REFERENCE, tmp_path / "s", facts=facts,
                        platform=SimPlatform(etcd="host"))  # fmt: skip
    plans = [p.layer for p in EtcdLayer().plans(host)]
    assert plans.index("etcd: binaries") < plans.index("etcd: members"), plans
    plan = next(p for p in EtcdLayer().plans(host) if p.layer == "etcd: binaries")
    (step,) = [s.action for s in plan.steps]
    assert isinstance(step, LocalStep) and step.name == binaries.BINARIES
    assert f"in /opt/labctl/etcd/v{NEW} on fohn, chequita, wind" in step.detail
    unit = render.member_files(inventory, inventory.server("fohn"), "host", "sthlm-etcd").unit
    assert f"ExecStart=/opt/labctl/etcd/v{NEW}/etcd\n" in unit, unit

    # At the default version (the OS's etcd), on the container runtime: as before.
    assert (
        "ExecStart=/usr/bin/etcd\n"
        in render.member_files(at(inventory, OLD), inventory.server("fohn"), "host", "t").unit
    )
    old = dataclasses.replace(host, inventory=at(inventory, OLD))
    assert "etcd: binaries" not in [p.layer for p in EtcdLayer().plans(old)]
    container = dataclasses.replace(host, platform=SimPlatform(etcd="container"))
    assert "etcd: binaries" not in [p.layer for p in EtcdLayer().plans(container)]


def test_what_a_node_lacks_of_the_version_is_read_from_its_answer() -> None:
    want = NEW
    assert binaries.stale(f"etcd {NEW}\netcdctl {NEW}\n", want) == {}
    assert binaries.stale(f"etcd {OLD}\netcdctl -\n", want) == {
        "etcd": OLD,
        "etcdctl": "missing",
    }
    assert binaries.stale("etcd ?\n", want) == {"etcd": "unreadable", "etcdctl": "missing"}
    assert binaries.describe({"etcd": OLD}, want) == f"etcd is {OLD}, not {NEW}"
