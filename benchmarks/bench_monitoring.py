"""Time the monitoring layer on the simulated reference lab and weigh what it runs.

Usage (root, after scripts/setup.sh): python benchmarks/bench_monitoring.py [--runs 5]

What the monitoring layer adds to a bootstrap (issue 26): the wall time of
`bootstrap --only monitoring` from nothing to every target the inventory implies up
in Prometheus (its one wait for a scrape), the median of converged re-runs, and the
memory of what it runs (the Pss of every monitoring program's process, by its path
in the container (`/bin/prometheus`, ...) or as Debian's binary (`/usr/bin/prometheus*`):
three node-exporters, Prometheus, Alertmanager, the IPMI and SNMP exporters; the
engine's own conmon processes are not counted). The
inventory is the reference one without Ceph and scraped every 5 s, as in
tests/e2e/test_monitoring_lab.py (the sim's Ceph is its own, slower, lab). Power, pki,
etcd, kubernetes and calico come first, not timed. Holds the host-wide lock the e2e
fixture takes.

Then ``--alerts`` rounds of the e2e test's ``alerts_round`` (its inventory gives
NodeDown and EtcdQuorumAtRisk a for: of 10 s): wind powered off through its BMC until
both fire, on until both resolve, pdu1's outlet 1 cut until Prometheus reads it off
and switched back, then until every target is up and nothing fires.
"""

from __future__ import annotations

import argparse
import fcntl
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_bootstrap_pki import converged_runs, labctl, reference_lab
from bench_sim import SECRETS

from labctl.inventory import require_inventory
from labctl.render.monitoring.units import PROGRAMS
from tests.e2e.test_monitoring_lab import alerts_round, monitoring_inventory
from tests.labctl_process import run_labctl

HOST_LOCK = Path("/run/labctl/e2e-lab.lock")


PROGRAM_PATHS = tuple(
    p for prog in PROGRAMS.values() for p in (prog.image_binary, prog.host_binary)
)


def pss_mib(prefix: str | tuple[str, ...] = PROGRAM_PATHS) -> float:
    total = 0
    for proc in Path("/proc").iterdir():
        try:
            argv0 = (proc / "cmdline").read_bytes().split(b"\0", 1)[0].decode()
            if not argv0.startswith(prefix):
                continue
            rollup = (proc / "smaps_rollup").read_text()
        except (OSError, ValueError):
            continue
        pss = next(line for line in rollup.splitlines() if line.startswith("Pss:"))
        total += int(pss.split()[1])
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--alerts", type=int, default=3, help="rounds of alerts_round")
    args = parser.parse_args()
    HOST_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with HOST_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with reference_lab(lambda _: monitoring_inventory()) as (workdir, env):
            labctl(workdir, env, "bootstrap", "--only", "power", "--only", "pki",
                   "--only", "etcd", "--only", "kubernetes", "--only", "calico")  # fmt: skip
            before = pss_mib()
            first, _ = labctl(workdir, env, "bootstrap", "--only", "monitoring", "-o", "json")
            memory = pss_mib() - before
            times = converged_runs(workdir, env, "monitoring", args.runs)
            inventory = require_inventory(workdir / "inventory.yaml")
            rounds = [
                alerts_round(
                    inventory,
                    SECRETS,
                    lambda: run_labctl("monitoring", "status", "-o", "json", cwd=workdir, env=env),
                )
                for _ in range(args.alerts)
            ]
    print("| run | wall (s) |")
    print("|---|---|")
    print(f"| `bootstrap --only monitoring` to every target up | {first:.2f} |")
    print(f"| converged `bootstrap --only monitoring`, median of {args.runs} | "
          f"{statistics.median(times):.2f} |")  # fmt: skip
    print(f"Pss of the monitoring programs right after: {memory:.0f} MiB")
    for n, measured in enumerate(rounds, 1):
        print(f"alerts round {n}: {measured.line()}")


if __name__ == "__main__":
    main()
