"""Time `labctl sim up` and `down` (reference lab, generated 30-server lab) and measure memory.

Usage (root): python benchmarks/bench_sim.py [--servers 30]

Budgets (issue 3, 2 cores): reference lab up in under 10 s; 30 servers up in
under 60 s using under 2 GiB; down in under 10 s. Memory is the drop in
MemAvailable while the lab is up (every daemon, namespace and page it costs).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_inventory import render

ROOT = Path(__file__).resolve().parents[1]
SECRETS = {
    "LABCTL_BMC_PASSWORD": "bench-bmc-pw",
    "LABCTL_BMC_PASSWORD_FOHN": "bench-bmc-pw",
    "LABCTL_BMC_PASSWORD_CHEQUITA": "bench-bmc-pw",
    "LABCTL_BMC_PASSWORD_WIND": "bench-bmc-pw",
    "LABCTL_PDU_AUTH_KEY": "bench-pdu-auth",
    "LABCTL_PDU_PRIV_KEY": "bench-pdu-priv",
    "LABCTL_SWITCH_SNMP_AUTH_KEY": "bench-switch-auth",
    "LABCTL_SWITCH_SNMP_PRIV_KEY": "bench-switch-priv",
}


def available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise RuntimeError("no MemAvailable")


def labctl(workdir: Path, *args: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "labctl", *args],
        cwd=workdir,
        env={**os.environ, **SECRETS},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"labctl {' '.join(args)} failed: {done.stdout} {done.stderr}")
    return time.perf_counter() - start


def measure(label: str, inventory_text: str) -> tuple[str, float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "inventory.yaml").write_text(inventory_text)
        before = available_kib()
        up = labctl(workdir, "sim", "up")
        time.sleep(1)  # let daemons settle before reading memory
        used_mib = (before - available_kib()) / 1024
        down = labctl(workdir, "sim", "down")
        return label, up, down, used_mib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--servers", type=int, default=30)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the simulated lab makes namespaces")
    rows = [
        measure("reference lab (3 servers, 2 PDUs)", (ROOT / "inventory.yaml").read_text()),
        measure(f"generated ({args.servers} servers)", render(args.servers)),
    ]
    print("| lab | up (s) | down (s) | memory while up (MiB) |")
    print("|---|---|---|---|")
    for label, up, down, mib in rows:
        print(f"| {label} | {up:.2f} | {down:.2f} | {mib:.0f} |")


if __name__ == "__main__":
    main()
