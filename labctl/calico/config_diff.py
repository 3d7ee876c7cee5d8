"""A switch's rendered configuration against its running one, line by line (pure).

Both sides lose what is not configuration: the banner lines each platform
prints around ``show running-config`` (FRR's "Building configuration...",
"frr version", EOS's "! Command:" comments, IOS's "Current configuration :
N bytes"), ``!`` separators, blank lines and trailing spaces. What remains is
compared in order with a unified diff: ``-`` lines the switch lacks, ``+``
lines it has that labctl does not render.

A configuration with BGP passwords is compared with their values (a switch
with the wrong key differs) but printed without them: ``hidden`` names each
value's stand-in, and a password the switch has that labctl does not render is
shown as ``<secret not shown>``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

# A password in a switch's configuration: FRR's `password WORD`, EOS's `password 0|7 WORD`.
PASSWORD = re.compile(r"(\bpassword\s+(?:[07]\s+)?)(\S+)")
NOT_SHOWN = "<secret not shown>"

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


def hide(line: str, hidden: Mapping[str, str]) -> str:
    """``line`` with each password in it shown as its stand-in in ``hidden`` (by value), or
    as ``<secret not shown>`` (a value labctl does not render, or not one at all)."""

    def mask(match: re.Match[str]) -> str:
        word = match.group(2)
        if word.startswith("<secret"):
            return match.group(0)  # already a stand-in (a masked rendering)
        return match.group(1) + hidden.get(word, NOT_SHOWN)

    return PASSWORD.sub(mask, line)


def diff(
    rendered: str,
    running: str,
    platform: str,
    name: str,
    hidden: Mapping[str, str] | None = None,
) -> list[str]:
    """Unified diff lines (empty when the switch runs what labctl renders).

    ``hidden``: secret values (in ``rendered``) by the stand-in printed instead.
    """
    lines = difflib.unified_diff(
        significant(rendered, platform),
        significant(running, platform),
        fromfile=f"{name} (rendered by labctl)",
        tofile=f"{name} (running)",
        lineterm="",
    )
    return [hide(line, hidden or {}) for line in lines]
