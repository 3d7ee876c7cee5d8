"""`labctl reset --all` wipes its servers at once; a reset of named servers, in turn.

A whole-lab reset has no quorum or data left to guard, so each server's own steps (its
wipe, then its power-off) run beside the other servers' (on the second lab the four
wipes in a row took 47 s). The report keeps the planned order, a server's steps keep
theirs, and a failure on one server stops that server's remaining steps and is the
reset's failure, while the others finish. Named servers stay one step after another:
each step's guard read the lab the earlier steps left.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import typer

from labctl.cli import reset_cmd
from labctl.cli.options import OutputFormat
from labctl.day2 import apply
from labctl.day2.retire import Retirement, Step
from labctl.errors import LabctlError
from labctl.inventory import require_inventory
from tests.conftest import REFERENCE

SERVERS = ("fohn", "chequita", "wind")
PAUSE = 0.3


def _retirement() -> Retirement:
    steps = tuple(
        Step(name, kind, name, f"{kind} {name}")
        for name in SERVERS
        for kind in ("wipe", "power-off")
    )
    return Retirement(servers=SERVERS, steps=steps)


def _run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, everything: bool, fail: str = ""
) -> tuple[dict[str, Any], list[tuple[str, str, float, float]], float]:
    """``_apply`` with each step a pause (``fail``: the step that raises instead): the
    JSON report, each step's (server, kind, start, end) and the whole time."""
    seen: list[tuple[str, str, float, float]] = []
    lock = threading.Lock()

    def do(self: apply.Reset, step: Step) -> None:
        start = time.monotonic()
        if step.sentence == fail:
            raise LabctlError("the node said no")
        time.sleep(PAUSE)
        with lock:
            seen.append((step.server, step.kind, start, time.monotonic()))

    monkeypatch.setattr(apply.Reset, "do", do)
    printed: list[str] = []
    monkeypatch.setattr(typer, "echo", lambda text, err=False: printed.append(text))
    inventory = require_inventory(REFERENCE)
    (tmp_path / "state").mkdir()
    began = time.monotonic()
    with contextlib.suppress(typer.Exit):  # a failed reset exits 1 after its report
        reset_cmd._apply(_retirement(), inventory, tmp_path, tmp_path / "state", everything,
                         OutputFormat.json)  # fmt: skip
    return json.loads(printed[-1]), seen, time.monotonic() - began


def test_reset_all_wipes_every_server_at_once_and_reports_in_the_planned_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    report, seen, took = _run(monkeypatch, tmp_path, everything=True)
    assert report["ok"] is True
    planned = [(name, kind) for name in SERVERS for kind in ("wipe", "power-off")]
    assert [(s["server"], s["kind"]) for s in report["done"]] == planned
    assert took < 3 * PAUSE + 0.5, took  # two steps a server, the servers side by side
    for name in SERVERS:  # a server's power-off after its own wipe
        (wipe,) = [s for s in seen if s[:2] == (name, "wipe")]
        (off,) = [s for s in seen if s[:2] == (name, "power-off")]
        assert off[2] >= wipe[3]


def test_named_servers_are_reset_one_step_after_another(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, seen, took = _run(monkeypatch, tmp_path, everything=False)
    assert took >= 6 * PAUSE, took
    ordered = sorted(seen, key=lambda s: s[2])
    assert all(a[3] <= b[2] for a, b in itertools.pairwise(ordered))


def test_a_failure_on_one_server_stops_its_steps_and_is_the_resets_while_the_others_finish(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    report, seen, _ = _run(monkeypatch, tmp_path, everything=True, fail="wipe chequita")
    assert report["ok"] is False
    assert report["failed"] == "wipe chequita: the node said no"
    assert {(s[0], s[1]) for s in seen} == {
        ("fohn", "wipe"),
        ("fohn", "power-off"),
        ("wind", "wipe"),
        ("wind", "power-off"),
    }
