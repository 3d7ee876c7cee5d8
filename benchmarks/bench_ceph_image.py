"""Time the simulated lab's Ceph images: the Debian root a release needs, the archive, the store.

Usage (root): python benchmarks/bench_ceph_image.py [--version 18.2.7] [--fresh]

What `labctl sim up` pays for a Ceph image (labctl/sim/ceph_image.py): for a release
another Debian suite ships (18.2.7: trixie), the root made once with debootstrap and
apt (labctl/sim/debian_root.py); then the image's archive written from the packages'
files; then its read-only podman store. Each is timed twice: the first call (what a
machine without the cache pays) and the second (cached: nothing is made). Without
``--fresh`` the cache is the one the lab uses (/var/cache/labctl/container-images), so
a first call there may find the work done already (the figures say so); ``--fresh``
makes everything in a temporary folder (network: the Debian mirror; ~1.3 GiB for
18.2.7) and removes it after.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from labctl.sim import ceph_image, debian_root
from labctl.sim import engine as sim_engine


def timed(image_root: Path, name: str, version: str) -> dict[str, float]:
    said: list[str] = []
    start = time.monotonic()
    archive = ceph_image.build(name, image_root, version, said.append)
    built = time.monotonic()
    ceph_image.store(name, archive)
    stored = time.monotonic()
    root = next((s for s in said if s.startswith("made the Debian")), None)
    root_seconds = float(root.rsplit(" in ", 1)[1].split()[0]) if root else 0.0
    return {
        "root (debootstrap + apt)": root_seconds,
        "archive": round(built - start - root_seconds, 1),
        "store (podman load)": round(stored - built, 1),
        "total": round(stored - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="18.2.7")
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    name = f"quay.io/ceph/ceph:v{args.version}"
    work = Path(tempfile.mkdtemp(prefix="bench-ceph-image-")) if args.fresh else None
    image_root = work or sim_engine.image_dir()
    suite = ceph_image.check(name, args.version)
    if suite:
        made = debian_root.root_path(image_root, suite, "ceph").is_dir()
        print(f"{name}: from Debian {suite}; root {'cached' if made else 'to make'}")
    try:
        for call in ("first", "second"):
            figures = timed(image_root, name, args.version)
            print(f"{call} call: " + ", ".join(f"{k} {v} s" for k, v in figures.items()))
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
