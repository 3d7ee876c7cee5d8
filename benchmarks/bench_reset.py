"""Time `labctl reset` of one server on the simulated reference lab, and its rebuild.

Usage (root, under the machine-wide lock):
    flock /tmp/labctl-sim.lock python benchmarks/bench_reset.py

Brings the reference lab up in a temporary directory, bootstraps it up to etcd (power,
pki, etcd; not timed), then times `labctl reset wind --yes` (the etcd member removed,
the node wiped, powered off), the `bootstrap` up to etcd that builds wind again (the
member added as a learner and promoted), and a `reset wind --dry-run` (the live reads
and the planning alone). Takes the lab down after.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bootstrap_pki import labctl, reference_lab

UP_TO_ETCD = ("bootstrap", "--only", "power", "--only", "pki", "--only", "etcd")


def main() -> None:
    with reference_lab() as (workdir, env):
        labctl(workdir, env, *UP_TO_ETCD)
        planned, _ = labctl(workdir, env, "reset", "wind", "--dry-run")
        reset, _ = labctl(workdir, env, "reset", "wind", "--yes")
        rebuilt, _ = labctl(workdir, env, *UP_TO_ETCD)
    print("| operation | wall (s) |")
    print("|---|---|")
    print(f"| `reset wind --dry-run` (live reads, planning) | {planned:.2f} |")
    print(f"| `reset wind --yes` (etcd member removed, wipe, power off) | {reset:.2f} |")
    print(
        f"| `bootstrap --only power --only pki --only etcd` building wind again | {rebuilt:.2f} |"
    )


if __name__ == "__main__":
    main()
