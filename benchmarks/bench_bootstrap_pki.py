"""Time bootstrap's pki step on the simulated reference lab: first run, then a converged re-run.

Usage (root): python benchmarks/bench_bootstrap_pki.py [--runs 5]

Target (issue 4): the converged re-run touches nothing and takes under 2 s.
Brings the simulated lab up in a temporary directory and takes it down after.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sim import SECRETS

ROOT = Path(__file__).resolve().parents[1]


def labctl(workdir: Path, env: dict[str, str], *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "labctl", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"labctl {' '.join(args)} failed: {done.stdout[-500:]} {done.stderr[-500:]}"
        )
    return time.perf_counter() - start, done.stdout


@contextlib.contextmanager
def reference_lab(
    edit: Callable[[str], str] = lambda text: text, up_args: Sequence[str] = ()
) -> Iterator[tuple[Path, dict[str, str]]]:
    """The reference lab simulated in a temporary directory, with `sim env` applied.

    ``edit`` changes the inventory first; ``up_args`` go to `labctl sim up` (``--vm``).
    """
    if os.geteuid() != 0:
        raise SystemExit("run as root: the simulated lab makes namespaces")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "inventory.yaml").write_text(edit((ROOT / "inventory.yaml").read_text()))
        env = {**os.environ, **SECRETS, "LABCTL_CA_PASSPHRASE": "bench-ca-passphrase"}
        labctl(workdir, env, "sim", "up", *up_args)
        try:
            _, exports = labctl(workdir, env, "sim", "env")
            for line in exports.splitlines():
                key, _, value = line.removeprefix("export ").partition("=")
                env[key] = shlex.split(value)[0]
            yield workdir, env
        finally:
            labctl(workdir, env, "sim", "down")


def converged_runs(workdir: Path, env: dict[str, str], layer: str, runs: int) -> list[float]:
    """Wall times of ``runs`` re-runs of one layer, each of which must change nothing."""
    times = []
    for _ in range(runs):
        seconds, out = labctl(workdir, env, "bootstrap", "--only", layer, "-o", "json")
        report = next(x for x in json.loads(out)["layers"] if x["layer"] == layer)
        if not all(plan["nothing_to_do"] for plan in report["plans"]):
            raise SystemExit("a converged re-run changed something")
        times.append(seconds)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with reference_lab() as (workdir, env):
        first, _ = labctl(workdir, env, "bootstrap", "--only", "pki", "-o", "json")
        times = converged_runs(workdir, env, "pki", args.runs)
    print("| run | wall (s) |")
    print("|---|---|")
    print(f"| first (mint + push to 3 nodes) | {first:.2f} |")
    median = statistics.median(times)
    print(f"| converged re-run, median of {args.runs} (nothing to do) | {median:.2f} |")


if __name__ == "__main__":
    main()
