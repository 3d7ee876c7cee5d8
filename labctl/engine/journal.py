"""The journal: what was applied, kept in the state directory, plus the run lock.

One JSON object per line, appended and fsynced after each applied step, so a
run killed at any point leaves a journal that is true up to its last line (a
torn last line is ignored on reading). The lock is an flock on a file next to
it: a second labctl run against the same state directory refuses at once.

An entry belongs to the layer that applied it (the part of the plan's name
before the colon: "etcd" for "etcd: members"): two layers may send the same
command to the same node (`systemctl daemon-reload`) for different reasons,
and each must remember its own, or every run would redo one of them.

A machine installed again has none of what the journal remembers of it done: the
os layer's install plan names the servers it installs, and the executor forgets
their entries first (a ``forget`` line, so a later run reads the same).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from labctl.errors import LabctlError


@dataclass(frozen=True)
class Entry:
    key: str
    fingerprint: str
    layer: str
    at: float


def journal_path(state_dir: Path) -> Path:
    return state_dir / "journal.jsonl"


class Journal:
    def __init__(self, state_dir: Path) -> None:
        self.path = journal_path(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        self._applied: dict[tuple[str, str], Entry] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                raw = json.loads(line)
                if "forget" in raw:
                    self._drop(str(raw["forget"]))
                    continue
                entry = Entry(raw["key"], raw["fingerprint"], raw["layer"], raw["at"])
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a crash: everything before it still holds
            self._applied[(owner(entry.layer), entry.key)] = entry

    def _drop(self, target: str) -> None:
        for slot in [slot for slot in self._applied if target_of(slot[1]) == target]:
            del self._applied[slot]

    def _append(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def forget(self, target: str) -> None:
        """Everything remembered of ``target``, forgotten (it was installed again)."""
        self._append(json.dumps({"forget": target, "at": time.time()}) + "\n")
        self._drop(target)

    def entries(self) -> list[Entry]:
        """What is remembered now (after forgets), one entry per layer and key."""
        return list(self._applied.values())

    def done(self, key: str, fingerprint: str, layer: str) -> bool:
        entry = self._applied.get((owner(layer), key))
        return entry is not None and entry.fingerprint == fingerprint

    def layers(self) -> set[str]:
        """The layers that have applied steps remembered here."""
        return {layer for layer, _ in self._applied}

    def record(self, key: str, fingerprint: str, layer: str) -> None:
        entry = Entry(key, fingerprint, layer, time.time())
        self._append(json.dumps(entry.__dict__) + "\n")
        self._applied[(owner(layer), key)] = entry


def applied_layers(state_dir: Path) -> frozenset[str]:
    """The layers the journal in ``state_dir`` holds applied steps of (none: no journal)."""
    if not journal_path(state_dir).exists():
        return frozenset()
    return frozenset(owner(layer) for layer, _key in Journal(state_dir)._applied)


def target_of(key: str) -> str:
    """The machine a step's key names: every action's key is ``kind:target:...``."""
    return key.split(":", 2)[1] if key.count(":") >= 1 else ""


def owner(layer: str) -> str:
    """The layer a plan belongs to, from its name ("etcd: start wind" -> "etcd")."""
    return layer.partition(":")[0].strip()


class RunLock:
    """Exclusive lock on a state directory for the length of a run."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "lock"
        self._handle: IO[str] | None = None

    def __enter__(self) -> RunLock:
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise LabctlError(
                f"another labctl run (pid {holder}) is working on {self.path.parent}; "
                "wait for it to finish"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
