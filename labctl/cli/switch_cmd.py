"""`labctl switch config|diff`: a switch's configuration as labctl renders it, and drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from labctl.cli.options import InventoryOption, OutputFormat, OutputOption

if TYPE_CHECKING:
    from labctl.inventory.model import Inventory, Switch

app = typer.Typer(
    help="Switch configurations rendered from the inventory, and their drift.",
    no_args_is_help=True,
)

PlatformOption = typer.Option(
    None,
    "--platform",
    envvar="LABCTL_SWITCH_PLATFORM",
    help="Render in this dialect (frr, eos, ios) instead of the switch's own platform "
    "(the simulated lab runs FRR on every switch).",
)


def _switch_and_platform(
    inventory: Path, name: str, platform: str | None
) -> tuple[Inventory, Switch, str | None]:
    from labctl.cli.platform_choice import require_inventory
    from labctl.errors import UsageError

    inv = require_inventory(inventory)
    switch = next((s for s in inv.switches if s.name == name), None)
    if switch is None:
        known = ", ".join(s.name for s in inv.switches) or "none"
        raise UsageError(f"no switch named '{name}' in {inventory} (switches: {known})")
    if platform is not None and platform not in ("frr", "eos", "ios"):
        raise UsageError(f"platform {platform!r} is not one of frr, eos, ios")
    return inv, switch, platform


@app.command()
def config(
    name: str = typer.Argument(..., help="The switch (switches[].name)."),
    inventory: Path = InventoryOption,
    platform: str | None = PlatformOption,
) -> None:
    """Print the switch's configuration (BGP passwords shown as where they come from).

    Example: labctl switch config kek-core
    """
    from labctl.errors import UsageError
    from labctl.render import switches

    inv, switch, dialect = _switch_and_platform(inventory, name, platform)
    try:
        typer.echo(switches.config(inv, switch, platform=dialect), nl=False)
    except switches.NoPlatform as exc:
        raise UsageError(str(exc)) from None


def with_secrets(
    inventory: Inventory, switch: Switch, platform: str | None, base_dir: Path
) -> tuple[str, dict[str, str]]:
    """The switch's configuration with its BGP passwords' values (what the switch must
    run, so a wrong key differs), and the stand-in each value is printed as."""
    from functools import partial

    from labctl.calico.fill import fill_for
    from labctl.render import switches
    from labctl.render.bgp_common import masked
    from labctl.secrets.references import resolve

    text, fill = fill_for(inventory, partial(switches.config, inventory, switch, platform=platform))
    if fill is None:
        return text, {}
    values = {u.ref: resolve(u.ref, used_at=u.used_at, base_dir=base_dir) for u in fill.uses}
    return fill.text(values).decode(), {value: masked(ref) for ref, value in values.items()}


@app.command()
def diff(
    name: str = typer.Argument(..., help="The switch (switches[].name)."),
    inventory: Path = InventoryOption,
    platform: str | None = PlatformOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Compare the rendered configuration with the running one, read over SSH (exit 1 if they
    differ). BGP passwords are compared by value and printed as where they come from.

    Example: labctl switch diff kek-core -o json
    """
    from labctl.calico.config_diff import diff as compare
    from labctl.calico.running_config import running_config
    from labctl.errors import UsageError
    from labctl.render import switches

    inv, switch, dialect = _switch_and_platform(inventory, name, platform)
    try:
        rendered, hidden = with_secrets(inv, switch, dialect, inventory.parent)
    except switches.NoPlatform as exc:
        raise UsageError(str(exc)) from None
    used = dialect or switch.platform or "frr"
    running = running_config(inv, inventory.parent, name, used)
    lines = compare(rendered, running, used, name, hidden)
    if output is OutputFormat.json:
        typer.echo(json.dumps({"switch": name, "platform": used, "same": not lines, "diff": lines}))
    else:
        typer.echo("\n".join(lines) if lines else f"{name} runs what labctl renders")
    if lines:
        raise typer.Exit(1)
