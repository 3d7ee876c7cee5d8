"""labctl's PDU profiles against device records written from the vendors' MIBs.

The records (tests/peers/pdu/) are what the simulated PDUs answer from; this
checks, without a network, that every OID and value a profile uses is in its
record with the meaning the profile gives it, so a wrong profile fails here
before it fails on a rack. The planted cases prove the check can fail.
"""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path

import pytest

from labctl.drivers.pdu_profiles import PROFILES, PduProfile
from labctl.errors import LabctlError
from labctl.sim import pdu_record
from labctl.sim.pdu_outlets import Outlets
from labctl.sim.pdu_record import DeviceRecord

# Which real unit each profile is meant for: the record of that model.
RECORD_FOR_PROFILE = {
    "apc-rpdu": "apc-rpdu-ap7920.yaml",
    "apc-rpdu2": "apc-rpdu2-ap8941.yaml",
    "digipower-swh": "digipower-swh-1023j-08n1.yaml",
}
SIM = Path(pdu_record.__file__).parent


def record(name: str) -> DeviceRecord:
    return pdu_record.load(pdu_record.RECORDS_DIR / RECORD_FOR_PROFILE[name])


def check(profile: PduProfile, rec: DeviceRecord) -> list[str]:
    """Every way the profile disagrees with the record (empty: none)."""
    problems: list[str] = []
    if profile.kind == "per-outlet":
        for which in ("state_oid", "control_oid"):
            template: str = getattr(profile, which)
            if not template.endswith(".{outlet}"):
                problems.append(f"{which} {template} is not indexed by the outlet")
        state = rec.find(profile.state_oid.removesuffix(".{outlet}"))
        control = rec.find(profile.control_oid.removesuffix(".{outlet}"))
        if state is None or state.index != "outlet" or not state.reads:
            problems.append(f"state_oid {profile.state_oid}: no outlet state column there")
        else:
            if state.reads.get(profile.state_on) != "on":
                problems.append(f"{state.name} {profile.state_on} does not mean on")
            if state.reads.get(profile.state_off) != "off":
                problems.append(f"{state.name} {profile.state_off} does not mean off")
            for value, _ in profile.fault_states:
                if value not in state.values or value in state.reads:
                    problems.append(f"{state.name} has no fault value {value}")
        if control is None or control.index != "outlet":
            problems.append(f"control_oid {profile.control_oid}: no outlet column there")
        elif control.access != "read-write":
            problems.append(f"{control.name} is {control.access}")
        else:
            wanted = {"on": profile.on_value, "off": profile.off_value}
            if profile.reboot_value is not None:
                wanted["reboot"] = profile.reboot_value
            for action, value in wanted.items():
                if control.writes.get(value) != action:
                    meaning = control.values.get(value, "not in the MIB")
                    problems.append(f"{control.name} {value} ({meaning}) is not {action}")
        return problems
    # status-string: one scalar DisplayString, read and written whole.
    for which in ("state_oid", "control_oid"):
        oid: str = getattr(profile, which)
        obj = rec.find(oid.removesuffix(".0")) if oid.endswith(".0") else None
        if obj is None or obj.status_string is None or obj.index is not None:
            problems.append(f"{which} {oid}: no status string scalar instance there")
            continue
        s = obj.status_string
        if which == "control_oid" and obj.access != "read-write":
            problems.append(f"{obj.name} is {obj.access}")
        if s.separator != ",":  # labctl's driver splits and joins on commas
            problems.append(f"{obj.name} separates outlets with {s.separator!r}")
        pairs = {"on": (profile.state_on, profile.on_value)}
        pairs["off"] = (profile.state_off, profile.off_value)
        for meaning, values in pairs.items():
            for value in values:
                if s.tokens.get(str(value)) != meaning:
                    problems.append(f"{obj.name} token {value} does not mean {meaning}")
        for value, _ in profile.fault_states:
            if s.tokens.get(str(value)) in (None, "on", "off"):
                problems.append(f"{obj.name} has no fault token {value}")
    return problems


def test_every_profile_has_a_record() -> None:
    assert set(PROFILES) == set(RECORD_FOR_PROFILE)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profile_matches_the_vendor_record(name: str) -> None:
    assert check(PROFILES[name], record(name)) == []


WRONG = {
    "rpdu2 numbered like rpdu": ("apc-rpdu2", {"state_on": 1, "state_off": 2}),
    "rpdu2 reboot is outletUnknown": ("apc-rpdu2", {"reboot_value": 4}),
    "rpdu2 control in the rpdu branch": (
        "apc-rpdu2",
        {"control_oid": "1.3.6.1.4.1.318.1.1.12.3.3.1.1.4.{outlet}"},
    ),
    "rpdu state is the phase column": (
        "apc-rpdu",
        {"state_oid": "1.3.6.1.4.1.318.1.1.12.3.5.1.1.3.{outlet}"},
    ),
    "rpdu writes the read-only status": (
        "apc-rpdu",
        {"control_oid": "1.3.6.1.4.1.318.1.1.12.3.5.1.1.4.{outlet}"},
    ),
    "rpdu on is delayedOn": ("apc-rpdu", {"on_value": 4}),
    "rpdu state numbered like rpdu2": ("apc-rpdu", {"state_on": 2, "state_off": 1}),
    "digipower off is 2": ("digipower-swh", {"off_value": 2, "state_off": 2}),
    "digipower without the .0 instance": (
        "digipower-swh",
        {"state_oid": "1.3.6.1.4.1.17420.1.2.9.1.13"},
    ),
    "digipower writes devVersion": ("digipower-swh", {"control_oid": "1.3.6.1.4.1.17420.1.2.4.0"}),
    "digipower unknown fault": ("digipower-swh", {"fault_states": ((-3, "melted"),)}),
    "digipower second PDU's string": (
        "digipower-swh",
        {"state_oid": "1.3.6.1.4.1.17420.1.2.9.2.13.0"},
    ),
}


