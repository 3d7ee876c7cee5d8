"""Time the etcd layer on the simulated reference lab: formation, then converged re-runs.

Usage (root): python benchmarks/bench_etcd.py [--runs 5]

Targets (issue 11): cluster formation from `bootstrap --only etcd` measured; a
converged re-run touches nothing and takes under 2 s. Brings the simulated lab up
in a temporary directory (power and pki first, not timed) and takes it down after.
Snapshot speed on a large keyspace is `benchmarks/bench_etcd_snapshot.py`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bootstrap_pki import converged_runs, labctl, reference_lab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with reference_lab() as (workdir, env):
        labctl(workdir, env, "bootstrap", "--only", "power", "--only", "pki")
        formed, _ = labctl(workdir, env, "bootstrap", "--only", "etcd", "-o", "json")
        times = converged_runs(workdir, env, "etcd", args.runs)
    print("| run | wall (s) |")
    print("|---|---|")
    print(f"| formation: `bootstrap --only etcd` on 3 new members | {formed:.2f} |")
    median = statistics.median(times)
    print(f"| converged re-run, median of {args.runs} (nothing to do) | {median:.2f} |")


if __name__ == "__main__":
    main()
