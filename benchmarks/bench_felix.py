"""What calico-node's Felix on the simulated nodes adds to a bootstrap: time and memory.

Usage (root, after scripts/setup.sh built Kubernetes and Calico; takes the lab lock):
flock /tmp/labctl-sim.lock python benchmarks/bench_felix.py [--runs 1]

For each of Felix off (``LABCTL_CALICO_FELIX=0``) and on (``=1``), ``runs`` times: the
simulated reference lab up in a temporary directory, ``power`` and ``pki`` (not timed),
``etcd``, ``kubernetes`` and ``calico`` (not timed), then ``bootstrap --only
calico-resources`` timed: the layer that starts calico-node's programs on the nodes
(with Felix, it waits for ``calico-node -felix-ready`` on each) and waits for every Node
Ready and every session Established. Then, with Felix, the resident memory of each
node's ``calico-node -felix`` (read from /proc on this host, which sees every node's
processes). Prints a table of medians. Holds the host-wide lock the e2e fixture takes.
"""

from __future__ import annotations

import argparse
import fcntl
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_bootstrap_pki import labctl, reference_lab

HOST_LOCK = Path("/run/labctl/e2e-lab.lock")


def felix_rss_mib() -> list[float]:
    """Resident memory (MiB) of every ``calico-node -felix`` running on this host."""
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            status = (proc / "status").read_text()
        except OSError:
            continue
        if len(argv) > 1 and argv[0].endswith(b"/calico-node") and argv[1] == b"-felix":
            rss = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
            out.append(int(rss.split()[1]) / 1024)
    return out


def one(felix: str) -> tuple[float, list[float]]:
    """Seconds of `bootstrap --only calico-resources`, and Felix's RSS per node."""
    with reference_lab() as (workdir, env):
        env["LABCTL_CALICO_FELIX"] = felix
        labctl(workdir, env, "bootstrap", "--only", "power", "--only", "pki")
        labctl(
            workdir, env, "bootstrap", "--only", "etcd", "--only", "kubernetes", "--only", "calico"
        )
        seconds, _ = labctl(workdir, env, "bootstrap", "--only", "calico-resources", "-o", "json")
        rss = felix_rss_mib()
        if (felix == "1") != bool(rss):
            raise SystemExit(f"LABCTL_CALICO_FELIX={felix}, yet {len(rss)} Felix running")
    return seconds, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, list[float]]]] = {"0": [], "1": []}
    HOST_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with HOST_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for _ in range(args.runs):
            for felix in ("0", "1"):
                results[felix].append(one(felix))
    print("| Felix | `bootstrap --only calico-resources` (s) | Felix RSS per node (MiB) |")
    print("|---|---|---|")
    for felix, runs in results.items():
        seconds = statistics.median(s for s, _ in runs)
        rss = [r for _, per_node in runs for r in per_node]
        memory = f"{statistics.median(rss):.0f} (max {max(rss):.0f})" if rss else "-"
        print(f"| {'on' if felix == '1' else 'off'} | {seconds:.1f} | {memory} |")
    print(f"median of {args.runs} run(s) each; every run a fresh lab")


if __name__ == "__main__":
    main()
