"""systemd unit files and environment files, from plain data.

A unit is a mapping of sections to ordered (key, value) pairs, so a key may
repeat (``ExecStartPre=`` twice) and the text comes out byte-for-byte the same
for the same data: its hash is what decides whether a member restarts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Unit = Mapping[str, Sequence[tuple[str, str]]]


def unit_text(unit: Unit) -> str:
    """``[Section]`` blocks of ``Key=value`` lines, in the order given."""
    blocks = []
    for section, entries in unit.items():
        lines = [f"[{section}]", *(f"{key}={value}" for key, value in entries)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def env_text(env: Mapping[str, str]) -> str:
    """``KEY=value`` lines that systemd's EnvironmentFile, docker and podman's
    ``--env-file`` all read alike: no quotes, so values must hold no spaces."""
    for key, value in env.items():
        if any(c.isspace() for c in value) or '"' in value or "'" in value:
            raise ValueError(f"{key}: environment values here cannot hold spaces or quotes")
    return "".join(f"{key}={value}\n" for key, value in env.items())
