"""etcd as a container under the nodes' podman against the host runtime, on the sim.

Usage (root, under the machine's lab lock):
    flock /tmp/labctl-sim.lock python benchmarks/bench_containers.py

Measures (issue 23): the etcd image's build from Debian's binaries (cold, into an
empty cache, and warm, found by its inputs' hash); then, for each runtime, the
simulated reference lab brought up (`sim up`, which loads the image into each node's
podman at boot when there is one), power and pki (not timed), `bootstrap --only etcd`
as a whole process, and the memory of everything running in the three server nodes
(the sum of Pss over the processes in each node's network namespace, from
/proc/PID/smaps_rollup): sshd, the units, and with containers the engine's own
processes (the unit's `podman run`, conmon) beside etcd.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_bootstrap_pki import labctl, reference_lab

from labctl.render.etcd import IMAGE
from labctl.sim import engine


def image_build() -> tuple[float, float, int]:
    """Seconds to build the etcd archive into an empty cache, then to find it; its size."""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LABCTL_KUBE_CACHE"] = str(Path(tmp) / "kubernetes")
        try:
            start = time.perf_counter()
            archive = engine.build(engine.etcd_image(f"{IMAGE}:v3.4.23"))
            cold = time.perf_counter() - start
            start = time.perf_counter()
            engine.build(engine.etcd_image(f"{IMAGE}:v3.4.23"))
            warm = time.perf_counter() - start
            size = archive.path.stat().st_size
        finally:
            del os.environ["LABCTL_KUBE_CACHE"]
    return cold, warm, size


def pss_kib(pid: str) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:  # exited meanwhile
        return 0
    return sum(int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:"))


def nodes_memory(workdir: Path) -> tuple[float, int]:
    """MiB of Pss in the server nodes' network namespaces, and how many processes."""
    record = json.loads((workdir / ".labctl" / "sim" / "sim.json").read_text())
    total, count = 0, 0
    for node in record["nodes"].values():
        pids = subprocess.run(
            ["ip", "netns", "pids", node["netns"]], capture_output=True, text=True, check=True
        ).stdout.split()
        total += sum(pss_kib(pid) for pid in pids)
        count += len(pids)
    return total / 1024, count


def lab_run(runtime: str) -> tuple[float, float, float, int]:
    """sim up (s), bootstrap --only etcd (s), the nodes' memory (MiB) and process count."""
    start = time.perf_counter()
    with reference_lab() as (workdir, env):
        up = time.perf_counter() - start  # includes `sim env`, a few ms
        if runtime == "host":
            env["LABCTL_ETCD_RUNTIME"] = "host"
        else:
            env.pop("LABCTL_ETCD_RUNTIME", None)
        labctl(workdir, env, "bootstrap", "--only", "power", "--only", "pki")
        formed, _ = labctl(workdir, env, "bootstrap", "--only", "etcd")
        time.sleep(5)  # let the members settle after forming
        memory, processes = nodes_memory(workdir)
    return up, formed, memory, processes


def main() -> None:
    if not engine.available():
        raise SystemExit("podman and runc are missing: scripts/setup.sh installs them")
    cold, warm, size = image_build()
    print("| etcd image from Debian's binaries | s |")
    print("|---|---|")
    print(f"| build into an empty cache ({size / 2**20:.1f} MiB archive) | {cold:.2f} |")
    print(f"| found in the cache by its inputs' hash | {warm:.3f} |")
    print()
    print(
        "| etcd runtime | sim up (s) | bootstrap --only etcd (s) | nodes' Pss (MiB) | processes |"
    )
    print("|---|---|---|---|---|")
    for runtime in ("container", "host"):
        up, formed, memory, processes = lab_run(runtime)
        print(f"| {runtime} | {up:.2f} | {formed:.2f} | {memory:.1f} | {processes} |")


if __name__ == "__main__":
    main()
