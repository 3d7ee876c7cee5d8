"""`labctl os install|survey`: the os layer on its own, and the one way to reinstall a data node."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from labctl.cli.bootstrap_cmd import StateDirOption, layer_context, run_and_report
from labctl.cli.options import InventoryOption, OutputFormat, OutputOption

app = typer.Typer(
    help="Servers' operating system: what is installed, and network installs.",
    no_args_is_help=True,
)


@app.command()
def install(
    reinstall: list[str] = typer.Option(
        [],
        "--reinstall",
        help="Reinstall this server even if it may hold data (etcd, ceph-osd). Repeatable.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say who would be installed and why."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask before reinstalling."),
    inventory: Path = InventoryOption,
    state_dir: Path = StateDirOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Install every server that does not run the inventory's OS (as bootstrap's os layer does).

    A server that may hold data is reinstalled only when named with --reinstall.

    Example: labctl os install --dry-run
    """
    from labctl.cli.confirm import confirm
    from labctl.errors import UsageError
    from labctl.layers.os import OsLayer

    ctx = layer_context(inventory, state_dir, dry_run)
    known = {s.name for s in ctx.inventory.servers}
    unknown = sorted(set(reinstall) - known)
    if unknown:
        raise UsageError(f"--reinstall {', '.join(unknown)}: no such server in {inventory}")
    if reinstall and not dry_run:
        confirm(f"reinstall {', '.join(reinstall)}, wiping its OS disk?", yes)
    run_and_report([OsLayer(frozenset(reinstall))], ctx, output)


@app.command()
def survey(
    inventory: Path = InventoryOption,
    state_dir: Path = StateDirOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Ask every server its OS (SSH) and power (BMC); say what the os layer would do.

    Example: labctl os survey -o json
    """
    from labctl.os import survey as decide
    from labctl.os.work import observe_all

    ctx = layer_context(inventory, state_dir, True)
    observed = observe_all(ctx)
    decisions = decide.decide(ctx.inventory, {o.server: o for o in observed})
    if output is OutputFormat.json:
        rows = [d.__dict__ for d in decisions]
        typer.echo(json.dumps({"servers": rows}, indent=2))
        return
    for d in decisions:
        typer.echo(f"{d.server}: {d.action} ({d.reason})")
