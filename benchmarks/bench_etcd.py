"""Time the etcd layer on the simulated reference lab, and a snapshot of a large keyspace.

Usage (root): python benchmarks/bench_etcd.py [--runs 5] [--megabytes 100]

Targets (issue 11): cluster formation from `bootstrap --only etcd` measured; a
converged re-run touches nothing and takes under 2 s; a snapshot of a 100 MB
keyspace measured. Brings the simulated lab up in a temporary directory (power and
pki first, not timed) and takes it down after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bootstrap_pki import labctl
from bench_sim import SECRETS

ROOT = Path(__file__).resolve().parents[1]


def fill(workdir: Path, megabytes: int) -> None:
    """Write about ``megabytes`` of values through labctl's own etcd client."""
    from labctl.etcd.session import EtcdSession
    from labctl.inventory import require_inventory

    inventory = require_inventory(workdir / "inventory.yaml")
    value = os.urandom(512 * 1024)  # 512 KiB per key: under etcd's 1.5 MiB request limit
    with EtcdSession(inventory, workdir, timeout=30.0) as session:
        client = session.client()
        for i in range(megabytes * 2):
            client.put(f"/bench/{i:05d}", value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--megabytes", type=int, default=100)
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
            start = time.perf_counter()
            fill(workdir, args.megabytes)
            filled = time.perf_counter() - start
            took, out = labctl(workdir, env, "etcd", "snapshot", "-o", "json")
            size = json.loads(out)["size"] / 2**20
        finally:
            labctl(workdir, env, "sim", "down")
    print("| run | wall (s) |")
    print("|---|---|")
    print(f"| formation: `bootstrap --only etcd` on 3 new members | {formed:.2f} |")
    median = statistics.median(times)
    print(f"| converged re-run, median of {args.runs} (nothing to do) | {median:.2f} |")
    print(f"| writing {args.megabytes} MB of values (512 KiB each) | {filled:.2f} |")
    print(f"| `labctl etcd snapshot` of that keyspace ({size:.0f} MiB file) | {took:.2f} |")
    print(f"\nsnapshot throughput: {size / took:.1f} MiB/s")


if __name__ == "__main__":
    main()
