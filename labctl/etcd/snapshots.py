"""Where etcd snapshots are kept on the operator's machine, and how many.

The directory holds the snapshots (``etcd-YYYYmmddTHHMMSSZ.db``) and
``index.json``: one entry per snapshot (file, size, sha256, the member it came
from, why it was taken) and the digest of the cluster configuration the last
bootstrap saw, which is how the etcd layer knows whether a run is about to
change the cluster (and so whether to take a snapshot first). Older snapshots
beyond ``keep`` are deleted once a new one is written. A snapshot holds every
secret the cluster keeps, so the directory ignores itself in git (its own
``.gitignore``: ``*``) before the first snapshot lands in it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from labctl.files import write_atomic

INDEX = "index.json"
GITIGNORE = "# Written by labctl: etcd snapshots hold every secret in the cluster.\n*\n"


def keep_out_of_git(directory: Path) -> None:
    """Create ``directory`` with a ``.gitignore`` that ignores all of it (unless it has one)."""
    directory.mkdir(parents=True, exist_ok=True)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        write_atomic(ignore, GITIGNORE.encode())


@dataclass(frozen=True)
class SnapshotEntry:
    file: str
    size: int
    sha256: str
    member: str
    reason: str
    at: str


@dataclass
class SnapshotIndex:
    directory: Path
    entries: list[SnapshotEntry]
    config_digest: str | None = None

    @classmethod
    def load(cls, directory: Path) -> SnapshotIndex:
        path = directory / INDEX
        if not path.exists():
            return cls(directory, [])
        raw: dict[str, Any] = json.loads(path.read_text())
        entries = [SnapshotEntry(**entry) for entry in raw.get("snapshots", [])]
        return cls(directory, entries, raw.get("config_digest"))

    def save(self) -> None:
        keep_out_of_git(self.directory)
        data = {
            "config_digest": self.config_digest,
            "snapshots": [asdict(entry) for entry in self.entries],
        }
        write_atomic(self.directory / INDEX, (json.dumps(data, indent=2) + "\n").encode())

    def new_path(self, now: dt.datetime) -> Path:
        return self.directory / f"etcd-{now:%Y%m%dT%H%M%SZ}.db"

    def add(self, entry: SnapshotEntry, keep: int) -> list[Path]:
        """Record ``entry``; drop (and return, for deletion) what exceeds ``keep``."""
        self.entries.append(entry)
        dropped = self.entries[:-keep] if len(self.entries) > keep else []
        self.entries = self.entries[len(dropped) :]
        return [self.directory / entry.file for entry in dropped]

    def latest(self) -> SnapshotEntry | None:
        return self.entries[-1] if self.entries else None
