"""Simulated disks: each OSD disk of the inventory a sparse file, at its own path on its node.

A simulated node shares the host's ``/dev``, so ``/dev/sdb`` cannot simply be
made there: every node would see every other node's disk (and the host's).
Instead each node with OSD disks gets ``/dev`` as an overlay of the host's
(device nodes read through, new entries kept in the node's own directory) and
each disk is a sparse file under ``STATE/nodes/NAME/disks/`` bind-mounted at
its inventory path: ``/dev/sdb`` of wind is wind's file and nobody else's, and
it keeps its data across the node's power cycles, as a disk does.

The overlay hides the host's ``/dev/pts`` and ``/dev/shm`` mounts, so the
node gets its own. The size is ``LABCTL_SIM_DISK_SIZE`` (bytes, or with a
K/M/G/T suffix), 4G by default: the inventory's 900 GB would only cost
bluestore's metadata time here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

from labctl.errors import LabctlError
from labctl.inventory.model import Inventory

DEFAULT_SIZE = "4G"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
INDEX = "disks.json"


def disk_size(text: str | None = None) -> int:
    value = (text if text is not None else os.environ.get("LABCTL_SIM_DISK_SIZE")) or DEFAULT_SIZE
    found = re.fullmatch(r"\s*([0-9]+)\s*([KMGT]?)i?B?\s*", value, re.IGNORECASE)
    if not found:
        raise LabctlError(
            f"LABCTL_SIM_DISK_SIZE is {value!r}; give bytes or a size like 2G or 512M"
        )
    size = int(found.group(1)) * _UNITS[found.group(2).upper()]
    if size < 2**30:
        raise LabctlError(f"LABCTL_SIM_DISK_SIZE is {value}; a Ceph OSD needs at least 1G")
    return size


def _file_name(device: str) -> str:
    return device.removeprefix("/dev/").replace("/", "_")


def make(inventory: Inventory, node_dirs: dict[str, Path], size: int) -> None:
    """A sparse file per OSD disk in each node's directory, and the index boot reads."""
    for server in inventory.servers:
        disks = [d for d in server.disks if d.role == "osd"]
        if not disks or server.name not in node_dirs:
            continue
        folder = node_dirs[server.name] / "disks"
        folder.mkdir(parents=True, exist_ok=True)
        index = {}
        for disk in disks:
            path = folder / _file_name(disk.device)
            if not path.exists():
                with path.open("wb") as handle:
                    handle.truncate(size)
            index[disk.device] = path.name
        (node_dirs[server.name] / INDEX).write_text(json.dumps(index, indent=2))


def boot_lines(node_dir: Path, mount: str) -> list[str]:
    """Shell lines for the node's boot: its own /dev with its disks at their paths.

    ``mount`` is where the node's directory is seen inside the node. Nothing
    when the node has no disks (its /dev stays the host's, as before).
    """
    index_path = node_dir / INDEX
    if not index_path.exists():
        return []
    index: dict[str, str] = json.loads(index_path.read_text())
    upper, work = f"{mount}/upper/dev", f"{mount}/work/dev"
    lines = [
        f"mkdir -p {upper} {work}",
        f"mount -t overlay overlay -o lowerdir=/dev,upperdir={upper},workdir={work} /dev",
        "mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts",
        "ln -sf pts/ptmx /dev/ptmx",
        "mount -t tmpfs -o mode=1777 tmpfs /dev/shm",
    ]
    for device, name in index.items():
        q = shlex.quote(device)
        lines += [
            f"mkdir -p $(dirname {q})",
            f"[ -f {q} ] || : > {q}",
            f"mount --bind {shlex.quote(f'{mount}/disks/{name}')} {q}",
        ]
    return lines
