"""A two-namespace network for boot service tests: the boot server and one booting "NIC".

The server side holds the inventory's boot address; the client side's eth0
carries whatever MAC a test gives it, and busybox (static) plays the firmware:
``udhcpc`` for DHCP with the options PXE and iPXE send, ``tftp`` and ``wget``.
Names carry the test's pid, and everything is removed by name at the end.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BUSYBOX = "/bin/busybox"

# udhcpc runs this on a lease; it writes what DHCP said, one KEY=value a line.
LEASE_SCRIPT = """#!/bin/sh
[ "$1" = bound ] || exit 0
{ echo "ip=$ip"; echo "boot_file=$boot_file"; echo "siaddr=$siaddr"; } > "$LEASE_OUT"
/bin/busybox ip addr flush dev "$interface"
/bin/busybox ip addr add "$ip/$mask" dev "$interface"
"""


@dataclass
class BootNet:
    server: str
    client: str
    workdir: Path

    def client_run(
        self, *argv: str, timeout: float = 30, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.client, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )

    def set_mac(self, mac: str) -> None:
        ip = ["ip", "-n", self.client, "link", "set", "eth0"]
        subprocess.run([*ip, "down"], check=True)
        subprocess.run([*ip, "address", mac], check=True)
        subprocess.run([*ip, "up"], check=True)

    def set_address(self, cidr: str) -> None:
        subprocess.run(["ip", "-n", self.client, "addr", "flush", "dev", "eth0"], check=True)
        subprocess.run(["ip", "-n", self.client, "addr", "add", cidr, "dev", "eth0"], check=True)

    def dhcp(self, *options: str) -> dict[str, str]:
        """One DHCP exchange from the client with extra ``-x`` options; what it was told."""
        script = self.workdir / "lease.sh"
        script.write_text(LEASE_SCRIPT)
        script.chmod(0o755)
        out = self.workdir / "lease.out"
        out.unlink(missing_ok=True)
        extra = [arg for option in options for arg in ("-x", option)]
        self.client_run(
            BUSYBOX,
            "udhcpc",
            "-i",
            "eth0",
            "-n",
            "-q",
            "-f",
            "-t",
            "3",
            "-T",
            "1",
            "-s",
            str(script),
            *extra,
            env={"LEASE_OUT": str(out)},
        )
        if not out.exists():
            return {}
        return dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)


# The simulated lab's e2e fixture checks the host's namespaces are as it found them;
# namespaces made here meanwhile would fail that check, so they wait for its lock.
HOST_LOCK = Path("/run/labctl/e2e-lab.lock")


@contextmanager
def boot_net(workdir: Path, server_address: str, prefix: int) -> Iterator[BootNet]:
    HOST_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with HOST_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield from _boot_net(workdir, server_address, prefix)


def _boot_net(workdir: Path, server_address: str, prefix: int) -> Iterator[BootNet]:
    tag = f"labos{os.getpid()}"
    net = BootNet(f"{tag}-srv", f"{tag}-cli", workdir)
    try:
        for ns in (net.server, net.client):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        subprocess.run(
            [
                "ip", "-n", net.server, "link", "add", "eth0", "type", "veth",
                "peer", "name", "eth0", "netns", net.client,
            ],
            check=True,
        )  # fmt: skip
        subprocess.run(
            ["ip", "-n", net.server, "addr", "add", f"{server_address}/{prefix}", "dev", "eth0"],
            check=True,
        )
        subprocess.run(["ip", "-n", net.server, "link", "set", "eth0", "up"], check=True)
        subprocess.run(["ip", "-n", net.client, "link", "set", "eth0", "up"], check=True)
        yield net
    finally:
        for ns in (net.server, net.client):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
            for pid in pids.stdout.split():
                subprocess.run(["kill", "-9", pid], check=False)
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
