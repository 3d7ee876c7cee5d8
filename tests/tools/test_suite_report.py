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


def test_scripts_test_asks_for_the_slowest_phases_and_times_set_up() -> None:
    script = (ROOT / "scripts" / "test").read_text()
    assert "--durations=25" in script
    assert "export LABCTL_SETUP_SECONDS=" in script
