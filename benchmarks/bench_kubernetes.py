"""Time the kubernetes layer on the simulated reference lab, with the real binaries.

Usage (root, after scripts/setup.sh built the binaries and images):
python benchmarks/bench_kubernetes.py [--runs 5] [--runtime pods|host]

Targets (issue 12): the time from `bootstrap --only etcd --only kubernetes` (the
issue's `--from etcd`, from before calico and ceph came after it) to every server
registered as a Node (the layer's last plan waits for that); a converged re-run of the layer
under 3 s; and how long the API takes to answer /readyz again after the control-plane
node's power cycle. Brings the simulated lab up in a temporary directory (power and
pki first, not timed) and takes it down after. Holds the host-wide lock the e2e
fixture takes, so it waits for another lab on this machine instead of colliding.
"""

from __future__ import annotations

import argparse
import fcntl
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_bootstrap_pki import converged_runs, labctl, reference_lab

from labctl.inventory import require_inventory
from labctl.kubernetes.api import KubeSession

HOST_LOCK = Path("/run/labctl/e2e-lab.lock")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    # The sim's default is pods (static pods from images built here); host is the
    # control plane as units, kept to compare.
    parser.add_argument("--runtime", choices=("pods", "host"), default="pods")
    args = parser.parse_args()
    HOST_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with HOST_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with reference_lab() as (workdir, env):
            env["LABCTL_KUBE_RUNTIME"] = args.runtime
            labctl(workdir, env, "bootstrap", "--only", "power", "--only", "pki")
            formed, _ = labctl(
                workdir, env, "bootstrap", "--only", "etcd", "--only", "kubernetes", "-o", "json"
            )
            times = converged_runs(workdir, env, "kubernetes", args.runs)
            session = KubeSession(require_inventory(workdir / "inventory.yaml"), workdir)
            labctl(workdir, env, "power", "cycle", "fohn")
            start = time.monotonic()
            session.wait_ready(300)
            back = time.monotonic() - start
    print(f"runtime {args.runtime}")
    print("| run | wall (s) |")
    print("|---|---|")
    print(
        "| `bootstrap --only etcd --only kubernetes` to fohn, chequita, wind registered"
        f" as Nodes | {formed:.2f} |"
    )
    median = statistics.median(times)
    print(f"| converged `bootstrap --only kubernetes`, median of {args.runs} | {median:.2f} |")
    print(f"| `power cycle fohn` returned to /readyz ok again | {back:.2f} |")


if __name__ == "__main__":
    main()
