"""Builds etcd and etcdctl of any version the module proxy serves into the cache, once.

``labctl etcd build --version 3.5.21`` calls this: it asks the proxy for both modules
at that version, generates the module (``labctl/etcd/build.py``) in
``<cache>/.work/v3.5.21``, compiles etcd and etcdctl there (static, ``CGO_ENABLED=0``)
with go's output in ``build.log`` beside it, moves them to ``<cache>/v3.5.21/bin`` and
records the time in ``<cache>/builds.json``. The simulated lab makes its etcd image
from them (``labctl/sim/engine.py``). No tracked file is read or written.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from labctl import gobuild
from labctl.errors import LabctlError
from labctl.etcd import build as b
from labctl.files import write_atomic


def check_served(release: str, proxy: str) -> None:
    for module in (b.SERVER, b.ETCDCTL):
        url = f"{proxy}/{module}/@v/{release}.info"
        status, _ = gobuild.get(url)
        if status != 200:
            raise LabctlError(
                f"the Go module proxy {proxy} does not serve {module} {release} "
                f"(HTTP {status} for {url})"
            )


def _objects(text: str) -> list[dict[str, object]]:
    """``go mod download -json`` prints one JSON object per module, one after another."""
    decoder = json.JSONDecoder()
    found, i = [], 0
    text = text.strip()
    while i < len(text):
        value, end = decoder.raw_decode(text, i)
        found.append(value)
        i = end
        while i < len(text) and text[i].isspace():
            i += 1
    return found


def build(release: str, say: gobuild.Say) -> Path:
    """Build etcd ``release`` unless the cache has it; the folder of its binaries."""
    root = b.cache_root()
    dest = root / release
    work = root / ".work" / release
    log = work / "build.log"
    if b.is_built(release):
        say(f"etcd {release} is built in {dest}")
        return b.bin_dir(release)
    say(
        f"will build etcd {release} (etcd, etcdctl) into {dest}; "
        f"{gobuild.expectation(gobuild.read_record(root), release)}; go's output goes to {log}"
    )
    check_served(release, gobuild.goproxy())
    with gobuild.locked(root / ".work" / f"{release}.lock", say, f"another build of {release}"):
        if b.is_built(release):
            say(f"etcd {release} is built in {dest}")
            return b.bin_dir(release)
        start = time.monotonic()
        work.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        say(f"[1/3] resolving the module graph of etcd {release} in {work}")
        answer = gobuild.go(
            ["mod", "download", "-json", f"{b.SERVER}@{release}", f"{b.ETCDCTL}@{release}"],
            None,
            work,
        )
        gomods = [Path(str(o["GoMod"])).read_text() for o in _objects(answer)]
        write_atomic(work / "go.mod", b.go_mod(release, gomods).encode())
        write_atomic(work / "tools.go", b.tools_go().encode())
        gobuild.go(["mod", "tidy"], log, work)
        tmp = root / f".{release}.tmp.{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "bin").mkdir(parents=True)
        try:
            say(f"[2/3] compiling etcd and etcdctl (go's output: {log})")
            for name, module in b.BINARIES.items():
                args = ["build", "-trimpath", "-ldflags", "-s -w", "-o", str(tmp / "bin" / name)]
                gobuild.go([*args, module], log, work)
            say(f"[3/3] installing into {dest}")
            shutil.rmtree(dest, ignore_errors=True)
            os.replace(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        seconds = round(time.monotonic() - start)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    built = gobuild.Built(seconds, gobuild.tree_size(dest), stamp)
    gobuild.add_to_record(root, release, built)
    say(f"built etcd {release} in {seconds} s: {built.size_bytes // 2**20} MiB in {dest}")
    return b.bin_dir(release)
