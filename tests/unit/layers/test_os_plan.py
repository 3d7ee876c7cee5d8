"""The os layer's plans from a survey, against a reviewed golden, and its decisions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from labctl.engine.facts import Facts
from labctl.engine.layer import LayerContext
from labctl.inventory import require_inventory
from labctl.inventory.model import Inventory
from labctl.layers.os import OsLayer
from labctl.os import survey
from labctl.os.survey import Observation
from tests.conftest import REFERENCE, assert_golden


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return require_inventory(REFERENCE)


INSTALLED = Observation("fohn", True, None, "flatcar", "3975.2.0")
NEW = Observation("chequita", False, "connection refused", power="off")
WRONG_OS = Observation("wind", True, None, "debian", "12", power="on")


def plans(
    inventory: Inventory, state: Path, layer: OsLayer, *seen: Observation
) -> list[dict[str, Any]]:
    ctx = LayerContext(inventory, REFERENCE, state, facts=Facts.of(survey.OsSurvey(seen)))
    return [p.as_dict() for p in layer.plans(ctx)]


def test_plan_from_a_survey_matches_golden(inventory: Inventory, tmp_path: Path) -> None:
    got = plans(inventory, tmp_path, OsLayer(frozenset({"wind"})), INSTALLED, NEW, WRONG_OS)
    assert [p["layer"] for p in got] == [
        "os: survey",
        "os: boot service",
        "os: install",
        "os: boot service stop",
    ]
    install = got[2]["targets"]
    assert set(install) == {"chequita", "wind"}  # fohn is installed: left alone
    power = {
        t: next(s for s in steps if s["kind"] == "set-power")["state"]
        for t, steps in install.items()
    }
    assert power == {"chequita": "on", "wind": "cycle"}  # an up server goes through the guard
    assert got[2]["forgets"] == ["chequita", "wind"]  # installed afresh: journal forgotten
    assert_golden("plan-os.json", json.dumps(got, indent=2) + "\n")


def test_installed_lab_plans_nothing_after_the_survey(inventory: Inventory, tmp_path: Path) -> None:
    seen = [Observation(s.name, True, None, "flatcar", "1") for s in inventory.servers]
    got = plans(inventory, tmp_path, OsLayer(), *seen)
    assert [p["layer"] for p in got] == ["os: survey"]


def test_a_data_node_that_was_installed_is_refused_without_the_flag(
    inventory: Inventory, tmp_path: Path
) -> None:
    got = plans(inventory, tmp_path, OsLayer(), INSTALLED, NEW, WRONG_OS)
    install = got[2]["targets"]
    (refusal,) = install["wind"]
    assert (refusal["name"], refusal["subject"]) == ("os.refuse", "wind")
    assert "labctl os install --reinstall wind" in refusal["detail"]
    assert "runs debian, not flatcar" in refusal["detail"]
    assert next(s["name"] for s in install["chequita"] if s["kind"] == "local") == "os.arm"


def test_the_refusal_step_says_why_from_the_survey_fact_not_its_file(
    inventory: Inventory, tmp_path: Path
) -> None:
    """The survey file's one reader is the fact's gatherer: the refusal reads the fact."""
    from labctl.errors import LabctlError
    from labctl.os.work import RefuseWork

    ctx = LayerContext(
        inventory, REFERENCE, tmp_path, facts=Facts.of(survey.OsSurvey((INSTALLED, WRONG_OS)))
    )
    assert not survey.survey_path(tmp_path).exists()
    with pytest.raises(LabctlError, match="wind: answers SSH but runs debian, not flatcar"):
        RefuseWork("wind").apply(ctx)


def test_decisions(inventory: Inventory) -> None:
    decide = survey.decide_one
    fohn = inventory.server("fohn")
    assert decide(inventory, fohn, INSTALLED).action == survey.KEEP
    # Never installed and silent: a new machine, installed without asking.
    new = Observation("fohn", False, "timed out")
    assert decide(inventory, fohn, new).action == survey.INSTALL
    # Silent but labctl installed it before: it may hold data.
    before = Observation("fohn", False, "timed out", installed_before=True)
    assert decide(inventory, fohn, before).action == survey.REFUSE
    assert decide(inventory, fohn, before, {"fohn"}).action == survey.REINSTALL


def test_os_version_is_checked_when_the_inventory_names_it(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        REFERENCE.read_text().replace(
            "os: {distribution: flatcar, channel: alpha}",
            "os: {distribution: flatcar, channel: alpha, version: 4000.0.0}",
        )
    )
    inventory = require_inventory(path)
    wind = inventory.server("wind")
    old = Observation("wind", True, None, "flatcar", "3975.2.0")
    decision = survey.decide_one(inventory, wind, old)
    assert decision.action == survey.REFUSE and "not 4000.0.0" in decision.reason
    assert (
        survey.decide_one(
            inventory, wind, Observation("wind", True, None, "flatcar", "4000.0.0")
        ).action
        == survey.KEEP
    )


def test_os_release_parsing() -> None:
    text = 'NAME="Flatcar Container Linux by Kinvolk"\nID=flatcar\nVERSION_ID=3975.2.0\n# x\n'
    assert survey.os_release(text) == {
        "NAME": "Flatcar Container Linux by Kinvolk",
        "ID": "flatcar",
        "VERSION_ID": "3975.2.0",
    }


def test_the_survey_fact_is_gathered_from_what_the_survey_wrote(
    inventory: Inventory, tmp_path: Path
) -> None:
    survey.save(tmp_path, [INSTALLED, NEW, WRONG_OS])
    ctx = LayerContext(inventory, REFERENCE, tmp_path)
    assert survey.OsSurvey.gather(ctx) == survey.OsSurvey((INSTALLED, NEW, WRONG_OS))
    assert survey.OsSurvey.gather(LayerContext(inventory, REFERENCE, tmp_path / "none")) == (
        survey.OsSurvey()
    )


def test_a_powered_on_server_that_showed_an_os_before_is_waited_for_not_decided() -> None:
    """Before, a server the power layer had just turned on was decided at once: a reset
    server (its OS kept) was taken for a new machine to install, and one labctl had
    installed was refused as a reinstall. Now the survey waits for it to boot."""
    off_air = Observation("cyd", False, "timed out", power="on")
    assert not survey.booting(off_air)  # a new machine: decided at once, as before
    assert survey.booting(Observation("cyd", False, "timed out", power="on", kept_by_reset=True))
    assert survey.booting(Observation("cyd", False, "timed out", power="on", installed_before=True))
    # Off (nothing turned it on), or answering: nothing to wait for.
    assert not survey.booting(
        Observation("cyd", False, "timed out", power="off", kept_by_reset=True)
    )
    assert not survey.booting(
        Observation("cyd", True, None, "fedora-coreos", "1", power="on", kept_by_reset=True)
    )


def test_a_reset_server_still_powered_off_is_kept_not_installed(inventory: Inventory) -> None:
    """``labctl plan`` powers nothing on: it saw cyd off and said "install", while the
    run's power layer turns it on and the survey waits for the OS reset kept."""
    fohn = inventory.server("fohn")
    off = Observation("fohn", False, "timed out", power="off", kept_by_reset=True)
    decided = survey.decide_one(inventory, fohn, off)
    assert (decided.action, decided.installs) == (survey.KEEP, False)
    assert "reset kept its OS" in decided.reason
    # Named for a reinstall, it is reinstalled as before; never reset, it is new.
    assert survey.decide_one(inventory, fohn, off, {"fohn"}).installs
    new = Observation("fohn", False, "timed out", power="off")
    assert survey.decide_one(inventory, fohn, new).action == survey.INSTALL


def test_the_reset_record_is_beside_the_install_record(tmp_path: Path) -> None:
    assert survey.reset_record(tmp_path, "cyd") == tmp_path / "os" / "reset" / "cyd.json"
    assert (
        survey.reset_record(tmp_path, "cyd").parent
        != survey.installed_record(tmp_path, "cyd").parent
    )


def test_plan_says_the_boot_assets_are_missing_before_a_run_would_need_them(
    inventory: Inventory, tmp_path: Path
) -> None:
    """Before, a dry run said only "the boot service is not running"; the run found the
    assets missing after the power layer had powered servers on."""
    from labctl.os.work import BootStartWork

    ctx = LayerContext(inventory, tmp_path / "inventory.yaml", tmp_path / "state")
    said = BootStartWork().observe(ctx) or ""
    assert "cannot start" in said and "run labctl boot fetch" in said, said
