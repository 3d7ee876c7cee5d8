"""Checks that keep an inventory value inert in formats with no quoting of their own.

``labctl validate`` gives every field its grammar, but a renderer must not rely on
it: a value that slipped past (a patched model, a new field, a grammar too wide)
would otherwise add a line to a config, a word to a kernel command line or a
block to a Corefile. Formats that can quote (shell, systemd, INI with quotes,
YAML/JSON) quote in their own renderers; these helpers are for the ones that
cannot, where the only safe render of a hostile value is none: each raises a
RenderError (a ValueError) naming what the value was for, which the CLI prints as a
sentence with exit 2, never a traceback.
"""

from __future__ import annotations

import re

from labctl.errors import RenderError

# A word that means the same to iPXE, the kernel command line, dnsmasq, BIRD,
# FRR and CoreDNS: no blank, quote, backslash, '$', '#', ';', braces or control.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_.:/,=+@%\[\]-]+")


def one_line(what: str, value: str) -> str:
    """``value`` if it holds no line break or other control character."""
    if not value or not value.isprintable() or value != value.strip():
        raise RenderError(f"{what} {value!r} cannot be written on one plain line")
    return value


def plain_word(what: str, value: str) -> str:
    """``value`` if it is one word that no config or script language reads specially."""
    if not _PLAIN_WORD.fullmatch(value):
        raise RenderError(
            f"{what} {value!r} holds a character that cannot be written here safely"
            " (only letters, digits and _ . : / , = + @ % [ ] -)"
        )
    return value


_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")


def dns_name(what: str, value: str) -> str:
    """``value`` if it is a DNS name (letters, digits, inner hyphens, dots between)."""
    if len(value) > 253 or not _DNS_NAME.fullmatch(value):
        raise RenderError(f"{what} {value!r} is not a DNS name")
    return value


def config_lines(what: str, lines: list[str]) -> str:
    """Config lines joined, each checked to hold no line break or control character.

    For formats read line by line (BIRD, FRR, EOS, IOS, dnsmasq): a value with a
    line break would add a statement of its own. The error names the line by
    number, never its text, which may hold a password.
    """
    for number, line in enumerate(lines, start=1):
        if not line.isprintable():
            raise RenderError(
                f"{what}: line {number} would hold a line break or control character"
                " from an inventory value"
            )
    return "\n".join(lines) + "\n"


def bird_string(what: str, value: str) -> str:
    """``value`` as a BIRD 1.6 string: its lexer has no escapes, so a double quote
    or a line break cannot be written and is refused (the value is not shown)."""
    if '"' in value or not value.isprintable():
        raise RenderError(f"{what} holds a double quote or line break, which BIRD cannot hold")
    return f'"{value}"'


def config_word(what: str, value: str, show: bool = True) -> str:
    """``value`` as one word of a switch CLI line (FRR, EOS, IOS read a WORD up to the
    next blank): refused if empty or holding a blank or control. ``show``: whether the
    refusal may quote the value (never for a password)."""
    if not value or any(c.isspace() or not c.isprintable() for c in value):
        shown = f" {value!r}" if show else ""
        raise RenderError(f"{what}{shown} must be one word with no blank or control character")
    return value


_HOSTNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def hostname(what: str, value: str) -> str:
    """A device's host name: a letter or digit, then letters, digits, ``_ . -``
    (FRR refuses any other first character)."""
    if len(value) > 63 or not _HOSTNAME.fullmatch(value):
        raise RenderError(f"{what} {value!r} is not a host name")
    return value


def absolute_path(what: str, value: str) -> str:
    """``value`` if it is an absolute, normalised path on one line: never an option
    (``-rf``) to the commands it is handed to, never outside itself (``..``)."""
    import posixpath

    if not value.startswith("/") or posixpath.normpath(value) != value or not value.isprintable():
        raise RenderError(f"{what} {value!r} is not an absolute, normalised path")
    return value
