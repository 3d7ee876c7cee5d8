"""Time `labctl doctor` on the simulated reference lab: fit, then with a dead BMC.

Usage (root, under the machine's lab lock):
    flock /tmp/labctl-sim.lock python benchmarks/bench_doctor.py [--runs 5]

Target (issue 25): under 10 s on the reference lab with a dead BMC, every device
asked in parallel. Brings the lab up in a temporary directory, bootstraps power,
pki, etcd and calico (not timed) so every check but Kubernetes' and Ceph's has
something to read, then times `labctl doctor -o json --skip DOC050` as a whole
process (start-up included): ``--runs`` times on the fit lab, ``--runs`` times
with wind's ipmi_sim stopped (SIGSTOP: a BMC that takes packets and never answers,
the worst case: every ask waits its --timeout), then with it killed (its port
refuses at once). DOC050 is skipped: the reference inventory's
resolvers are public addresses. Takes the lab down after.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bootstrap_pki import labctl, reference_lab


def doctor(workdir: Path, env: dict[str, str]) -> tuple[float, dict[str, object]]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "labctl", "doctor", "-o", "json", "--skip", "DOC050"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"labctl doctor failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    return took, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with reference_lab() as (workdir, env):
        layers = ("power", "pki", "etcd", "calico")
        labctl(workdir, env, "bootstrap", *(w for layer in layers for w in ("--only", layer)))
        time.sleep(10)  # BGP sessions come up (keepalive 3 s)
        fit = [doctor(workdir, env) for _ in range(args.runs)]
        state = workdir / ".labctl" / "sim"
        daemon = state / "bmcs" / "wind" / "daemon.pid"
        record = json.loads((state / "sim.json").read_text())
        pid = int(daemon.read_text()) if daemon.exists() else record["pids"]["bmc:wind"]
        os.kill(pid, signal.SIGSTOP)  # hung: its socket takes packets and never answers
        hung = [doctor(workdir, env) for _ in range(args.runs)]
        os.kill(pid, signal.SIGKILL)  # dead: its port refuses at once
        os.kill(pid, signal.SIGCONT)
        dead = [doctor(workdir, env) for _ in range(args.runs)]
    rows = (("fit lab", fit), ("wind's BMC hung (SIGSTOP)", hung), ("wind's BMC dead", dead))
    print("| lab | median (s) | slowest (s) | verdict |")
    print("|---|---|---|---|")
    for label, runs in rows:
        times = [t for t, _ in runs]
        verdicts = {bool(doc["fit"]) for _, doc in runs}
        print(
            f"| {label} | {statistics.median(times):.2f} | {max(times):.2f} | "
            f"{'fit' if verdicts == {True} else 'not fit' if verdicts == {False} else 'mixed'} |"
        )


if __name__ == "__main__":
    main()
