"""What the suite does so its thousands of labctl processes start quickly.

Two things, both checked here without a lab: labctl is byte-compiled before any test
runs (tests/conftest.py; on machines with PYTHONDONTWRITEBYTECODE=1 every process
compiled its modules from source), and an end-to-end test's ``Lab.env`` asks
`labctl sim env` once per lab record, not before every labctl the test runs
(tests/e2e/conftest.py). benchmarks/bench_suite_startup.py times both.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import SECRETS, Lab


def test_every_labctl_module_is_byte_compiled_for_its_current_source() -> None:
    stale = []
    for source in sorted((ROOT / "labctl").rglob("*.py")):
        cached = Path(importlib.util.cache_from_source(str(source)))
        # A timestamp .pyc: magic, flags, the source's mtime and size (PEP 552).
        header = cached.read_bytes()[:16] if cached.exists() else b""
        mtime = int(source.stat().st_mtime) & 0xFFFFFFFF
        fresh = (
            header[:4] == importlib.util.MAGIC_NUMBER
            and int.from_bytes(header[8:12], "little") == mtime
            and int.from_bytes(header[12:16], "little") == source.stat().st_size & 0xFFFFFFFF
        )
        if not fresh:
            stale.append(str(source.relative_to(ROOT)))
    assert stale == [], f"{len(stale)} labctl modules not byte-compiled: {stale[:5]}"


def _recorded_lab(folder: Path, runtimes: list[str]) -> Lab:
    """A lab's working directory as `sim up` leaves its record (what `sim env` reads)."""
    state = folder / ".labctl" / "sim"
    state.mkdir(parents=True, exist_ok=True)
    record = {"engine": {"runtimes": runtimes}, "plan": {"fabric": "lab-fabric"}}
    (state / "sim.json").write_text(json.dumps(record))
    return Lab(folder)


def test_lab_env_asks_sim_env_once_per_record_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = _recorded_lab(tmp_path, ["ceph", "etcd", "monitoring"])
    asked: list[tuple[str, ...]] = []
    real = lab.labctl

    def counted(*args: str) -> subprocess.CompletedProcess[str]:
        asked.append(args)
        return real(*args)

    monkeypatch.setattr(lab, "labctl", counted)
    first = lab.env()
    assert first["LABCTL_CONTAINER_ENGINE"] == "podman" and "LABCTL_ETCD_RUNTIME" not in first
    assert first["LABCTL_CA_PASSPHRASE"] == "e2e-ca-passphrase"
    assert SECRETS.items() <= first.items()
    assert [lab.env() for _ in range(3)] == [first] * 3
    assert asked == [("sim", "env")]

    # `sim up` rewrote the record (no etcd container now): asked again, a new answer.
    _recorded_lab(tmp_path, ["ceph", "monitoring"])
    second = lab.env()
    assert second["LABCTL_ETCD_RUNTIME"] == "host"
    assert len(asked) == 2

    # Any variable a test sets may be one `sim env` reads: asked again. (One it does
    # not read, so the answer is the same: LABCTL_CALICO_NODE, once used here, now
    # changes the answer, since calico-node is on by default.)
    monkeypatch.setenv("LABCTL_SUITE_STARTUP_PROBE", "1")
    assert lab.env() == second
    assert len(asked) == 3
    assert lab.env() == second
    assert len(asked) == 3
