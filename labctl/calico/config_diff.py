"""A switch's rendered configuration against its running one, line by line (pure).

Both sides lose what is not configuration: the banner lines each platform
prints around ``show running-config`` (FRR's "Building configuration...",
"frr version", EOS's "! Command:" comments, IOS's "Current configuration :
N bytes"), ``!`` separators, blank lines and trailing spaces. What remains is
compared in order with a unified diff: ``-`` lines the switch lacks, ``+``
lines it has that labctl does not render.
"""

from __future__ import annotations

import difflib
import re

NOISE = {
    "frr": (
        r"^Building configuration\.\.\.$",
        r"^Current configuration:$",
        r"^frr version ",
        r"^end$",
    ),
    "eos": (r"^end$",),
    "ios": (
        r"^Building configuration\.\.\.$",
        r"^Current configuration : \d+ bytes$",
        r"^version ",
        r"^end$",
    ),
}


def significant(text: str, platform: str) -> list[str]:
    patterns = [re.compile(p) for p in NOISE.get(platform, ())]
    out = []
    for raw in text.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped == "!" or stripped.startswith("! "):
            continue
        if any(p.search(line) for p in patterns):
            continue
        out.append(line)
    return out


def diff(rendered: str, running: str, platform: str, name: str) -> list[str]:
    """Unified diff lines (empty when the switch runs what labctl renders)."""
    return list(
        difflib.unified_diff(
            significant(rendered, platform),
            significant(running, platform),
            fromfile=f"{name} (rendered by labctl)",
            tofile=f"{name} (running)",
            lineterm="",
        )
    )
