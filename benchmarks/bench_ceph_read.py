"""Time the pieces of one Ceph read on a monitor's node: SSH, the engine's CLI, Ceph's CLI.

Usage (root, under the machine's lab lock):

    flock /tmp/labctl-sim.lock python benchmarks/bench_ceph_read.py [--repeat 4]

Brings the reference lab up in a temporary directory, bootstraps its ceph layer
(`labctl bootstrap --only ceph`), then runs each command below on fohn over a fresh
`ssh` (as a read's own session is) ``--repeat`` times and prints the median: `ssh true`
alone, the engine's `inspect`, an `exec` of Ceph's CLI in the monitor's container, the
reader labctl uses (`render.ceph.reader`: inspect, then exec or `run --rm`), the image's
`run --rm` (what every read was before), and the node's own host binary. Subtract the
first line from the others for what each costs on the node. The lab is taken down
whatever happened.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_bootstrap import ROOT, labctl, must, sim_env
from labctl.inventory import load_inventory
from labctl.render import ceph as render

FOHN = "31.31.164.220"  # the reference lab's fohn, as `sim up` addresses it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ceph-read-") as tmp:
        work = Path(tmp)
        (work / "inventory.yaml").write_text((ROOT / "inventory.yaml").read_text())
        _, done = labctl(work, {}, "sim", "up")
        try:
            must(done, "labctl sim up")
            took, done = labctl(work, sim_env(work), "bootstrap", "--only", "ceph", "-o", "json")
            must(done, "labctl bootstrap --only ceph")
            print(f"bootstrap --only ceph: {took:.1f} s")
            inventory = load_inventory(work / "inventory.yaml").inventory
            assert inventory is not None
            fohn = next(s for s in inventory.servers if s.name == "fohn")
            reader = shlex.join(render.reader(inventory, fohn, "ceph", "container"))
            image = shlex.join(render.tool(inventory, fohn, "ceph", "container"))
            key = work / ".labctl" / "sim" / "id_ed25519"
            health = "health detail -f json"
            for name, command in (
                ("ssh true", "true"),
                ("engine inspect", "docker inspect --format '{{.State.Running}}' ceph-mon-fohn"),
                ("exec ceph health", f"docker exec ceph-mon-fohn ceph {health}"),
                ("reader health", f"{reader} {health}"),
                ("run --rm health", f"{image} {health}"),
                ("host ceph health", f"ceph {health}"),
            ):
                times = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    ran = subprocess.run(
                        ["ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no",
                         "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                         "-o", "LogLevel=ERROR", f"root@{FOHN}", command],
                        capture_output=True, text=True, check=False,
                    )  # fmt: skip
                    times.append(time.perf_counter() - start)
                    must(ran, name)
                print(
                    f"{name:<18} median {statistics.median(times):.2f} s "
                    f"({', '.join(f'{t:.2f}' for t in times)})"
                )
        finally:
            _, done = labctl(work, {}, "sim", "down")
            print("sim down" + ("" if done.returncode == 0 else " (FAILED)"))


if __name__ == "__main__":
    main()
