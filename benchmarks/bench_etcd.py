"""Time the etcd layer on the simulated reference lab: formation, then converged re-runs.

Usage (root): python benchmarks/bench_etcd.py [--runs 5]

Targets (issue 11): cluster formation from `bootstrap --only etcd` measured; a
converged re-run touches nothing and takes under 2 s. Brings the simulated lab up
in a temporary directory (power and pki first, not timed) and takes it down after.
Snapshot speed on a large keyspace is `benchmarks/bench_etcd_snapshot.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bootstrap_pki import labctl
from bench_sim import SECRETS

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the simulated lab makes namespaces")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "inventory.yaml").write_text((ROOT / "inventory.yaml").read_text())
        env = {**os.environ, **SECRETS, "LABCTL_CA_PASSPHRASE": "bench-ca-passphrase"}
        labctl(workdir, env, "sim", "up")
        try:
            _, exports = labctl(workdir, env, "sim", "env")
            for line in exports.splitlines():
                key, _, value = line.removeprefix("export ").partition("=")
                env[key] = value.strip("'")
            labctl(workdir, env, "bootstrap", "--only", "power", "--only", "pki")
            formed, _ = labctl(workdir, env, "bootstrap", "--only", "etcd", "-o", "json")
            times = []
            for _ in range(args.runs):
                seconds, out = labctl(workdir, env, "bootstrap", "--only", "etcd", "-o", "json")
                etcd = next(
                    layer for layer in json.loads(out)["layers"] if layer["layer"] == "etcd"
                )
                if not all(plan["nothing_to_do"] for plan in etcd["plans"]):
                    raise SystemExit("a converged re-run changed something")
                times.append(seconds)
        finally:
            labctl(workdir, env, "sim", "down")
    print("| run | wall (s) |")
    print("|---|---|")
    print(f"| formation: `bootstrap --only etcd` on 3 new members | {formed:.2f} |")
    median = statistics.median(times)
    print(f"| converged re-run, median of {args.runs} (nothing to do) | {median:.2f} |")


if __name__ == "__main__":
    main()
