"""The host's inotify limits, raised for the simulated nodes while a lab is up.

Every simulated node runs on this machine's one kernel, and inotify's limits are the
kernel's per user (``fs.inotify.max_user_instances``, 128 by default), so every node's
daemons count against one budget a real lab has per server. A kubelet takes about six
instances (cAdvisor, its certificate and manifest watchers), containerd one, each
control-plane component a few. At 16 servers the 128 ran out: the third control-plane
node's kubelet exited at start ("Failed to start cAdvisor" err="inotify_init: too many
open files") and the kubernetes layer waited its 300 s for an API server nothing ran.

So ``sim up`` raises the limits to what the lab's node count needs (never lowers them)
and records what it found; ``sim down`` puts the old values back if they are still the
ones it set (someone else's later change is left alone). This is the simulated lab's
difference only: a real node has its own kernel and the core never asks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROC = Path("/proc/sys/fs/inotify")
# What one simulated node may take (measured: 90 instances for 16 kubelets, 16 for their
# containerds, 4 for each API server) with room for podman, Ceph and Prometheus; the
# kernel's default is kept for the rest of the machine.
BASE = {"max_user_instances": 128, "max_user_watches": 65536}
PER_NODE = {"max_user_instances": 16, "max_user_watches": 8192}
RECORD_KEY = "inotify"


def wanted(nodes: int) -> dict[str, int]:
    """The limits a lab of ``nodes`` simulated machines (servers and switches) needs."""
    return {name: BASE[name] + PER_NODE[name] * nodes for name in BASE}


def raise_for(nodes: int, record: dict[str, Any], proc: Path = PROC) -> list[str]:
    """Raise each limit below what ``nodes`` need; remember the first value found in
    ``record`` (a lab that grows keeps the value from before its first ``up``).
    Returns what it changed, as sentences."""
    kept: dict[str, dict[str, int]] = record.setdefault(RECORD_KEY, {})
    said = []
    for name, need in wanted(nodes).items():
        path = proc / name
        have = int(path.read_text())
        if have >= need:
            continue
        path.write_text(f"{need}\n")
        kept.setdefault(name, {"found": have})["set"] = need
        said.append(f"fs.inotify.{name} {have} -> {need}")
    return said


def restore(record: dict[str, Any], proc: Path = PROC) -> None:
    """Put back what ``raise_for`` found, where the value is still the one it set."""
    for name, values in record.get(RECORD_KEY, {}).items():
        path = proc / name
        try:
            if int(path.read_text()) == values["set"]:
                path.write_text(f"{values['found']}\n")
        except (OSError, ValueError, KeyError):
            continue  # a value changed or gone since: not ours to put back
