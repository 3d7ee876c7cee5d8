"""Problems found in an inventory, and where they are.

Every finding, from a YAML syntax error to a semantic check, is a ``Problem``:
a stable check id, a severity, the file position, the path in the document and
one plain sentence. The CLI only formats these.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

PathElement = str | int
DocPath = tuple[PathElement, ...]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Stage(StrEnum):
    """The three passes over a file, in order; a pass runs only when the one before found
    nothing, so a report can tell a check that passed from one that never ran."""

    YAML = "yaml"
    SCHEMA = "schema"
    CHECKS = "checks"


@dataclass(frozen=True, slots=True)
class Position:
    """1-based line and column in the source file."""

    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Problem:
    check_id: str
    severity: Severity
    message: str
    file: str
    position: Position | None
    path: DocPath = ()

    @property
    def path_text(self) -> str:
        return format_path(self.path)

    def as_dict(self) -> dict[str, object]:
        return {
            "check": self.check_id,
            "severity": str(self.severity),
            "file": self.file,
            "line": self.position.line if self.position else None,
            "column": self.position.column if self.position else None,
            "path": self.path_text,
            "message": self.message,
        }


def format_path(path: DocPath) -> str:
    """``("servers", 1, "bmc", "address")`` -> ``servers[1].bmc.address``."""
    out: list[str] = []
    for element in path:
        if isinstance(element, int):
            out.append(f"[{element}]")
        else:
            out.append(f".{element}" if out else element)
    return "".join(out)
