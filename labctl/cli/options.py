"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
import typer.core

DEFAULT_INVENTORY = Path("inventory.yaml")

InventoryOption = typer.Option(
    DEFAULT_INVENTORY,
    "--inventory",
    "-i",
    envvar="LABCTL_INVENTORY",
    help="Inventory file (env LABCTL_INVENTORY).",
    show_default=True,
)


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


OutputOption = typer.Option(
    OutputFormat.text, "--output", "-o", help="text for people, json for programs."
)


def _flag_has_no_value(
    display: Callable[[typer.core.TyperOption, Any], str | None],
) -> Callable[[typer.core.TyperOption, Any], str | None]:
    """Typer's help shows ``<bool>`` beside a flag such as ``--yes`` or ``--help``, as if it
    took a value (``--yes true``, which is refused). A flag shows no type column."""

    def shown(option: typer.core.TyperOption, ctx: Any) -> str | None:
        return None if option.is_flag else display(option, ctx)

    return shown


# The command line (labctl/cli/main.py) imports this module before any command, so every
# command's help is formatted so.
typer.core.TyperOption.display_type_rich = _flag_has_no_value(  # type: ignore[method-assign,assignment]
    typer.core.TyperOption.display_type_rich
)
