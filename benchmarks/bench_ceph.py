"""Time the ceph layer on the simulated reference lab: to HEALTH_OK, converged re-runs, memory.

Usage (root): python benchmarks/bench_ceph.py [--runs 3] [--disk-size 3G]
    [--runtime container|host]

Targets (issue 14): `bootstrap --only ceph` to HEALTH_OK measured (by hand: quorum
11 s, OSDs up 30 s from cold); a converged re-run under 3 s; the whole reference
cluster (3 mons, 2 mgrs, 16 OSDs, 2 MDSs) within 1.5 GiB RSS; `rbd bench` write
throughput on the simulated disks, for the record. The inventory gets the same
edits as tests/e2e/test_ceph_lab.py (PG counts and memory settings for one machine);
``--runtime host`` also sets ``cluster.ceph.runtime: host`` (Debian's binaries as units)
where the default runs the Ceph image made here under each node's podman, so the two
can be compared (the memory figure then counts podman's conmon, one per daemon). The
simulated lab comes up in a temporary directory and goes down.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bootstrap_pki import ROOT, converged_runs, labctl, reference_lab


def on(workdir: Path, node_address: str, command: str) -> str:
    state = workdir / ".labctl" / "sim"
    done = subprocess.run(
        ["ssh", "-i", str(state / "id_ed25519"), "-o", "BatchMode=yes",
         "-o", f"UserKnownHostsFile={state / 'known_hosts'}", f"root@{node_address}", command],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--disk-size", default="3G")
    parser.add_argument("--runtime", choices=("container", "host"), default="container")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.e2e.test_ceph_lab import EDITS  # the same inventory as the e2e test

    os.environ["LABCTL_SIM_DISK_SIZE"] = args.disk_size
    nodes = {"fohn": "31.31.164.220", "chequita": "31.31.164.221", "wind": "31.31.164.222"}
    with reference_lab() as (workdir, env):
        inventory = workdir / "inventory.yaml"
        text = inventory.read_text()
        for old, new in EDITS:
            text = text.replace(old, new)
        if args.runtime == "host":
            text = text.replace(
                "    version: 16.2.15\n", "    version: 16.2.15\n    runtime: host\n", 1
            )
        inventory.write_text(text)
        formed, _ = labctl(workdir, env, "bootstrap", "--only", "ceph", "-o", "json")
        times = converged_runs(workdir, env, "ceph", args.runs)
        rss: dict[str, int] = {}
        for address in nodes.values():
            out = on(
                workdir, address, "ps -C ceph-mon,ceph-mgr,ceph-osd,ceph-mds,conmon -o comm=,rss="
            )
            for line in out.splitlines():
                program, kib = line.split()
                rss[program] = rss.get(program, 0) + int(kib)
        fohn = nodes["fohn"]
        on(workdir, fohn, "rbd create rbd/bench --size 256")
        bench = on(
            workdir, fohn, "rbd bench --io-type write --io-size 4M --io-total 128M rbd/bench"
        )
    print("| run | figure |")
    print("|---|---|")
    print(f"| runtime | {args.runtime} |")
    print(f"| `bootstrap --only ceph` from nothing to HEALTH_OK (16 OSDs) | {formed:.1f} s |")
    median = statistics.median(times)
    print(f"| converged re-run, median of {args.runs} (nothing to do) | {median:.2f} s |")
    split = ", ".join(f"{p} {k / 1024:.0f} MiB" for p, k in sorted(rss.items()))
    print(f"| RSS of every Ceph daemon | {sum(rss.values()) / 1024:.0f} MiB ({split}) |")
    print(f"| `rbd bench` write, 4 MiB I/Os, 128 MiB | {bench.strip().splitlines()[-1]} |")


if __name__ == "__main__":
    main()
