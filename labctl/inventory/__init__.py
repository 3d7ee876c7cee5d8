"""The inventory: loading, schema, typed model and semantic checks."""

from __future__ import annotations

import os
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

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.WARNING]


def read_text(path: Path) -> str:
    """Read an inventory file, turning OS and encoding errors into usage errors."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not an inventory file") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None


def check_text(text: str, file: str, path: Path | None = None) -> LoadResult:
    """Load, schema-check and semantically check an inventory given as text."""
    from labctl.inventory.checks import run_checks
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
    return LoadResult(where, inventory, run_checks(inventory, source))


def load_inventory(path: Path) -> LoadResult:
    """Read and check ``path``; raises ``UsageError`` only when it cannot be read."""
    return check_text(read_text(path), str(path), path)


def require_inventory(path: Path) -> Inventory:
    """The inventory at ``path``, or a ``LabctlError`` listing its errors."""
    from labctl.errors import LabctlError

    result = load_inventory(path)
    if result.inventory is None or result.errors:
        lines = [format_problem(p) for p in result.errors[:20]]
        more = len(result.errors) - 20
        if more > 0:
            lines.append(f"... and {more} more (run `labctl validate {path}`)")
        raise LabctlError(f"{path} has errors:\n" + "\n".join(lines))
    # A simulated lab's Ceph stand-ins are inventory settings: applied here, once, for
    # every command that reads the inventory (labctl/standins.py).
    from labctl.standins import applied, from_environ

    return applied(result.inventory, from_environ(os.environ))


def format_problem(p: Problem) -> str:
    where = f"{p.file}:{p.position.line}:{p.position.column}" if p.position else p.file
    path = f" {p.path_text}:" if p.path else ""
    return f"{where}: {p.severity} {p.check_id}{path} {p.message}"