@pytest.mark.parametrize("case", sorted(WRONG))
def test_a_wrong_profile_fails_the_check(case: str) -> None:
    name, changes = WRONG[case]
    wrong = replace(PROFILES[name], **changes)  # type: ignore[arg-type]
    assert check(wrong, record(name)) != []


def test_no_simulated_pdu_code_reads_the_profiles() -> None:
    # The agent must answer from the vendor record; reading the profiles would make
    # the simulated PDU agree with labctl by construction.
    for path in SIM.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            assert not any(n.endswith("pdu_profiles") for n in names), path.name


def test_records_say_where_they_come_from() -> None:
    for path in sorted(pdu_record.RECORDS_DIR.glob("*.yaml")):
        text = path.read_text()
        rec = pdu_record.load(path)
        # One "MIB:" comment per object at least: each entry names its source.
        assert text.count("# MIB:") >= len(rec.objects), path.name
        assert rec.sys_descr and rec.sys_object_id.startswith(rec.enterprise)


def test_the_inventory_model_picks_the_record() -> None:
    got = pdu_record.for_model("Digipower SWH-1023J-08N1", where="PDU pdu1")
    assert got.path.name == "digipower-swh-1023j-08n1.yaml"
    assert pdu_record.for_model("APC AP8941", where="x").model == "AP8941"
    with pytest.raises(LabctlError, match=r"PDU pdu9: no device record .* 'Acme 3000'"):
        pdu_record.for_model("Acme 3000", where="PDU pdu9")


def outlets(tmp_path: Path, profile: str, count: int = 4) -> Outlets:
    rec = record(profile)
    config = {"outlet_count": count, "record": str(rec.path), "reboot_delay": 0.01}
    (tmp_path / "pdu.json").write_text(json.dumps(config))
    return Outlets(tmp_path)


def test_apc_semantics_as_the_mib_states_them(tmp_path: Path) -> None:
    unit = outlets(tmp_path, "apc-rpdu2")
    control = (1, 3, 6, 1, 4, 1, 318, 1, 1, 26, 9, 2, 4, 1, 5, 2)
    state = (1, 3, 6, 1, 4, 1, 318, 1, 1, 26, 9, 2, 3, 1, 5, 2)
    assert unit.table()[state] == ("integer", "2")  # on (2)
    assert unit.set(control, "integer", "2") == "DONE"  # immediateOff
    assert unit.table()[state] == ("integer", "1")  # off (1)
    assert unit.table()[control] == ("integer", "2")  # reads back immediateOff
    assert unit.set(control, "integer", "5") == "inconsistent-value"  # delayedOn: not simulated
    assert unit.set(control, "integer", "9") == "wrong-value"  # not in the MIB
    assert unit.set(state, "integer", "2") == "not-writable"
    assert unit.set(control, "string", "1") == "wrong-type"


def test_digipower_status_string_as_the_mib_states_it(tmp_path: Path) -> None:
    unit = outlets(tmp_path, "digipower-swh", count=2)
    oid = (1, 3, 6, 1, 4, 1, 17420, 1, 2, 9, 1, 13, 0)
    assert unit.table()[oid] == ("string", "1,1,-1,-1,-1,-1,-1,-1")
    assert unit.set(oid, "string", "0,1,-1,-1,-1,-1,-1,-1") == "DONE"
    assert unit.table()[oid] == ("string", "0,1,-1,-1,-1,-1,-1,-1")
    assert unit.set(oid, "string", "0,1") == "wrong-value"  # every position, always
    assert unit.set(oid, "string", "0,1,1,-1,-1,-1,-1,-1") == "wrong-value"  # no outlet 3
    assert unit.set(oid, "integer", "1") == "wrong-type"


def test_sim_up_refuses_a_pdu_model_without_a_record_before_making_anything(
    tmp_path: Path,
) -> None:
    from labctl.inventory import require_inventory
    from labctl.sim import lab
    from tests.conftest import REFERENCE

    text = REFERENCE.read_text().replace("model: Digipower SWH-1023J-08N1", "model: Acme 3000", 1)
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    state = tmp_path / "state"
    with pytest.raises(LabctlError, match=r"PDU pdu1: no device record .* 'Acme 3000'"):
        lab.up(require_inventory(path), path, state)
    assert not state.exists()  # nothing was made
