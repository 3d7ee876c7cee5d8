"""`labctl bgp status` and `labctl bgp resources`: the BGP fabric as it runs, and as rendered."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from labctl.cli.options import InventoryOption, OutputFormat, OutputOption

app = typer.Typer(help="The lab's BGP fabric (Calico nodes and switches).", no_args_is_help=True)


@app.command()
def status(inventory: Path = InventoryOption, output: OutputFormat = OutputOption) -> None:
    """Sessions (from the switches, over SSH or SNMP as their bgp_status says, and the nodes'
    BIRD) and the pod blocks each peering switch has learned (exit 1 if a session is down or
    a block missing).

    Example: labctl bgp status -o json
    """
    from labctl.calico.work import session_for
    from labctl.cli.platform_choice import chosen, require_inventory

    inv = require_inventory(inventory)
    platform = chosen()  # the simulated lab's BIRD and FRR switches
    with session_for(inv, inventory.parent, platform) as session:
        fabric = session.status()
    if output is OutputFormat.json:
        typer.echo(json.dumps(fabric.as_dict(), indent=2))
    else:
        from labctl.cli.tables import Console, Table

        table = Table(title="BGP sessions")
        for column in ("node", "peer", "address", "kind", "node says", "peer says"):
            table.add_column(column)
        for s in fabric.sessions:
            mark = "" if s.established else "[red]"
            table.add_row(
                s.node,
                s.peer,
                s.peer_address,
                s.kind,
                f"{mark}{s.node_side or '-'}",
                f"{mark}{s.peer_side or '-'}",
            )
        Console().print(table)
        for sw in fabric.switches:
            typer.echo(f"{sw.switch}: {len(sw.learned)} BGP route(s) (read over {sw.source})")
        for problem in fabric.problems:
            typer.echo(f"problem: {problem}", err=True)
    if not fabric.ok:
        raise typer.Exit(1)


@app.command()
def resources(inventory: Path = InventoryOption, output: OutputFormat = OutputOption) -> None:
    """Print the Calico resources rendered from the inventory: IPPool, BGPConfiguration,
    BGPPeers and Nodes, as YAML calicoctl reads (the calico-resources layer applies them,
    with the Nodes' settings as annotations on the Kubernetes Nodes).

    Example: labctl bgp resources > calico-resources.yaml
    """
    from labctl.cli.platform_choice import require_inventory
    from labctl.render import calico

    inv = require_inventory(inventory)
    if output is OutputFormat.json:
        typer.echo(json.dumps(calico.resources(inv), indent=2))
    else:
        typer.echo(calico.resources_yaml(inv), nl=False)
