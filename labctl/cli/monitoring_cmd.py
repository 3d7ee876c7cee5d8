"""`labctl monitoring status`: what Prometheus scrapes and what fires, against the inventory."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from labctl.cli.options import InventoryOption, OutputFormat, OutputOption

app = typer.Typer(
    help="The lab's monitoring (Prometheus, Alertmanager): targets and alerts.",
    no_args_is_help=True,
)


@app.command()
def status(
    inventory: Path = InventoryOption,
    output: OutputFormat = OutputOption,
    timeout: float = typer.Option(5.0, "--timeout", min=0.5, help="Seconds per request."),
) -> None:
    """Targets up/down by job and firing alerts, as Prometheus says (exit 1 if a target
    the inventory implies is not up or an alert fires).

    Targets are listed from the inventory: one Prometheus does not scrape shows as
    missing. Each request to Prometheus's API is bounded by --timeout.

    Example: labctl monitoring status -o json
    """
    from labctl.cli.platform_choice import require_inventory
    from labctl.monitoring.status import ask

    found = ask(require_inventory(inventory), timeout)
    if output is OutputFormat.json:
        typer.echo(json.dumps(found.as_dict(), indent=2))
    else:
        typer.echo(found.text())
    if found.not_up or found.alerts:
        raise typer.Exit(1)
