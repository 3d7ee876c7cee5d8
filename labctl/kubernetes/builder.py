"""Builds the Kubernetes binaries of any version into the cache, on demand, with progress.

``labctl kubernetes build`` calls this for the version it is given (or the one an
inventory names). It asks the module proxy whether it serves the version (a sentence
naming the ones it does if not), generates the module in a work folder under the cache
(``<cache>/.work/v1.35.4``: go.mod, tools.go, go.sum from ``go mod tidy``), compiles
the commands there with go's output in ``build.log`` beside them, moves the result to
``<cache>/v1.35.4`` whole, and records the time in ``<cache>/builds.json``. No tracked
file is read or written: the pinned version of ``tools/kubernetes`` stays the set-up's.
This is one of the places labctl runs processes and reaches the network, as a driver
does; what it runs is decided by ``labctl/kubernetes/build.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from labctl import gobuild
from labctl.errors import LabctlError
from labctl.files import write_atomic
from labctl.kubernetes import build as b
from labctl.kubernetes.binaries import cache_root

Say = gobuild.Say


@dataclass(frozen=True)
class Plan:
    """What ``build`` would do for one version, before it does anything."""

    release: str
    dest: Path
    work: Path
    log: Path
    missing: tuple[str, ...]  # the commands the cache lacks; empty when built
    expectation: str

    def describe(self) -> str:
        if not self.missing:
            return f"Kubernetes {self.release} is built in {self.dest}"
        return (
            f"will build Kubernetes {self.release} ({', '.join(self.missing)}) into {self.dest}; "
            f"{self.expectation}; go's output goes to {self.log}"
        )


def plan(release: str) -> Plan:
    root = cache_root()
    dest = root / release
    work = root / ".work" / release
    missing = tuple(c for c in b.COMMANDS if not (dest / "bin" / c).is_file())
    if not (dest / ".stamp").is_file():
        missing = b.COMMANDS
    return Plan(
        release,
        dest,
        work,
        work / "build.log",
        missing,
        gobuild.expectation(gobuild.read_record(root), release),
    )


def check_served(release: str, proxy: str) -> None:
    """Refuse ``release`` unless ``proxy`` serves it, naming what its list names."""
    url = b.info_url(proxy, release)
    status, _ = gobuild.get(url)
    if status == 200:
        return
    listed_status, listed = gobuild.get(b.list_url(proxy))
    versions = b.parse_version_list(listed) if listed_status == 200 else []
    raise LabctlError(b.not_served(release, versions, proxy, f"HTTP {status} for {url}"))


def resolve(p: Plan, say: Say) -> Path:
    """Generate the work module for ``p.release`` and let go resolve its graph (go.sum);
    the work folder."""
    p.work.mkdir(parents=True, exist_ok=True)
    p.log.write_text("")
    say(f"[1/3] resolving the module graph of k8s.io/kubernetes {p.release} in {p.work}")
    answer = gobuild.go(["mod", "download", "-json", f"{b.MODULE}@{p.release}"], None, p.work)
    upstream = Path(json.loads(answer)["GoMod"]).read_text()
    write_atomic(p.work / "go.mod", b.go_mod(p.release, upstream).encode())
    write_atomic(p.work / "tools.go", b.tools_go().encode())
    gobuild.go(["mod", "tidy"], p.log, p.work)
    return p.work


def compile_into(p: Plan, say: Say) -> None:
    """Compile the missing commands and put them into the cache whole."""
    root = p.dest.parent
    tmp = root / f".{p.release}.tmp.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "bin").mkdir(parents=True)
    try:
        say(f"[2/3] compiling {', '.join(p.missing)} (go's output: {p.log})")
        pkgs = [f"{b.MODULE}/cmd/{c}" for c in p.missing]
        args = ["build", "-trimpath", "-ldflags", b.ldflags(p.release), "-o", f"{tmp}/bin/"]
        gobuild.go([*args, *pkgs], p.log, p.work)
        say(f"[3/3] installing into {p.dest}")
        stamp = b.stamp((p.work / "go.mod").read_text(), (p.work / "go.sum").read_text())
        (tmp / ".stamp").write_text(stamp + "\n")
        if p.dest.exists():
            # Keep what is there (the images made from the binaries, commands not rebuilt).
            for c in b.COMMANDS:
                if c not in p.missing and (p.dest / "bin" / c).exists():
                    os.replace(p.dest / "bin" / c, tmp / "bin" / c)
            if (p.dest / "images").exists():
                os.replace(p.dest / "images", tmp / "images")
            shutil.rmtree(p.dest)
        os.replace(tmp, p.dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build(release: str, say: Say, *, resolve_only: bool = False) -> Plan:
    """Build ``release`` unless the cache has it; ``resolve_only`` stops once go has
    resolved the module graph (nothing compiled, nothing installed)."""
    p = plan(release)
    say(p.describe())
    if not p.missing and not resolve_only:
        return p
    proxy = gobuild.goproxy()
    check_served(release, proxy)
    root = p.dest.parent
    with gobuild.locked(root / ".work" / f"{release}.lock", say, f"another build of {release}"):
        p = plan(release)  # another build may have finished it while this one waited
        if not p.missing and not resolve_only:
            say(p.describe())
            return p
        start = time.monotonic()
        resolve(p, say)
        if resolve_only:
            say(f"resolved: {p.work / 'go.mod'} and go.sum; nothing compiled")
            return p
        compile_into(p, say)
        seconds = round(time.monotonic() - start)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    built = gobuild.Built(seconds, gobuild.tree_size(p.dest), stamp)
    gobuild.add_to_record(root, release, built)
    say(f"built Kubernetes {release} in {seconds} s: {built.size_bytes // 2**20} MiB in {p.dest}")
    return plan(release)
