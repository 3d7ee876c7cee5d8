"""A real one-monitor Ceph cluster on loopback, from this machine's Debian Ceph packages.

The ceph layer's pools plan only talks to the monitors (pools are OSD-map entries, made
and changed by monitor commands, answered once committed), so a monitor alone, with no
manager and no OSD, answers its node scripts as a whole cluster's monitors do: the same
commands, the same refusals, the same commits. Its PG limit is raised for want of OSDs
(Ceph counts at least three); the simulated lab's e2e tests run the full cluster. The
monitor is started here and stopped here by its pid, also when the test failed.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.peers.etcd import free_port, require
from tests.peers.kubeapi import stop

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class CephMon:
    conf: Path
    pid: int

    def ceph(self, *args: str) -> str:
        """The ceph CLI's answer (stdout); a failure raises, with its stderr."""
        done = subprocess.run(
            ["ceph", "-c", str(self.conf), *args], capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            raise RuntimeError(f"ceph {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout


@contextmanager
def running_ceph_mon(root: Path) -> Iterator[CephMon]:
    for binary in ("ceph-mon", "monmaptool", "ceph-authtool", "ceph"):
        require(binary, "ceph")
    root.mkdir(parents=True, exist_ok=True)
    fsid = Path("/proc/sys/kernel/random/uuid").read_text().strip()
    addr = f"[v2:{LOOPBACK}:{free_port(LOOPBACK)},v1:{LOOPBACK}:{free_port(LOOPBACK)}]"
    conf = root / "ceph.conf"
    conf.write_text(
        "[global]\n"
        f"fsid = {fsid}\n"
        f"mon host = {addr}\n"
        f"keyring = {root}/admin.keyring\n"
        f"log file = {root}/$name.log\n"
        # One socket per process: CLIs run at once (the pools step's) must not share one.
        f"admin socket = {root}/$name.$pid.asok\n"
        f"run dir = {root}\n"
        f"mon data = {root}/mon\n"
        "mon max pg per osd = 4096\n"
        "auth allow insecure global id reclaim = false\n"
    )
    mon, admin = root / "mon.keyring", root / "admin.keyring"
    steps = [
        ["ceph-authtool", "--create-keyring", str(mon), "--gen-key", "-n", "mon.",
         "--cap", "mon", "allow *"],
        ["ceph-authtool", "--create-keyring", str(admin), "--gen-key", "-n", "client.admin",
         "--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mgr", "allow *"],
        ["ceph-authtool", str(mon), "--import-keyring", str(admin)],
        ["monmaptool", "--create", "--addv", "a", addr, "--fsid", fsid, str(root / "monmap")],
        ["ceph-mon", "-c", str(conf), "--mkfs", "-i", "a", "--monmap", str(root / "monmap"),
         "--keyring", str(mon)],
    ]  # fmt: skip
    for argv in steps:
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
    log = (root / "mon.out").open("wb")
    proc = subprocess.Popen(
        ["ceph-mon", "-f", "-c", str(conf), "-i", "a"], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        cluster = CephMon(conf, proc.pid)
        deadline = time.monotonic() + 60
        while True:
            try:
                cluster.ceph("--connect-timeout", "5", "mon", "stat")
                break
            except (RuntimeError, subprocess.TimeoutExpired):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"ceph-mon did not answer: {(root / 'mon.out').read_text()[-2000:]}"
                    ) from None
                time.sleep(0.2)
        yield cluster
    finally:
        stop(proc)
        log.close()
