"""systemd unit files and environment files, from plain data.

A unit is a mapping of sections to ordered (key, value) pairs, so a key may
repeat (``ExecStartPre=`` twice) and the text comes out byte-for-byte the same
for the same data: its hash is what decides whether a member restarts.

Values come from the inventory, so every one is made inert here, whatever
``labctl validate`` let through (docs/reliability.md, "Quoting at render"):
a command line is written from its argv by ``exec_command``, which quotes each
word as systemd's own ``ExecStart=`` parser reads it back (double quotes with C
escapes, ``$`` doubled so no variable is expanded, a lone ``;`` escaped so it
separates nothing); every value of a unit is checked for what no unit line can
hold (a line break, a control character, a trailing backslash that would join
the next line, blanks at either end that systemd strips), and its ``%`` doubled
where systemd expands specifiers. What cannot be written inert is refused with a
RenderError (a ValueError the CLI prints as a sentence) naming the key, never rendered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from labctl.errors import RenderError

Unit = Mapping[str, Sequence[tuple[str, str]]]

# A word systemd reads back unchanged without quotes (``%`` is doubled later, by
# unit_text, for every value alike). Anything else is double-quoted.
_BARE_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./\-\[\]{}^~]+")
# The first word's leading characters that systemd takes as prefixes, not as the path.
_EXEC_PREFIXES = "-@:+!|"
# C escapes systemd's extract_first_word(EXTRACT_CUNESCAPE) understands.
_C_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _quote_word(word: str, first: bool) -> str:
    if "\0" in word:
        raise RenderError(f"a command word cannot hold a NUL byte: {word!r}")
    if word == ";":
        return "\\;"  # systemd's own spelling of a literal ';' argument
    word = word.replace("$", "$$")
    if _BARE_WORD.fullmatch(word) and not (first and word[0] in _EXEC_PREFIXES):
        return word
    out = []
    for char in word:
        if char in _C_ESCAPES:
            out.append(_C_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def exec_command(argv: Sequence[str], prefix: str = "") -> str:
    """An ``Exec*=`` value that systemd splits back into exactly ``argv``.

    ``prefix`` is systemd's own (``-`` to ignore a failure), never from the inventory.
    """
    if not argv:
        raise RenderError("an Exec line needs a program")
    if any(c not in _EXEC_PREFIXES for c in prefix):
        raise RenderError(f"{prefix!r} is not a systemd Exec prefix")
    words = [_quote_word(word, i == 0) for i, word in enumerate(argv)]
    return prefix + " ".join(words)


def _line_breaking(char: str) -> bool:
    """A control character, or one that Python's ``splitlines`` (which simulated
    nodes' and tests' readers use) takes as a line break."""
    code = ord(char)
    return (code < 0x20 and char != "\t") or 0x7F <= code <= 0x9F or char in "\u2028\u2029"


def unit_value(key: str, value: str, specifiers: bool = True) -> str:
    """``value`` as one unit line holds it: refused if no line can, ``%`` doubled when
    the file's settings expand specifiers (units do; .network, .link and
    timesyncd.conf do not)."""
    bad = next((c for c in value if _line_breaking(c)), None)
    if bad is not None:
        raise RenderError(f"{key}=: a unit value cannot hold the control character {bad!r}")
    if value != value.strip():
        raise RenderError(f"{key}=: systemd strips blanks around a value: {value!r}")
    if value.endswith("\\"):
        raise RenderError(f"{key}=: a trailing backslash joins the next line: {value!r}")
    return value.replace("%", "%%") if specifiers else value


def unit_text(unit: Unit, specifiers: bool = True) -> str:
    """``[Section]`` blocks of ``Key=value`` lines, in the order given.

    ``specifiers``: whether systemd expands ``%`` in this file (False for
    systemd-networkd's and timesyncd's files, which take ``%`` literally).
    """
    blocks = []
    for section, entries in unit.items():
        lines = [f"[{section}]"]
        for key, value in entries:
            lines.append(f"{key}={unit_value(key, value, specifiers)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def env_text(env: Mapping[str, str]) -> str:
    """``KEY=value`` lines that systemd's EnvironmentFile, docker and podman's
    ``--env-file`` all read alike: no quotes, so values must hold no spaces.

    The three readers agree only on plain values: docker and podman take the rest
    of the line as it is, systemd unquotes, unescapes and strips it. So a value
    with a blank, a quote, a backslash or a control character, and a key that is
    not a variable name, are refused rather than written.
    """
    for key, value in env.items():
        if not _ENV_KEY.fullmatch(key):
            raise RenderError(f"{key!r} is not an environment variable name")
        if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise RenderError(f"{key}: environment values here cannot hold blanks or controls")
        if any(c in value for c in "\"'\\"):
            raise RenderError(f"{key}: environment values here cannot hold quotes or backslashes")
    return "".join(f"{key}={value}\n" for key, value in env.items())
