"""The inventory: loading, schema, typed model and semantic checks."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from labctl.errors import UsageError
from labctl.inventory.model import Inventory
from labctl.inventory.problems import Problem, Severity, Stage


@dataclass(frozen=True)
class LoadResult:
    """What loading one file found: the inventory (when its shape is valid) and problems."""

    path: Path
    inventory: Inventory | None
    problems: list[Problem] = field(default_factory=list)
    # The last pass that ran: checks of later passes did not run (and found nothing).
    reached: Stage = Stage.CHECKS
    # Lab checks' findings on the simulated lab: what a real lab would refuse, and
    # what stands in for it there. Not problems: they fail nothing, even --strict.
    notes: list[Problem] = field(default_factory=list)
    # The lab kind the lab checks ran for (True: simulated); None: they did not run.
    simulated: bool | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.WARNING]


# Far above any lab: the generator's 64,000 servers are 50.8 MB and take 2.15 GB to
# check (docs/performance.md), about 42 times the file; 64 MiB (some 80,000 servers)
# keeps a check under 3 GB. A regular file is refused by its size before a byte is
# read; a pipe or a device is read at most one byte past the bound.
MAX_INVENTORY_BYTES = 64 * 1024 * 1024


def _too_large(path: Path, size: int) -> UsageError:
    return UsageError(
        f"{path}: {size / 2**20:.0f} MiB is larger than the {MAX_INVENTORY_BYTES // 2**20} MiB "
        "labctl reads (checking takes about 40 times a file's size in memory); split the "
        "lab into inventories of its own"
    )


def read_bytes(path: Path) -> bytes:
    """Read an inventory file's bytes, turning OS errors into usage errors."""
    try:
        if path.is_char_device() or path.is_block_device():
            raise UsageError(f"{path}: is a device, not an inventory file")
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_INVENTORY_BYTES:
                raise _too_large(path, size)
            data = handle.read(MAX_INVENTORY_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not an inventory file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None
    if len(data) > MAX_INVENTORY_BYTES:
        raise _too_large(path, len(data))
    return data


def read_text(path: Path) -> str:
    """Read an inventory file as text, turning OS and encoding errors into usage errors."""
    data = read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def not_utf8(data: bytes, file: str) -> Problem | None:
    """LAB001 at the line and column of the first byte that is not UTF-8, or None."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        from labctl.inventory.problems import Position

        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = len(data[line_start : exc.start].decode("utf-8", errors="replace")) + 1
        byte = data[exc.start]
        return Problem(
            "LAB001",
            Severity.ERROR,
            f"byte 0x{byte:02x} is not UTF-8: an inventory is UTF-8 text (a file saved as "
            "Latin-1 or Windows-1252 does this); save it as UTF-8",
            file,
            Position(line, column),
        )
    return None


def check_text(
    text: str, file: str, path: Path | None = None, simulated: bool | None = None
) -> LoadResult:
    """Load, schema-check and semantically check an inventory given as text.

    ``simulated`` is the lab kind, when known (None: the lab checks do not run; False:
    a real lab, where their findings are problems; True: the simulated lab, notes).
    """
    from labctl.inventory.load import paused_collector

    with paused_collector():  # pure, acyclic and short: see paused_collector
        return _check_text(text, file, path, simulated)


def _check_text(text: str, file: str, path: Path | None, simulated: bool | None) -> LoadResult:
    from labctl.inventory.checks import run_checks, run_lab_checks
    from labctl.inventory.load import LoadFailed, load_yaml
    from labctl.inventory.model import build_inventory
    from labctl.inventory.schema import validate

    where = path or Path(file)
    try:
        data, source = load_yaml(text, file)
    except LoadFailed as failed:
        return LoadResult(where, None, failed.problems, Stage.YAML)
    problems = validate(data, source)
    if problems:
        return LoadResult(where, None, problems, Stage.SCHEMA)
    inventory = build_inventory(data)
    problems = run_checks(inventory, source)
    lab = [] if simulated is None else run_lab_checks(inventory, source, simulated)
    if simulated:
        return LoadResult(where, inventory, problems, notes=lab, simulated=True)
    problems = sorted(
        problems + lab, key=lambda p: (p.position.line if p.position else 0, p.check_id)
    )
    return LoadResult(where, inventory, problems, simulated=simulated)


def load_inventory(path: Path, simulated: bool | None = None) -> LoadResult:
    """Read and check ``path`` (with the lab checks when ``simulated`` says the lab
    kind); raises ``UsageError`` only when it cannot be read."""
    data = read_bytes(path)
    problem = not_utf8(data, str(path))
    if problem is not None:
        return LoadResult(path, None, [problem], Stage.YAML)
    return check_text(data.decode("utf-8"), str(path), path, simulated)


def require_inventory(path: Path) -> Inventory:
    """The inventory at ``path``, or a ``LabctlError`` listing its errors."""
    return _required(path, load_inventory(path))


def require_for_lab(
    path: Path, simulated: bool, lab_checks: Collection[str]
) -> tuple[Inventory, list[Problem]]:
    """``require_inventory`` where the lab kind is known (``labctl plan``/``bootstrap``):
    the lab checks ``lab_checks`` (those the chosen layers need) run too. On a real lab
    their findings are errors and refuse, before anything is written; on the simulated
    lab they come back as notes, to be shown."""
    from labctl.inventory.checks import REGISTRY

    result = load_inventory(path, simulated)
    other = {c for c, check in REGISTRY.items() if check.lab_fn is not None} - set(lab_checks)
    result = dataclasses.replace(
        result,
        problems=[p for p in result.problems if p.check_id not in other],
        notes=[p for p in result.notes if p.check_id not in other],
    )
    return _required(path, result), result.notes


def _required(path: Path, result: LoadResult) -> Inventory:
    from labctl.errors import LabctlError

    if result.inventory is None or result.errors:
        lines = [format_problem(p) for p in result.errors[:20]]
        more = len(result.errors) - 20
        if more > 0:
            lines.append(f"... and {more} more (run `labctl validate {path}`)")
        raise LabctlError(f"{path} has errors:\n" + "\n".join(lines))
    return result.inventory


def format_problem(p: Problem, severity: str | None = None) -> str:
    where = f"{p.file}:{p.position.line}:{p.position.column}" if p.position else p.file
    path = f" {p.path_text}:" if p.path else ""
    return f"{where}: {severity or p.severity} {p.check_id}{path} {p.message}"


def format_note(p: Problem) -> str:
    """A lab check's finding on the simulated lab: ``file:line:col: note ID path: ...``."""
    return format_problem(p, "note")
