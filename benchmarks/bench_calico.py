"""Time the calico layer on the simulated lab: `bootstrap --only calico` to a fabric that is up.

Usage (root): python benchmarks/bench_calico.py [--nodes 3 30] [--runs 3]

Target (issue 13): from `bootstrap --only calico` to every session Established and
every pod block learned by every peering switch, for the reference lab (3 nodes,
2 FRR switches, mesh) and a generated 30-node lab (one FRR core switch peering with
every node, and the full mesh: 30 x 29 mesh sessions). The layer's last step waits
for exactly that, so the figure is the command's wall time; `labctl bgp status`
then confirms it. A converged re-run (nothing to push) is timed too.

Takes the same host-wide lock as the e2e `lab` fixture, so it never builds a lab
beside another test's.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shlex
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bootstrap_pki import converged_runs, labctl
from bench_sim import SECRETS
from gen_inventory import generate, peer_with_frr_core

ROOT = Path(__file__).resolve().parents[1]
HOST_LOCK = Path("/run/labctl/e2e-lab.lock")


def generated(count: int) -> str:
    """A generated lab whose first switch is an FRR core switch every node peers with."""
    data: dict[str, Any] = peer_with_frr_core(generate(count))
    return yaml.safe_dump(data, sort_keys=False, width=120)


@contextlib.contextmanager
def lab(inventory: str) -> Iterator[tuple[Path, dict[str, str]]]:
    if os.geteuid() != 0:
        raise SystemExit("run as root: the simulated lab makes namespaces")
    HOST_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with HOST_LOCK.open("a") as lock, tempfile.TemporaryDirectory() as tmp:
        fcntl.flock(lock, fcntl.LOCK_EX)
        workdir = Path(tmp)
        (workdir / "inventory.yaml").write_text(inventory)
        env = {**os.environ, **SECRETS}
        labctl(workdir, env, "sim", "up")
        try:
            _, exports = labctl(workdir, env, "sim", "env")
            for line in exports.splitlines():
                key, _, value = line.removeprefix("export ").partition("=")
                env[key] = shlex.split(value)[0]
            yield workdir, env
        finally:
            labctl(workdir, env, "sim", "down")


def measure(label: str, inventory: str, runs: int) -> list[str]:
    with lab(inventory) as (workdir, env):
        up, _ = labctl(workdir, env, "bootstrap", "--only", "calico", "-o", "json")
        _, out = labctl(workdir, env, "bgp", "status", "-o", "json")
        status = json.loads(out)
        if not status["ok"]:
            raise SystemExit(f"{label}: the fabric is not up: {status['problems'][:3]}")
        sessions = len(status["sessions"])
        blocks = sum(len(s["learned"]) for s in status["switches"])
        again = statistics.median(converged_runs(workdir, env, "calico", runs))
    return [
        f"| {label}: `bootstrap --only calico` to all {sessions} sessions Established and "
        f"{blocks} routes on the switches | {up:.2f} |",
        f"| {label}: converged re-run, median of {runs} | {again:.2f} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, nargs="*", default=[3, 30])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = ["| run | wall (s) |", "|---|---|"]
    for count in args.nodes:
        if count == 3:
            rows += measure(
                "reference lab (3 nodes, 2 switches)",
                (ROOT / "inventory.yaml").read_text(),
                args.runs,
            )
        else:
            rows += measure(f"generated {count}-node lab (1 switch)", generated(count), args.runs)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
