"""Timing whole commands, as a user waits for them."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path


def median_wall(
    argv: list[str], runs: int, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> float:
    """Median wall time of ``runs`` runs after one warm-up; a failing run aborts."""
    subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv[:6])} exited {done.returncode}: {done.stdout[-400:]}")
    return statistics.median(times)
