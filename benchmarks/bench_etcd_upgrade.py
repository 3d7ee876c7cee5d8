"""Time a rolling etcd upgrade, 3.4.23 -> 3.5.21, on the simulated reference lab.

Usage (root, under the machine-wide lock; etcd 3.5.21 built first with
`labctl etcd build --version 3.5.21`):
    flock /tmp/labctl-sim.lock python benchmarks/bench_etcd_upgrade.py

Brings the reference lab up in a temporary directory, bootstraps power, pki and etcd
at Debian's 3.4.23 (not timed), then changes `cluster.etcd.version` to 3.5.21 and
times `labctl plan` (the live reads and the order), the `bootstrap --only etcd` that
upgrades the three members one at a time (the new image loaded on each node, each
member guarded, restarted, checked back at 3.5.21 and caught up, the leader last,
then the cluster version), and a converged re-run. Takes the lab down after.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bootstrap_pki import converged_runs, labctl, reference_lab

OLD, NEW = "3.4.23", "3.5.21"


def main() -> None:
    with reference_lab() as (workdir, env):
        labctl(workdir, env, "bootstrap", "--only", "power", "--only", "pki", "--only", "etcd")
        inventory = workdir / "inventory.yaml"
        text = inventory.read_text()
        old = f"  etcd:\n    version: {OLD}\n"
        if old not in text:
            raise SystemExit(f"the reference inventory's etcd is not at {OLD}")
        inventory.write_text(text.replace(old, f"  etcd:\n    version: {NEW}\n"))
        planned, _ = labctl(workdir, env, "plan")
        upgraded, _ = labctl(workdir, env, "bootstrap", "--only", "etcd")
        (again,) = converged_runs(workdir, env, "etcd", 1)
    print("| operation | wall (s) |")
    print("|---|---|")
    print(f"| `labctl plan` (live versions, the members' order) | {planned:.2f} |")
    print(f"| `bootstrap --only etcd`: 3 members {OLD} -> {NEW}, one at a time | {upgraded:.2f} |")
    print(f"| converged re-run at {NEW} | {again:.2f} |")


if __name__ == "__main__":
    main()
