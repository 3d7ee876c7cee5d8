"""`labctl inventory show|export`: look at the lab the inventory describes."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from labctl.cli.options import InventoryOption, OutputFormat, OutputOption

app = typer.Typer(help="Show or export the inventory.", no_args_is_help=True)


class ExportFormat(StrEnum):
    ansible = "ansible"
    hosts = "hosts"
    json = "json"


@app.command()
def show(inventory: Path = InventoryOption, output: OutputFormat = OutputOption) -> None:
    """Tables of servers, networks (with address use), switches and PDU outlets.

    Example: labctl inventory show -i inventory.yaml
    """
    from labctl.cli.platform_choice import require_inventory

    inv = require_inventory(inventory)
    if output is OutputFormat.json:
        from labctl.inventory.export import to_json

        typer.echo(to_json(inv), nl=False)
        return
    from labctl.cli.tables import Console, inventory_tables

    console = Console()
    for table in inventory_tables(inv):
        console.print(table)


@app.command()
def export(
    fmt: ExportFormat = typer.Argument(..., help="ansible, hosts or json."),
    inventory: Path = InventoryOption,
    out: Path | None = typer.Option(
        None, "--out", help="Write to this file (atomically) instead of stdout."
    ),
) -> None:
    """Export the inventory for other tools: an Ansible inventory, /etc/hosts lines, or JSON.

    Secrets are exported as their references, never their values.

    Example: labctl inventory export ansible --out hosts.yaml
    """
    from labctl.cli.platform_choice import require_inventory
    from labctl.inventory.export import render

    text = render(require_inventory(inventory), fmt.value)
    if out is None:
        typer.echo(text, nl=False)
    else:
        from labctl.cli.outfile import write_output

        write_output(out, text.encode(), "--out")
        typer.echo(f"wrote {out}", err=True)
