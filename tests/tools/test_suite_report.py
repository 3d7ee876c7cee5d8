"""`./scripts/test` says where the suite's time went (issue 28).

pytest's own slowest phases (``--durations``, passed by scripts/test) name tests;
tests/conftest.py adds the ten slowest files, every phase of their tests summed, and
set-up's time as scripts/test measured it. Here a real pytest run over two quick unit
files must end with that table.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.tools
FILES = ("tests/unit/test_progress.py", "tests/unit/test_neterrors.py")


def test_the_summary_names_the_slowest_files_and_set_up_time() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *FILES],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "LABCTL_SETUP_SECONDS": "42"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = done.stdout.split("slowest 10 files (set-up, call and teardown summed)", 1)
    assert len(summary) == 2, done.stdout[-3000:]
    rows = summary[1].splitlines()
    for path in FILES:
        row = [line for line in rows if line.endswith(f"  {path}")]
        assert len(row) == 1 and re.match(r"\s*\d+\.\d s\s+\d+ tests  ", row[0]), rows
    assert any(re.match(r"\s*\d+\.\d s  in all, over 2 files$", line) for line in rows), rows
    assert "    42.0 s  scripts/setup.sh, before pytest" in rows, rows
    # Both files are in tests/unit: one row for the folder, its seconds the two files'.
    folder = [line for line in rows if line.endswith("  tests/unit/")]
    assert len(folder) == 1 and re.match(r"\s*\d+\.\d s\s+2 files  tests/unit/$", folder[0]), rows
    seconds = [float(line.split()[0]) for line in rows if line.endswith(FILES)]
    assert abs(float(folder[0].split()[0]) - sum(seconds)) <= 0.15, rows


def test_scripts_test_asks_for_the_slowest_phases_and_times_set_up() -> None:
    script = (ROOT / "scripts" / "test").read_text()
    assert "--durations=25" in script
    assert "export LABCTL_SETUP_SECONDS=" in script


def test_two_processes_give_one_summary_with_every_file() -> None:
    """scripts/test's `-n 2` (pytest-xdist): each worker's reports reach the one process
    that prints, so the table counts every test of both workers, once."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", *FILES],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    alone = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--co", *FILES],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    count = len([line for line in alone.stdout.splitlines() if "::" in line])
    assert re.search(rf"^{count} passed in ", done.stdout, re.M), done.stdout[-3000:]
    rows = done.stdout.split("slowest 10 files (set-up, call and teardown summed)", 1)[1]
    counted = sum(int(m) for m in re.findall(r"s\s+(\d+) tests  tests/", rows))
    assert counted == count, rows
