"""A Debian root of another suite with some packages installed, made once on this machine.

The simulated lab makes its Ceph image from Debian's Ceph packages (``ceph_image``).
This machine's Debian 12 has Ceph 16.2.15 only; a lab at another Ceph release a Debian
suite ships (trixie: 18.2.7) gets its image from a root of that suite holding the
packages, made here once with debootstrap (minbase) and then the suite's own apt in a
chroot, which installs them in the order their pre-dependencies need (debootstrap's
``--include`` installs them in one dpkg call, which fails on trixie: systemd
pre-depends on libsystemd-shared unconfigured in the same call). No service starts
(``policy-rc.d`` says no while apt runs). A caller may finish the root before it is
named (``finish``: what apt alone cannot do). The root is made beside its final name and
renamed, so it is whole or absent; one process makes it at a time (a lock beside it),
and how long it took is kept beside it, for the next run's progress line. The mirror
is deb.debian.org unless ``LABCTL_DEBIAN_MIRROR`` names another.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from labctl.errors import LabctlError

MIRROR_VARIABLE = "LABCTL_DEBIAN_MIRROR"
MIRROR = "http://deb.debian.org/debian"
POLICY = "#!/bin/sh\n# labctl: no service starts while the root is made\nexit 101\n"
FIRST_TIME = "about 70 s and 900 MiB the first time (measured: 2026-12-07, deb.debian.org)"


def mirror(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """The Debian mirror the root is made from. Pure."""
    return environ.get(MIRROR_VARIABLE, "").strip() or MIRROR


def root_path(image_root: Path, suite: str, purpose: str) -> Path:
    """Where the root of ``suite`` made for ``purpose`` lives under the image cache. Pure."""
    return image_root / "roots" / f"debian-{suite}-{purpose}"


def timing_path(root: Path) -> Path:
    return root.with_name(root.name + ".seconds")


def announcement(root: Path, suite: str, packages: Iterable[str], source: str) -> str:
    """The progress line said before the root is made: what, from where, how long. Pure
    but for reading how long it took last time."""
    timing = timing_path(root)
    last = f"it took {timing.read_text().strip()} s last time" if timing.exists() else FIRST_TIME
    return (
        f"making a Debian {suite} root with {', '.join(packages)} (debootstrap and apt from "
        f"{source}) at {root}: {last}"
    )


def _mounts_under(folder: Path) -> list[str]:
    prefix = str(folder) + "/"
    with open("/proc/self/mounts") as handle:
        points = [line.split()[1] for line in handle]
    return sorted((p for p in points if p.startswith(prefix)), reverse=True)


def _discard(partial: Path) -> None:
    """A half-made root gone, after unmounting what debootstrap may have left in it."""
    if not partial.exists():
        return
    for point in _mounts_under(partial):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    if _mounts_under(partial):
        raise LabctlError(f"{partial} still has mounts; unmount them and run again")
    shutil.rmtree(partial)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# What a ``finish`` is given: run(argv, what it does, folder to run in) into the log.
Runner = Callable[[list[str], str, Path | None], None]


def _run(argv: list[str], log: Path, what: str, cwd: Path | None = None) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    with log.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        done = subprocess.run(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, check=False
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise LabctlError(f"{what} failed (exit {done.returncode}; whole log: {log}):\n{tail}")


def make(
    image_root: Path,
    suite: str,
    purpose: str,
    packages: tuple[str, ...],
    progress: Callable[[str], None],
    finish: Callable[[Path, Runner], None] | None = None,
) -> Path:
    """The root of ``suite`` holding ``packages`` (and what they depend on), made unless
    it is there; ``finish`` is given the root before it is named, and a runner."""
    root = root_path(image_root, suite, purpose)
    if root.is_dir():
        return root
    with _locked(root.with_name(root.name + ".lock")):
        if root.is_dir():  # another process made it while this one waited
            return root
        if shutil.which("debootstrap") is None:
            raise LabctlError(
                f"the Debian {suite} root for {purpose} is made with debootstrap, which is "
                "not installed: apt-get install debootstrap (scripts/setup.sh does)"
            )
        source = mirror()
        progress(announcement(root, suite, packages, source))
        partial = root.with_name(f".{root.name}.partial")
        log = root.with_name(root.name + ".log")
        _discard(partial)
        log.write_text("")
        start = time.monotonic()
        try:
            _run(
                ["debootstrap", "--variant=minbase", suite, str(partial), source],
                log,
                f"debootstrap of Debian {suite} from {source}",
            )
            policy = partial / "usr/sbin/policy-rc.d"
            policy.write_text(POLICY)
            policy.chmod(0o755)
            _run(
                ["chroot", str(partial), "apt-get", "install", "-y", "-q",
                 "--no-install-recommends", *packages],
                log,
                f"apt-get install {' '.join(packages)} in the Debian {suite} root",
            )  # fmt: skip
            if finish is not None:
                finish(partial, lambda argv, what, cwd: _run(argv, log, what, cwd))
            _run(["chroot", str(partial), "apt-get", "clean"], log, "apt-get clean")
            policy.unlink()
            partial.rename(root)
        finally:
            _discard(partial)
        seconds = round(time.monotonic() - start)
        timing_path(root).write_text(f"{seconds}\n")
        progress(f"made the Debian {suite} root at {root} in {seconds} s")
        return root
