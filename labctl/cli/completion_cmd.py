"""`labctl completion bash|zsh|fish`: the script that teaches a shell labctl's words.

Typer's own `--install-completion` rewrites the user's shell start-up files and
`--show-completion` guesses the shell; both are turned off (main.py). This command
prints the script for the shell named and nothing else, so the user decides where
it goes (docs/commands.md). The shell then calls labctl back with
``_LABCTL_COMPLETE`` set, which ``run()`` answers.
"""

from __future__ import annotations

from enum import StrEnum

import typer

COMPLETE_VAR = "_LABCTL_COMPLETE"


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def completion(shell: Shell = typer.Argument(..., help="bash, zsh or fish.")) -> None:
    """Print the shell completion script for SHELL (commands, options, their values).

    Example: labctl completion bash > ~/.local/share/bash-completion/completions/labctl
    """
    from typer._completion_shared import get_completion_script

    script = get_completion_script(prog_name="labctl", complete_var=COMPLETE_VAR, shell=shell)
    typer.echo(script)


def answer_if_asked() -> None:
    """Register the shells' completion protocols when a shell is asking (typer does
    that only with add_completion, which is off); costs nothing otherwise."""
    import os

    if os.environ.get(COMPLETE_VAR):
        from typer._completion_classes import completion_init

        completion_init()
