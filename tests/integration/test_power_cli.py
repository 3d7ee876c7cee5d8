"""`labctl power` against real peers: three ipmi_sim BMCs and two snmpd PDUs on loopback.

The reference inventory is used with its management network moved to
127.31.0.0/24, so every BMC and PDU address is a loopback address.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labctl.engine.executor import RunReport
from labctl.engine.layer import Layer, LayerContext
from labctl.engine.plan import Plan
from labctl.sim import bmc as sim_bmc
from labctl.sim import pdu_agent, pdu_record
from labctl.sim.process import ManagedProcess
from tests.conftest import REFERENCE
from tests.labctl_process import run_labctl

pytestmark = pytest.mark.integration
SECRETS = {
    "LABCTL_BMC_PASSWORD_FOHN": "fohn-bmc-pw",
    "LABCTL_BMC_PASSWORD_CHEQUITA": "chequita-bmc-pw",
    "LABCTL_BMC_PASSWORD_WIND": "wind-bmc-pw",
    "LABCTL_PDU_AUTH_KEY": "pdu-auth-key-1",
    "LABCTL_PDU_PRIV_KEY": "pdu-priv-key-1",
}
BMC = {"fohn": "127.31.0.11", "chequita": "127.31.0.12", "wind": "127.31.0.13"}


@dataclass
class Lab:
    inventory: Path
    pidfiles: dict[str, Path]
    marks: Path

    def node_up(self, name: str) -> bool:
        path = self.pidfiles[name]
        # A killed node may stay a zombie until PID 1 reaps it: that is off, as the BMC says.
        return path.exists() and ManagedProcess(int(path.read_text())).running()

    def labctl(self, *args: str, env: dict[str, str | None] | None = None) -> tuple[int, str]:
        """The real entry point, as a user runs it (no terminal on stdin)."""
        secrets: dict[str, str | None] = dict(SECRETS)
        if env is not None:
            cleared: dict[str, str | None] = {key: None for key in SECRETS}
            secrets = cleared | env
        done = run_labctl(*args, "-i", str(self.inventory), env=secrets)
        return done.returncode, done.stdout + done.stderr


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    text = REFERENCE.read_text().replace("10.31.0.", "127.31.0.")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(text)
    marks = tmp_path / "marks"
    marks.mkdir()
    pidfiles = {name: tmp_path / f"{name}.pid" for name in BMC}
    handles: list[sim_bmc.BmcHandle | pdu_agent.PduHandle] = []
    try:
        for name, address in BMC.items():
            pid = pidfiles[name]
            spec = sim_bmc.BmcSpec(
                name=name,
                address=address,
                username="labctl",
                password=SECRETS[f"LABCTL_BMC_PASSWORD_{name.upper()}"],
                state_dir=tmp_path / f"bmc-{name}",
                power_on=("sh", "-c", f"sleep 600 >/dev/null 2>&1 & echo $! > {pid}"),
                power_off=("sh", "-c", f"kill $(cat {pid}) 2>/dev/null; true"),
                status_pidfile=pid,
            )
            handles.append(sim_bmc.start(spec))
        for pdu, address in (("pdu1", "127.31.0.5"), ("pdu2", "127.31.0.6")):
            spec_pdu = pdu_agent.PduSpec(
                name=pdu,
                address=address,
                state_dir=tmp_path / pdu,
                # The reference inventory's model, answered from its vendor record.
                record=pdu_record.for_model("Digipower SWH-1023J-08N1", where=pdu).path,
                outlet_count=8,
                username="labctl",
                auth_key=SECRETS["LABCTL_PDU_AUTH_KEY"],
                priv_key=SECRETS["LABCTL_PDU_PRIV_KEY"],
                hooks={
                    1: {
                        "off": ("touch", str(marks / f"{pdu}-1-off")),
                        "on": ("touch", str(marks / f"{pdu}-1-on")),
                    }
                },
            )
            handles.append(pdu_agent.start(spec_pdu))
        yield Lab(inventory, pidfiles, marks)
    finally:
        for handle in handles:
            handle.stop()
        for pid in pidfiles.values():
            if pid.exists():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid.read_text()), signal.SIGKILL)


def test_status_on_off_with_json_and_table(lab: Lab) -> None:
    code, out = lab.labctl("power", "status", "--all", "-o", "json")
    assert code == 0
    report = json.loads(out)
    assert [(t["server"], t["after"]) for t in report["targets"]] == [
        ("fohn", "off"),
        ("chequita", "off"),
        ("wind", "off"),
    ]
    code, out = lab.labctl("power", "on", "--all", "--yes")
    assert code == 0, out
    assert all(lab.node_up(n) for n in BMC)
    assert "fohn" in out and "on" in out
    code, out = lab.labctl("power", "off", "wind")  # one server: no confirmation needed
    assert code == 0, out
    assert not lab.node_up("wind") and lab.node_up("fohn")


def test_quorum_guard_refuses_a_second_member_and_force_overrides(lab: Lab) -> None:
    assert lab.labctl("power", "on", "--all", "--yes")[0] == 0
    assert lab.labctl("power", "off", "wind")[0] == 0
    code, out = lab.labctl("power", "off", "fohn")
    assert code == 1
    assert "quorum" in out and "wind is already down" in out
    assert lab.node_up("fohn")  # nothing was done
    code, _ = lab.labctl("power", "off", "fohn", "--force")
    assert code == 0 and not lab.node_up("fohn")


def test_destructive_without_terminal_needs_yes(lab: Lab) -> None:
    code, out = lab.labctl("power", "cycle", "--role", "etcd")
    assert code == 2 and "--yes" in out


def test_cycle_via_pdu_cuts_both_outlets(lab: Lab) -> None:
    code, out = lab.labctl(
        "power", "cycle", "fohn", "--via", "pdu", "--yes", "--cycle-delay", "0.5"
    )
    assert code == 0, out
    for pdu in ("pdu1", "pdu2"):
        assert (lab.marks / f"{pdu}-1-off").exists() and (lab.marks / f"{pdu}-1-on").exists()


def test_bootdev_and_dry_run(lab: Lab) -> None:
    code, out = lab.labctl("power", "bootdev", "pxe", "fohn", "chequita")
    assert code == 0, out
    assert (Path(lab.inventory.parent / "bmc-fohn" / "bootdev")).read_text().strip() == "pxe"
    code, out = lab.labctl("power", "off", "--all", "--dry-run")
    assert code == 0 and "would power off fohn, chequita, wind" in out


def test_a_bmc_nobody_answers_for_is_a_sentence_with_the_raw_error_beside_it(lab: Lab) -> None:
    # wind's BMC moved to an address of its network where nothing listens: the kernel refuses.
    text = lab.inventory.read_text()
    lab.inventory.write_text(text.replace(f"{BMC['wind']}\n", "127.31.0.213\n"))
    code, out = lab.labctl("power", "status", "--all", "-o", "json")
    assert code == 1
    targets = {t["server"]: t for t in json.loads(out)["targets"]}
    assert targets["fohn"]["error"] is None and targets["fohn"]["error_detail"] is None
    assert targets["wind"]["error"] == (
        "wind BMC (127.31.0.213:623): power status: connection refused by 127.31.0.213:623: the "
        "host is there but nothing listens on that port (the BMC's IPMI service is not running, "
        "or the port is wrong)"
    )
    assert targets["wind"]["error_detail"] == "[Errno 111] Connection refused"
    code, out = lab.labctl("power", "bootdev", "pxe", "wind", "-o", "json")
    assert code == 1
    assert json.loads(out)["targets"][0]["error_detail"] == "[Errno 111] Connection refused"


def test_missing_secret_fails_before_any_packet(lab: Lab) -> None:
    env: dict[str, str | None] = {
        k: v for k, v in SECRETS.items() if k != "LABCTL_BMC_PASSWORD_CHEQUITA"
    }
    code, out = lab.labctl("power", "status", "--all", env=env)
    assert code == 1
    assert (
        "servers[1].bmc.password: environment variable LABCTL_BMC_PASSWORD_CHEQUITA is not set"
        in out
    )
    assert not (lab.inventory.parent / "bmc-fohn" / "chassis.log").exists()  # no BMC was asked


def _context(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LayerContext:
    from labctl.engine.layer import LayerContext
    from labctl.inventory import require_inventory

    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    return LayerContext(require_inventory(lab.inventory), lab.inventory, tmp_path / "state")


def _run(layer: Layer, ctx: LayerContext, dry_run: bool = False) -> RunReport:
    """One layer through the real runner, executor and the run's own appliers."""
    from labctl.engine.executor import Options
    from labctl.run import run_layers

    (outcome,) = run_layers([layer], ctx, Options(dry_run=dry_run))
    (report,) = outcome.reports
    return report


