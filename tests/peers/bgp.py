"""Real BGP daemons for tests: FRR (Debian frr) and BIRD 1.6.8 in namespaces this test makes.

A switch namespace runs zebra, bgpd and staticd with a given frr.conf (vty
sockets in the test's own directory, so vtysh finds them from anywhere) in a
UTS namespace named like the switch; a node namespace runs BIRD 1.6 with a
given bird.cfg. Both sit on one veth pair. Everything is removed by name and
pid afterwards; namespace names carry a prefix unique to the run.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from labctl.programs import BIRD1

FRR = Path("/usr/lib/frr")


@dataclass(frozen=True)
class BgpPair:
    switch_ns: str
    node_ns: str
    vty_dir: Path
    zebra_pid: int
    bird_socket: Path
    birdc: str

    def vtysh(self, *commands: str) -> str:
        argv = ["nsenter", "--uts", f"--target={self.zebra_pid}", *self.vtysh_argv()]
        for c in commands:
            argv += ["-c", c]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    def vtysh_argv(self) -> list[str]:
        return ["vtysh", "--vty_socket", str(self.vty_dir)]

    def md5_failures(self) -> tuple[int, int]:
        """How many TCP segments the switch's and the node's kernels dropped for a wrong
        MD5 signature (RFC 2385; TcpExt's TCPMD5Failure of each namespace)."""
        return _md5_failures(self.switch_ns), _md5_failures(self.node_ns)

    def birdc_show(self, *words: str) -> str:
        argv = [self.birdc, "-s", str(self.bird_socket), "show", *words]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def available() -> str | None:
    """Why these peers cannot run here, or None."""
    if not (FRR / "bgpd").exists():
        return "FRR is not installed (Debian frr; scripts/setup.sh)"
    if not Path(BIRD1).exists():
        return f"BIRD 1.6 is not unpacked at {BIRD1} (scripts/setup.sh)"
    if os.geteuid() != 0:
        return "namespaces need root"
    return None


def _md5_failures(ns: str) -> int:
    argv = ["ip", "netns", "exec", ns, "cat", "/proc/net/netstat"]
    lines = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split(), strict=True))["TCPMD5Failure"])
    raise AssertionError(f"no TcpExt counters in {ns}'s /proc/net/netstat")


def _exited(pid: int) -> bool:
    """Whether ``pid`` has exited: gone, or a zombie (it has let go of everything and
    waits for this machine's init, which reaps it a second or more later)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextmanager
def bgp_pair(
    workdir: Path,
    hostname: str,
    frr_conf: str,
    bird_cfg: str,
    switch_address: str,
    node_address: str,
    bgpd_snmp: Path | None = None,
    prefix: str = "c13",
) -> Iterator[BgpPair]:
    """``bgpd_snmp``: the directory of FRR's own SNMP settings (``sim/bgp_agent.py``);
    bgpd then loads its AgentX module (``-M snmp``) and reads them."""
    tag = prefix + secrets.token_hex(2)
    sw, node = f"{tag}-sw", f"{tag}-n"
    # FRR drops to the frr user, which cannot enter pytest's private (0700) tmp dirs.
    vty = Path(tempfile.mkdtemp(prefix=f"{tag}-frr-"))
    vty.chmod(0o755)
    shutil.chown(vty, "frr", "frr")
    (vty / "frr.conf").write_text(frr_conf)
    shutil.chown(vty / "frr.conf", "frr", "frr")
    (workdir / "bird.cfg").write_text(bird_cfg)
    sock = workdir / "bird.ctl"
    made: list[str] = []
    pids: list[int] = []
    bird: subprocess.Popen[bytes] | None = None
    try:
        for ns in (sw, node):
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("link", "add", f"{tag}a", "netns", sw, "type", "veth", "peer", "name",
            f"{tag}b", "netns", node)  # fmt: skip
        _ip("-n", sw, "addr", "add", switch_address, "dev", f"{tag}a")
        _ip("-n", node, "addr", "add", node_address, "dev", f"{tag}b")
        _ip("-n", sw, "link", "set", f"{tag}a", "up")
        # A switch routes: FRR's running config says "no ip forwarding" otherwise.
        for key in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"):
            subprocess.run(["ip", "netns", "exec", sw, "sysctl", "-qw", f"{key}=1"], check=True)
        _ip("-n", node, "link", "set", f"{tag}b", "up")
        snmp = f"env SNMPCONFPATH={bgpd_snmp} " if bgpd_snmp else ""
        start = "; ".join(
            f"{snmp if d == 'bgpd' else ''}{FRR}/{d} -d -u frr -g frr -z {vty}/zserv.api "
            f"-i {vty}/{d}.pid --vty_socket {vty} -f {vty}/frr.conf --log file:{vty}/{d}.log"
            f"{' -M snmp' if d == 'bgpd' and bgpd_snmp else ''}"
            for d in ("zebra", "bgpd", "staticd")
        )
        subprocess.run(
            ["ip", "netns", "exec", sw, "unshare", "--uts", "sh", "-c",
             f"hostname {hostname}; {start}"],
            check=True, capture_output=True,
        )  # fmt: skip
        for d in ("zebra", "bgpd", "staticd"):
            pids.append(int((vty / f"{d}.pid").read_text()))
        bird = subprocess.Popen(
            ["ip", "netns", "exec", node, BIRD1, "-f", "-c", str(workdir / "bird.cfg"),
             "-s", str(sock)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        pids.append(bird.pid)
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield BgpPair(sw, node, vty, pids[0], sock, str(Path(BIRD1).with_name("birdc")))
    finally:
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        # BIRD is this process's child, reaped here; FRR's daemons (-d) are init's.
        deadline = time.monotonic() + 5
        if bird is not None:
            with suppress(subprocess.TimeoutExpired):
                bird.wait(timeout=5)
        for pid in pids:
            if bird is not None and pid == bird.pid:
                continue
            while time.monotonic() < deadline and not _exited(pid):
                time.sleep(0.05)
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(vty, ignore_errors=True)
