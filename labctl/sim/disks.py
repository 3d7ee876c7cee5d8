"""Simulated disks: each OSD disk of the inventory a sparse file, at its own path on its node.

A simulated node shares the host's ``/dev``, so ``/dev/sdb`` cannot simply be
made there: every node would see every other node's disk (and the host's).
Instead each node with OSD disks gets ``/dev`` as an overlay of the host's
(device nodes read through, new entries kept in the node's own directory) and
each disk is a sparse file under ``STATE/nodes/NAME/disks/`` bind-mounted at
its kernel name: ``/dev/sdb`` of wind is wind's file and nobody else's, and
it keeps its data across the node's power cycles, as a disk does.

Each disk also has the identity a real one has, as udev shows it: links in the
node's own ``/dev/disk/by-id`` (a tmpfs, so the host's links stay out), a
``wwn-0x…`` and an ``ata-…_SERIAL`` name pointing at its kernel name. The WWN
and serial are the inventory's when it gives them, else made up from the server
and device; a disk the inventory names by ``/dev/disk/by-id/…`` gets that link
and the first free ``/dev/sdX``. The identity belongs to the file, the kernel
name to where it is mounted: ``rename`` moves kernel names the way a reinstall
does, and the links follow the disks, as udev's do.

The overlay hides the host's ``/dev/pts`` and ``/dev/shm`` mounts, so the
node gets its own. The size is ``LABCTL_SIM_DISK_SIZE`` (bytes, or with a
K/M/G/T suffix), 4G by default: the inventory's 900 GB would only cost
bluestore's metadata time here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import string
from pathlib import Path
from typing import Any

from labctl.errors import LabctlError
from labctl.inventory.model import BY_ID, Disk, Inventory

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


def identity(server: str, disk: Disk) -> tuple[str, str]:
    """The disk's (wwn, serial): the inventory's, or made up from where it is."""
    digest = hashlib.sha256(f"{server}:{disk.device}".encode()).hexdigest()
    wwn = disk.wwn or f"0x5000c500{digest[:8]}"
    if disk.device.startswith(BY_ID + "wwn-") and not disk.wwn:
        wwn = disk.device.removeprefix(BY_ID + "wwn-")
    return wwn, disk.serial or f"LSIM{digest[8:16].upper()}"


def _links(server: str, disk: Disk) -> list[str]:
    wwn, serial = identity(server, disk)
    links = [f"wwn-{wwn}", f"ata-LABCTL_SIM_DISK_{serial}"]
    if disk.by_id:
        name = disk.device.removeprefix(BY_ID)
        links = [name, *(x for x in links if x != name)]
    return links


def make(inventory: Inventory, node_dirs: dict[str, Path], size: int) -> None:
    """A sparse file per OSD disk in each node's directory, and the index boot reads.

    The index lists each disk's file, kernel name and by-id links; a kernel name
    the index already gives a disk (``rename`` moved it) is kept.
    """
    for server in inventory.servers:
        disks = [d for d in server.disks if d.role == "osd"]
        if not disks or server.name not in node_dirs:
            continue
        folder = node_dirs[server.name] / "disks"
        folder.mkdir(parents=True, exist_ok=True)
        index_path = node_dirs[server.name] / INDEX
        before = _read(index_path)
        kernel_of = {e["file"]: e["kernel"] for e in before}
        taken = {d.device for d in server.disks if not d.by_id}
        entries = []
        for disk in disks:
            path = folder / _file_name(disk.device)
            if not path.exists():
                with path.open("wb") as handle:
                    handle.truncate(size)
            kernel = kernel_of.get(path.name) or (None if disk.by_id else disk.device)
            if kernel is None:
                kernel = next(
                    f"/dev/sd{c}" for c in string.ascii_lowercase if f"/dev/sd{c}" not in taken
                )
            taken.add(kernel)
            entries.append(
                {"file": path.name, "kernel": kernel, "links": _links(server.name, disk)}
            )
        index_path.write_text(json.dumps(entries, indent=2))


def _read(index_path: Path) -> list[dict[str, Any]]:
    if not index_path.exists():
        return []
    found = json.loads(index_path.read_text())
    return found if isinstance(found, list) else []


def rename(node_dir: Path, moves: dict[str, str]) -> None:
    """Give disks other kernel names at the node's next boot, as a reinstall can.

    ``moves`` maps a kernel name to the one its disk gets (``{"/dev/sdb":
    "/dev/sdc", "/dev/sdc": "/dev/sdb"}`` swaps two); the by-id links follow
    the disks.
    """
    index_path = node_dir / INDEX
    entries = _read(index_path)
    for entry in entries:
        entry["kernel"] = moves.get(entry["kernel"], entry["kernel"])
    index_path.write_text(json.dumps(entries, indent=2))


def boot_tables(node_dir: Path, mount: str) -> tuple[str, str]:
    """What the node's boot (labctl/sim/node-boot.sh) reads to give the node its own
    /dev: ``KERNEL-NAME BLOB`` per disk, and udev's ``LINK TARGET`` per by-id name.

    ``mount`` is where the node's directory is seen inside the node. Both empty when
    the node has no disks (its /dev stays the host's, as before).
    """
    disks, links = [], []
    by_id = BY_ID.rstrip("/")
    for entry in _read(node_dir / INDEX):
        kernel = entry["kernel"]
        disks.append(f"{kernel} {mount}/disks/{entry['file']}\n")
        target = os.path.relpath(kernel, by_id)
        links += [f"{by_id}/{link} {target}\n" for link in entry["links"]]
    return "".join(disks), "".join(links)
