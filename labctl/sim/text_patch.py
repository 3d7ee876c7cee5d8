"""A unified diff applied to one file's text, exactly or not at all.

The simulated lab's Ceph image may change a file of the packages it is made from (a
diff shipped under ``labctl/data/patches``, each explaining itself above its ``---``
line, as ``patch`` reads it). Applying one needs no ``patch`` program and no file on
disk: the diff names the file (its ``+++`` path, ``b/`` dropped), and each hunk's
context and removed lines must be the file's at the line the hunk names, or the diff
is refused with a sentence; no fuzz, no offset search, so a package that changed under
a diff is found out rather than patched somewhere else. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from labctl.errors import LabctlError

HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class Hunk:
    start: int  # the first old line it covers, from 1
    old: tuple[str, ...]  # context and removed lines, without line ends
    new: tuple[str, ...]  # context and added lines


@dataclass(frozen=True)
class Diff:
    path: str  # the file it changes, absolute (/usr/share/...)
    hunks: tuple[Hunk, ...]


def parse(text: str, name: str = "the diff") -> Diff:
    """One file's unified diff; the text above its ``---`` line is its explanation."""
    lines = text.splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("+++ ")]
    if len(heads) != 1 or heads[0] == 0 or not lines[heads[0] - 1].startswith("--- "):
        raise LabctlError(f"{name} is not a unified diff of one file (one ---/+++ pair)")
    path = lines[heads[0]][4:].split("\t")[0].strip()
    path = "/" + (path[2:] if path.startswith("b/") else path).lstrip("/")
    hunks: list[Hunk] = []
    old: list[str] = []
    new: list[str] = []
    start: int | None = None
    for number, line in enumerate(lines[heads[0] + 1 :], heads[0] + 2):
        head = HUNK.match(line)
        if head:
            if start is not None:
                hunks.append(Hunk(start, tuple(old), tuple(new)))
            start, old, new = int(head.group(1)), [], []
        elif start is None:
            raise LabctlError(f"{name}, line {number}: a hunk (@@ ... @@) was expected")
        elif line.startswith(" ") or line == "":
            old.append(line[1:])
            new.append(line[1:])
        elif line.startswith("-"):
            old.append(line[1:])
        elif line.startswith("+"):
            new.append(line[1:])
        else:
            raise LabctlError(f"{name}, line {number}: not a diff line: {line[:60]!r}")
    if start is not None:
        hunks.append(Hunk(start, tuple(old), tuple(new)))
    if not hunks:
        raise LabctlError(f"{name} has no hunk")
    return Diff(path, tuple(hunks))


def apply(text: str, diff: Diff, name: str = "the diff") -> str:
    """``text`` changed by ``diff``'s hunks, each where it says (lines end in \\n)."""
    lines = text.splitlines()
    shift = 0  # lines earlier hunks added, less those they removed
    for hunk in diff.hunks:
        at = max(hunk.start - 1, 0) + shift
        found = tuple(lines[at : at + len(hunk.old)])
        if found != hunk.old:
            raise LabctlError(
                f"{name} does not apply to {diff.path}: its hunk at line {hunk.start} "
                "expects other lines there (the package changed; make the diff again)"
            )
        lines[at : at + len(hunk.old)] = hunk.new
        shift += len(hunk.new) - len(hunk.old)
    return "\n".join(lines) + "\n"
