"""Time the os layer's network installs on the simulated lab: 1 and 3 VM nodes at once.

Usage (root): python benchmarks/bench_os.py [--nodes 1 3] [--firmware bios|uefi]

For each count, the reference lab comes up with that many servers as VM nodes
(qemu under tcg, the stand-in installer), all powered off; then `labctl bootstrap
--only os` is timed from its start to every VM node installed (report received,
booted from disk, SSH answering), and once more converged (nothing to do). The
boot service's answer time per request comes from its request log, and so does each
install's own time: from the installer's iPXE script to its report (coreos-installer
laying the image, Ignition, in the VM). Then the first VM node is powered off and on
again by the hook its BMC runs (``python -m labctl.sim.vm stop|start``), and the time
from that power-on to SSH answering on its installed disk is taken (qemu booting the
disk under SeaBIOS or OVMF). Takes the same host-wide lock as the e2e
tests, so it waits for any simulated lab running.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_bootstrap_pki import labctl, reference_lab

from labctl.inventory import require_inventory
from labctl.sim import installer

SERVERS = ("fohn", "chequita", "wind")
LOCK = Path("/run/labctl/e2e-lab.lock")


def one(count: int, firmware: str = "bios") -> dict[str, object]:
    mirror = installer.build()
    vms = SERVERS[:count]
    extra = f"    dhcp: full\n    mirror: file://{mirror}\n    install_timeout: 600\n"
    with reference_lab(
        edit=lambda text: text.replace("    dhcp: full\n", extra),
        up_args=[arg for name in vms for arg in ("--vm", f"{name}:{firmware}")],
    ) as (workdir, env):
        labctl(workdir, env, "boot", "fetch")
        # The installed disks let in the inventory's keys (Ignition writes them): the
        # simulated lab's login key is listed there, as an operator lists theirs.
        inventory = workdir / "inventory.yaml"
        text = inventory.read_text()
        at = text.index("\n", text.index("    authorized_keys:")) + 1
        key = Path(env["LABCTL_SSH_IDENTITY"]).with_suffix(".pub").read_text().strip()
        inventory.write_text(f"{text[:at]}      - {key}\n{text[at:]}")
        start = time.perf_counter()
        seconds, out = labctl(workdir, env, "bootstrap", "--only", "os", "-o", "json")
        total = time.perf_counter() - start
        reports = {
            name: json.loads((workdir / ".labctl/boot/reports" / f"{name}.json").read_text())
            for name in vms
        }
        log = workdir / ".labctl/boot/requests.jsonl"
        answers: dict[str, list[float]] = {}
        for line in log.read_text().splitlines():
            record = json.loads(line)
            kind = record["path"].split("/")[1]
            answers.setdefault(kind, []).append(record["seconds"])
        again, _ = labctl(workdir, env, "bootstrap", "--only", "os", "-o", "json")
        installs = install_times(log)
        to_ssh = power_on_to_ssh(workdir, env, vms[0])
    return {
        "count": count,
        "install": total,
        "reports": {n: r["result"] for n, r in reports.items()},
        "answers": answers,
        "converged": again,
        "report": json.loads(out),
        "bootstrap_seconds": seconds,
        "installs": installs,
        "to_ssh": to_ssh,
    }


def install_times(log: Path) -> list[float]:
    """Each install's time in the VM, from its iPXE script's request to its report."""
    scripts: dict[str, float] = {}
    times = []
    for line in log.read_text().splitlines():
        record = json.loads(line)
        kind, _, mac = record["path"].strip("/").partition("/")
        if kind == "ipxe":
            scripts[mac] = record["time"]
        elif kind == "report" and mac in scripts:
            times.append(record["time"] - scripts.pop(mac))
    return times


def power_on_to_ssh(workdir: Path, env: dict[str, str], name: str) -> float:
    """``name`` off and on again by its BMC's hook; seconds from power-on to SSH."""
    state = workdir / ".labctl" / "sim"
    hook = [sys.executable, "-m", "labctl.sim.vm"]
    subprocess.run([*hook, "stop", name, str(state)], check=True, env=env)
    server = require_inventory(workdir / "inventory.yaml").server(name)
    address = next(a.address for nic in server.nics if nic.pxe for a in nic.addresses)
    ssh = [
        "ssh", "-i", env["LABCTL_SSH_IDENTITY"], "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={env['LABCTL_SSH_KNOWN_HOSTS']}", "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=2", f"{env.get('LABCTL_SSH_USER', 'core')}@{address}", "true",
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run([*hook, "start", name, str(state)], check=True, env=env)
    while subprocess.run(ssh, capture_output=True, check=False).returncode != 0:
        if time.perf_counter() - start > 300:
            raise SystemExit(f"{name} did not answer SSH on its installed disk in 300 s")
        time.sleep(0.5)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--firmware", choices=("bios", "uefi"), default="bios")
    args = parser.parse_args()
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    results = []
    with LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for count in args.nodes:
            results.append(one(count, args.firmware))
    print("| VM nodes | firmware | `bootstrap --only os` to all installed (s) | converged (s) |")
    print("|---|---|---|---|")
    for r in results:
        print(f"| {r['count']} | {args.firmware} | {r['install']:.1f} | {r['converged']:.2f} |")
    print()
    print("| VM nodes | each install in the VM, iPXE script to report (s) | power-on to SSH (s) |")
    print("|---|---|---|")
    for r in results:
        each = ", ".join(f"{t:.1f}" for t in r["installs"])  # type: ignore[attr-defined]
        print(f"| {r['count']} | {each} | {r['to_ssh']:.1f} |")
    print()
    print("| request | answers | median (ms) | max (ms) |")
    print("|---|---|---|---|")
    merged: dict[str, list[float]] = {}
    for r in results:
        for kind, values in r["answers"].items():  # type: ignore[attr-defined]
            merged.setdefault(kind, []).extend(values)
    for kind, values in sorted(merged.items()):
        median = statistics.median(values) * 1000
        print(f"| /{kind}/MAC | {len(values)} | {median:.2f} | {max(values) * 1000:.2f} |")


if __name__ == "__main__":
    main()
