"""Building a program from a Go module into this machine's cache: what Kubernetes and etcd share.

No package registry the project reaches ships kube-apiserver or an etcd other than
Debian's, so labctl builds them from their Go modules (``labctl/kubernetes/builder.py``,
``labctl/etcd/builder.py``). Both ask the module proxy whether it serves a version
(its answer to ``@v/VERSION.info``, the GOPROXY protocol), run go with its output in a
log file, take a lock per version (the machine is shared: two builds of one version
would trip over each other) and keep a small record of how long each build took
(``builds.json`` in the cache), so the next one can say what to expect. The record's
reading, writing and the sentences are pure; the rest runs go and reaches the proxy,
as a driver does.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from labctl.errors import LabctlError
from labctl.files import write_atomic

Say = Callable[[str], None]
RECORD_NAME = "builds.json"


# The record of past builds (pure) ------------------------------------------------------


@dataclass(frozen=True)
class Built:
    """One finished build: how long it took, what it left in the cache, and when."""

    seconds: int
    size_bytes: int
    finished: str  # ISO 8601, UTC


def parse_record(text: str) -> dict[str, Built]:
    """The record file's builds by tag; an unreadable record counts as empty (it is a
    hint, never a reason to refuse a build)."""
    try:
        raw = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(raw, dict):
        return {}
    found: dict[str, Built] = {}
    for key, value in raw.items():
        try:
            found[str(key)] = Built(
                int(value["seconds"]), int(value["size_bytes"]), str(value["finished"])
            )
        except (TypeError, KeyError, ValueError):
            continue
    return found


def record_text(record: dict[str, Built]) -> str:
    body = {
        name: {"seconds": b.seconds, "size_bytes": b.size_bytes, "finished": b.finished}
        for name, b in sorted(record.items())
    }
    return json.dumps(body, indent=2) + "\n"


def with_build(record: dict[str, Built], release: str, built: Built) -> dict[str, Built]:
    return {**record, release: built}


def expectation(record: dict[str, Built], release: str) -> str:
    """What to expect, from the record: this version's last build, else the latest of any."""
    if release in record:
        b = record[release]
        return f"{release} took {b.seconds} s when last built ({b.finished})"
    if record:
        name, b = max(record.items(), key=lambda item: item[1].finished)
        return f"{release} was never built here; {name} took {b.seconds} s ({b.finished})"
    return (
        f"{release} was never built here and no build is recorded yet "
        "(docs/performance.md has the figures of a 2-core machine)"
    )


def proxy_url(goproxy: str) -> str | None:
    """The first proxy of a GOPROXY setting (``https://proxy.golang.org,direct``) that
    speaks the proxy protocol over HTTP; None for ``off``/``direct`` only."""
    for entry in re.split(r"[,|]", goproxy):
        entry = entry.strip()
        if entry.startswith(("http://", "https://")):
            return entry.rstrip("/")
    return None


# Running go, asking the proxy, the cache ------------------------------------------------


def read_record(root: Path) -> dict[str, Built]:
    try:
        return parse_record((root / RECORD_NAME).read_text())
    except OSError:
        return {}


def add_to_record(root: Path, release: str, built: Built) -> None:
    with locked(root / ".work" / "record.lock"):
        record = with_build(read_record(root), release, built)
        write_atomic(root / RECORD_NAME, record_text(record).encode())


def go(args: list[str], log: Path | None, cwd: Path | None = None) -> str:
    """Run go; its output goes to ``log`` (appended) when given, else is returned."""
    if shutil.which("go") is None:
        raise LabctlError("Go is not installed: labctl builds this with go (Debian's golang-go)")
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    if log is None:
        done = subprocess.run(["go", *args], cwd=cwd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise LabctlError(f"go {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout
    with log.open("a") as out:
        out.write(f"$ go {shlex.join(args)}\n")
        out.flush()
        ran = subprocess.run(["go", *args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if ran.returncode != 0:
        raise LabctlError(f"go {' '.join(args[:2])} failed (exit {ran.returncode}); see {log}")
    return ""


def goproxy() -> str:
    """The proxy go itself would ask (GOPROXY, else ``go env GOPROXY``)."""
    chosen = os.environ.get("GOPROXY")
    if chosen is None:
        chosen = go(["env", "GOPROXY"], None).strip()
    proxy = proxy_url(chosen)
    if proxy is None:
        raise LabctlError(
            f"GOPROXY is {chosen!r}: labctl builds from a Go module proxy "
            "(https://proxy.golang.org by default)"
        )
    return proxy


def get(url: str) -> tuple[int, str]:
    """The status and body of a GET (an HTTP error is a status, not a failure)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (urllib.error.URLError, OSError) as exc:
        raise LabctlError(f"could not reach the Go module proxy ({url}): {exc}") from exc


@contextlib.contextmanager
def locked(path: Path, say: Say | None = None, what: str = "") -> Iterator[None]:
    """Hold an exclusive lock on ``path``; says so when it has to wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if say is not None:
                say(f"waiting for {what} (lock {path})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def tree_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