def test_power_layer_through_the_bmc_applier(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from labctl.engine.executor import Outcome
    from labctl.layers.power import PowerLayer

    ctx = _context(lab, tmp_path, monkeypatch)
    planned = _run(PowerLayer(), ctx, dry_run=True)
    assert {r.target: (r.outcome, r.reason) for r in planned.results} == {
        name: (Outcome.WOULD_CHANGE, "power is off") for name in BMC
    }
    assert not any(lab.node_up(n) for n in BMC)  # the dry run only read
    assert lab.labctl("power", "on", "fohn")[0] == 0
    applied = _run(PowerLayer(), ctx)
    assert applied.ok, [r.error for r in applied.results]
    assert {r.target: r.outcome for r in applied.results} == {
        "fohn": Outcome.UNCHANGED,
        "chequita": Outcome.CHANGED,
        "wind": Outcome.CHANGED,
    }
    assert all(lab.node_up(n) for n in BMC)
    assert _run(PowerLayer(), ctx).nothing_to_do


class PxeReinstall:
    """A layer as the os layer will be: boot wind from the network once, and cycle it."""

    name = "os"

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        from labctl.engine.actions import SetBootDevice, SetPower
        from labctl.engine.plan import Plan

        yield Plan.of("os: install", [SetBootDevice("wind", "pxe"), SetPower("wind", "cycle")])


def test_any_layer_reaches_the_bmc_applier_and_its_quorum_guard(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from labctl.engine.executor import Outcome

    ctx = _context(lab, tmp_path, monkeypatch)
    assert lab.labctl("power", "on", "--all", "--yes")[0] == 0
    before = lab.pidfiles["wind"].read_text()
    dry = _run(PxeReinstall(), ctx, dry_run=True)
    assert [(r.outcome, r.reason) for r in dry.results] == [
        (Outcome.WOULD_CHANGE, "boots from disk"),
        (Outcome.WOULD_CHANGE, "power is on; a cycle always acts"),
    ]
    assert lab.pidfiles["wind"].read_text() == before  # the dry run only read

    done = _run(PxeReinstall(), ctx)
    assert [r.outcome for r in done.results] == [Outcome.CHANGED, Outcome.CHANGED], [
        r.error for r in done.results
    ]
    assert (lab.inventory.parent / "bmc-wind" / "bootdev").read_text().strip() == "pxe"
    assert lab.node_up("wind") and lab.pidfiles["wind"].read_text() != before  # cycled

    # With chequita down, cycling wind would leave etcd one member of three.
    assert lab.labctl("power", "off", "chequita", "--force")[0] == 0
    cycled = lab.pidfiles["wind"].read_text()
    refused = _run(PxeReinstall(), ctx)
    assert [r.outcome for r in refused.results] == [Outcome.CHANGED, Outcome.FAILED]
    error = refused.results[1].error or ""
    assert "quorum" in error and "chequita is already down" in error, error
    assert lab.node_up("wind") and lab.pidfiles["wind"].read_text() == cycled  # not touched


def test_power_layer_missing_secret_fails_only_its_own_server(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from labctl.engine.executor import Outcome
    from labctl.layers.power import PowerLayer

    ctx = _context(lab, tmp_path, monkeypatch)
    monkeypatch.delenv("LABCTL_BMC_PASSWORD_CHEQUITA")
    results = {r.target: r for r in _run(PowerLayer(), ctx).results}
    assert results["chequita"].outcome is Outcome.FAILED
    assert "LABCTL_BMC_PASSWORD_CHEQUITA is not set" in (results["chequita"].error or "")
    assert results["fohn"].outcome is Outcome.CHANGED and results["wind"].outcome is Outcome.CHANGED
    assert lab.node_up("fohn") and lab.node_up("wind") and not lab.node_up("chequita")
