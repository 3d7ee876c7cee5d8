"""The shell scripts labctl ships (``scripts/*.sh`` beside this module), read as text.

A shell script longer than a few lines lives here as a ``.sh`` file, not as a string
inside Python, so ``shellcheck`` reads it (``scripts/test`` checks every shipped
``.sh``) and a reader sees it as the shell it is. Values reach a script only as its
positional arguments (``sh -c BODY NAME ARG...``), never pasted into its text.

How a script reaches a node: its body travels as the ``sh -c`` argument of the
``Run``/``Check``/``WaitFor`` that runs it, as the inline strings did before. Of the
three ways (``sh -c``, ``PutFile`` then run the file, ``sh -s`` on stdin) it is the one
that changes nothing else: an action stays one step (no file to put first and keep
in step with the command), the journal's fingerprint of the argv covers the script,
so a changed script runs again as a changed command always did, and the engine and
the drivers need no stdin for commands. A script's header (its ``#!`` line and the
comment block after it: why it exists, shellcheck's directives) is for readers and
shellcheck; ``body`` leaves it out, so the node runs exactly the lines it ran before.

Scripts written whole into a node's files (the installers' scripts inside an
Ignition config) are read with ``script``, header and all.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def script(name: str) -> str:
    """The whole text of the shipped script ``scripts/<name>.sh``."""
    return (
        resources.files("labctl.data").joinpath("scripts").joinpath(f"{name}.sh").read_text("utf-8")
    )


@cache
def body(name: str) -> str:
    """What a node runs of ``scripts/<name>.sh`` through ``sh -c``: all but its header.

    The header is the ``#!`` line and the comment lines right after it; the body
    starts at the first line that is not a comment (a blank line counts).
    """
    lines = script(name).splitlines(keepends=True)
    start = 0
    if lines and lines[0].startswith("#!"):
        start = 1
        while start < len(lines) and lines[start].startswith("#"):
            start += 1
    return "".join(lines[start:])
