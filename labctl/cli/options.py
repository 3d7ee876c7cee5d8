"""Options shared by several commands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

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
