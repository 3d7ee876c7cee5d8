"""Asking before a destructive action: a terminal's yes, or --yes, or a refusal.

Without a terminal (a script, CI) nobody can answer, so the command refuses
with a sentence that names --yes rather than waiting or going ahead.
"""

from __future__ import annotations

import sys

import typer

from labctl.errors import UsageError


def confirm(question: str, yes: bool) -> None:
    """Return when the user agreed (or passed --yes); otherwise exit without acting."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            f"refusing to {question.rstrip('?')} without a terminal to confirm; add --yes"
        )
    if not typer.confirm(question, default=False):
        raise typer.Exit(1)
