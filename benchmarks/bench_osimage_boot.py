"""Time the stand-in OS image from power-on to SSH on its own disk (qemu, software emulation).

Usage: python benchmarks/bench_osimage_boot.py [--runs 3]

Each run copies the cached image (``labctl.sim.osimage``), plants a host key, a user
key and a ``.network`` on ``root`` as an install's Ignition would, starts qemu as a VM
node's is started (``-accel tcg``, q35, 1 vCPU, 512 MiB, SeaBIOS, virtio-scsi disk;
qemu's user network instead of the lab's tap), and times from qemu's start to the init's
``sshd up`` line on the serial console and to the first SSH command answered (pinned to
the planted host key). Takes the machine-wide sim lock (/tmp/labctl-sim.lock) itself.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from labctl.sim import osimage

LOCK = Path("/tmp/labctl-sim.lock")
MAC = "52:54:00:6c:61:62"


def one(work: Path) -> dict[str, float]:
    disk = work / "disk.raw"
    shutil.copyfile(osimage.build(), disk)
    for name in ("host", "user"):
        (work / name).unlink(missing_ok=True)
        (work / f"{name}.pub").unlink(missing_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / name)])
    network = work / "eth.network"
    network.write_text(f"[Match]\nMACAddress={MAC}\n[Network]\nAddress=10.0.2.15/24\n")
    osimage.plant(
        disk,
        {
            "/etc/ssh/ssh_host_ed25519_key": (work / "host", 0o600),
            "/home/core/.ssh/authorized_keys.d/ignition": (work / "user.pub", 0o644),
            "/etc/systemd/network/00-labctl-eth.network": (network, 0o644),
        },
        ("/home/core/.ssh", "/home/core/.ssh/authorized_keys.d"),
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    console, pidfile = work / "console.log", work / "qemu.pid"
    console.unlink(missing_ok=True)
    known = work / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {(work / 'host.pub').read_text()}")
    start = time.monotonic()
    subprocess.run(osimage.boot_argv(disk, port, MAC, console, pidfile), check=True)
    pid = int(pidfile.read_text())
    try:
        sshd = None
        while time.monotonic() - start < 600:
            text = console.read_text(errors="replace") if console.exists() else ""
            if sshd is None and "sshd up" in text:
                sshd = time.monotonic() - start
            if sshd is not None:
                done = subprocess.run(
                    ["ssh", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known}",
                     "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10",
                     "-i", str(work / "user"), "-p", str(port), "core@127.0.0.1",
                     "cat /etc/os-release"],
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
                if done.returncode == 0 and osimage.RELEASE in done.stdout:
                    return {"sshd_up_s": sshd, "ssh_answered_s": time.monotonic() - start}
            time.sleep(0.5)
        raise SystemExit(f"no SSH within 600 s; console:\n{text[-2000:]}")
    finally:
        os.kill(pid, 15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    osimage.build()  # built (or found) before the clock and the lock
    with LOCK.open("a") as lock, tempfile.TemporaryDirectory() as tmp:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runs = [one(Path(tmp)) for _ in range(args.runs)]
    summary = {
        key: {"median": round(statistics.median(r[key] for r in runs), 1),
              "runs": [round(r[key], 1) for r in runs]}
        for key in runs[0]
    }  # fmt: skip
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
