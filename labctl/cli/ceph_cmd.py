"""`labctl ceph status`: the lab's Ceph cluster, as its monitors report it."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from labctl.cli.options import InventoryOption, OutputFormat, OutputOption

app = typer.Typer(help="The lab's Ceph cluster: health, quorum, OSDs, pools.", no_args_is_help=True)


@app.command()
def status(inventory: Path = InventoryOption, output: OutputFormat = OutputOption) -> None:
    """Health and each check not OK, mons in quorum, OSDs up/in per host, pools, PGs by state.

    Asks the first monitor node that answers (its own ceph CLI, over SSH). Exit 1
    when the cluster is not HEALTH_OK.

    Example: labctl ceph status -o json
    """
    from labctl.ceph.cluster import CephSession
    from labctl.cli.platform_choice import require_inventory

    with CephSession(require_inventory(inventory), inventory.parent) as session:
        report = session.status()
    if output is OutputFormat.json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        from labctl.cli.tables import Console, Table

        console = Console()
        colour = "green" if report.health.status == "HEALTH_OK" else "red"
        console.print(f"[{colour}]{report.health.status}[/] (fsid {report.fsid})")
        for check in report.health.checks:
            console.print(f"  {check.sentence()}")
        out = ", ".join(report.out_of_quorum) or "none"
        console.print(f"mons: {', '.join(report.quorum)} in quorum; out of quorum: {out}")
        osds = Table(title="OSDs")
        for column in ("host", "OSDs", "up", "in"):
            osds.add_column(column)
        for host, counts in report.osds_by_host.items():
            osds.add_row(host, str(counts["osds"]), str(counts["up"]), str(counts["in"]))
        console.print(osds)
        pools = Table(title="pools")
        for column in ("pool", "stored", "objects", "used"):
            pools.add_column(column)
        for pool in report.pools:
            used = f"{100 * float(pool['percent_used']):.2f} %"
            pools.add_row(pool["name"], f"{pool['stored']} B", str(pool["objects"]), used)
        console.print(pools)
        states = ", ".join(f"{n} {s}" for s, n in sorted(report.pgs_by_state.items()))
        console.print(f"PGs: {report.num_pgs} ({states or 'none'})")
    if report.health.status != "HEALTH_OK":
        raise typer.Exit(1)
