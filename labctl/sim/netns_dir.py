"""/run/netns as it was: the first `ip netns add` on a machine leaves a mount behind.

iproute2 binds /run/netns onto itself (shared) the first time a named namespace is
made, and never undoes it. Whoever makes namespaces takes a snapshot first and
restores it after deleting them, so the host is left as it was.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

NETNS_DIR = Path("/run/netns")


def mounted(path: Path = NETNS_DIR) -> bool:
    # Not os.path.ismount: a directory bound onto itself, on its parent's device,
    # looks to ismount like a plain directory.
    mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
    return any(line.split()[4] == str(path) for line in mountinfo)


def snapshot() -> dict[str, bool]:
    return {"existed": NETNS_DIR.exists(), "mounted": mounted()}


def restore(before: dict[str, bool] | None) -> None:
    """Unmount (and remove) /run/netns if it was not there before and nobody uses it now."""
    if before is None or before["mounted"] or not mounted():
        return
    if any(NETNS_DIR.iterdir()):
        return  # another lab's or tool's namespaces live there now
    subprocess.run(["umount", str(NETNS_DIR)], capture_output=True, check=False)
    if not before["existed"]:
        with contextlib.suppress(OSError):
            NETNS_DIR.rmdir()
