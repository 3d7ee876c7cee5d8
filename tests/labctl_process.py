"""Running labctl as a user does: its real entry point, in a child process, no terminal."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

# Each labctl process run here, by its wall seconds: the suite's summary says how many
# and how long in all (tests/conftest.py), start-up included, which is what the suite
# pays again for every one (benchmarks/bench_suite_startup.py).
RUNS: list[float] = []


def run_labctl(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str | None] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``env`` adds variables; a None value removes one. A user error never shows a traceback."""
    environ: dict[str, str] = {**os.environ, "COLUMNS": "200"}
    for key, value in (env or {}).items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "labctl", *args],
            cwd=cwd,
            env=environ,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )
    finally:
        RUNS.append(time.monotonic() - started)
    assert "Traceback" not in done.stderr, done.stderr
    return done
