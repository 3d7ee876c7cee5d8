"""`labctl schema`: print the inventory's JSON Schema."""

from __future__ import annotations

import typer


def schema() -> None:
    """Print the inventory JSON Schema (draft 2020-12).

    Example: labctl schema > inventory.schema.json
    """
    from labctl.inventory.schema import schema_text

    typer.echo(schema_text(), nl=False)
