"""Power feeds: what a PDU outlet switch does to the server behind it.

``python -m labctl.sim.feeds SERVER STATE_DIR`` runs after any outlet feeding
SERVER changes. With every feeding outlet off, the server is dark: its node
and its BMC stop. With one back on, the BMC starts again, and the node too
when the BMC's last power state was on (the usual "restore last state" policy).

A server's outlets are often switched at once (two PSUs on two PDUs), so two of these
may run together for one server: they take the server's lock in turn, or both would
find its BMC and node down and start two of each, the node's pid file left naming the
one that failed (its BMC then said off while the other answered SSH).
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from pathlib import Path

from labctl.sim import node as sim_node
from labctl.sim.process import ManagedProcess
from labctl.sim.record import read_record


def fed(state: Path, server: str) -> bool:
    feeds: dict[str, list[list[object]]] = json.loads((state / "feeds.json").read_text())
    for pdu, outlet in feeds.get(server, []):
        table = state / "pdus" / str(pdu) / "outlets.json"
        # No table yet: no outlet was ever switched, and every outlet starts on.
        outlets = json.loads(table.read_text()) if table.exists() else {}
        if outlets.get(str(outlet), True):
            return True
    return False


def _bmc_pid(state: Path, server: str) -> int | None:
    daemon = state / "bmcs" / server / "daemon.pid"
    if daemon.exists():
        return int(daemon.read_text())
    pid: int | None = read_record(state)["pids"].get(f"bmc:{server}")
    return pid


def apply(state: Path, server: str) -> None:
    bmc_dir = state / "bmcs" / server
    with (bmc_dir / "feeds.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        _apply(state, server, bmc_dir)


def _apply(state: Path, server: str, bmc_dir: Path) -> None:
    pid = _bmc_pid(state, server)
    bmc_up = pid is not None and ManagedProcess(pid).running()
    if not fed(state, server):
        sim_node.stop(state, server)
        if bmc_up and pid is not None:
            ManagedProcess(pid).stop(timeout=3.0)
        return
    if not bmc_up:
        argv = json.loads((bmc_dir / "argv.json").read_text())
        log = (bmc_dir / argv.get("log", "ipmi_sim.log")).open("ab")
        process = subprocess.Popen(
            argv["argv"], env=argv["env"], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True,
        )  # fmt: skip
        (bmc_dir / "daemon.pid").write_text(str(process.pid))
    power = bmc_dir / "power"
    if power.exists() and power.read_text().strip() == "on":
        sim_node.start(state, server)


if __name__ == "__main__":
    apply(Path(sys.argv[2]), sys.argv[1])
