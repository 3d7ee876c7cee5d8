"""`labctl whatif --fail DEVICE ...`: what losing devices would break, before anything is touched.

The prediction itself is pure (``labctl/inventory/failure.py``); this module only
reads the inventory, with ``--live`` asks the lab what is already down
(``labctl/doctor/live.py``) and folds it in, prints the prediction as a table for
people or JSON for programs, and turns it into the exit code: 0 nothing lost, 1
something breaks. Live reading is asked for, never implied: whatif's first promise
is to answer before anything is touched, without a network.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from labctl.cli.bootstrap_cmd import StateDirOption
from labctl.cli.options import InventoryOption, OutputFormat, OutputOption


def whatif(
    fail: list[str] = typer.Option(
        ...,
        "--fail",
        metavar="DEVICE",
        help="A PDU (pdu1), a PDU outlet (pdu1:3), a switch or a server; repeat for more.",
    ),
    live: bool = typer.Option(
        False,
        "--live",
        help="Also ask the lab what is already down (BMC power, etcd health, Ceph monitor "
        "quorum, BGP sessions, where their layer ran) and count it.",
    ),
    bound: float = typer.Option(
        10.0, "--bound", min=1.0, help="With --live: seconds the live asks may take in all."
    ),
    inventory: Path = InventoryOption,
    state_dir: Path = StateDirOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Say what losing DEVICEs (PDUs, outlets, switches, servers) would break, before any is.

    From the inventory alone: servers without power or network, dark switch ports,
    BGP sessions and pod blocks, etcd and Ceph monitor quorum, each pool's placement,
    the Kubernetes control plane. With --live, what the lab says now is folded in: a
    server already off, an etcd member not healthy, a monitor outside the quorum or a
    BGP session not Established counts as lost already. Exit 0 nothing lost, 1
    something breaks, 2 bad input.

    Example: labctl whatif --fail pdu1 --fail kek-core --live
    """
    from labctl.cli.platform_choice import chosen, require_inventory
    from labctl.inventory.failure import parse, predict, refine

    inv = require_inventory(inventory)
    prediction = predict(inv, parse(inv, fail))
    if live:
        from labctl.doctor.live import read_live

        facts = read_live(inv, inventory.parent, state_dir, chosen(), bound)
        prediction = refine(inv, prediction, facts)
    breaks = prediction.breaks()
    if output is OutputFormat.json:
        typer.echo(json.dumps(prediction.as_dict(), indent=2))
    else:
        _print(prediction)
    if breaks:
        raise typer.Exit(1)


def _print(p: object) -> None:
    from labctl.cli.tables import Console, Table
    from labctl.inventory.failure import Prediction

    assert isinstance(p, Prediction)
    console = Console()
    names = ", ".join(f.name for f in p.failed)
    table = Table(title=f"If {names} fail")
    for column in ("what", "name", "outcome"):
        table.add_column(column)
    for d in p.down:
        table.add_row(d.kind, d.name, f"[red]down: {d.why}")
    for port in p.dark_ports:
        table.add_row("port", f"{port.switch} {port.port}", f"dark: {port.why}")
    for s in p.sessions:
        table.add_row("bgp", f"{s.a} - {s.b}", f"[red]lost ({s.kind}): {s.why}")
    for b in p.blocks:
        table.add_row("pod block", b.block, f"[red]unreachable: {b.why}")
    for q in (p.etcd, p.ceph_monitors):
        if q is None or not q.members:
            continue
        mark = "" if q.kept else "[red]"
        verdict = "kept" if q.kept else "LOST"
        table.add_row(
            "quorum",
            q.name,
            f"{mark}{verdict}: {len(q.left)} of {len(q.members)} left, {q.needed} needed",
        )
    for pool in p.pools:
        mark = "" if pool.after == "ok" else "[red]"
        table.add_row(
            "pool",
            pool.name,
            f"{mark}{pool.after}: {pool.hosts_after} of {pool.hosts_before} OSD hosts, "
            f"size {pool.size}, min_size {pool.min_size}",
        )
    cp = p.control_plane
    mark = "" if cp.kept else "[red]"
    table.add_row(
        "kubernetes",
        "control plane",
        f"{mark}{'kept' if cp.kept else 'LOST'}: {len(cp.left)} of {len(cp.members)} left; "
        f"API endpoint {cp.endpoint} ({cp.endpoint_holder or 'no server'}) "
        f"{'up' if cp.endpoint_up else 'down'}",
    )
    console.print(table)
    for note in p.notes:
        typer.echo(f"note: {note}", err=True)
    breaks = p.breaks()
    if breaks:
        typer.echo("breaks: " + "; ".join(breaks))
    else:
        typer.echo("nothing lost: every server, session, quorum and pool stays as it is")
    if p.live is None:
        typer.echo("(predicted from the inventory alone; --live also reads the lab's health)")
        return
    said = p.live.sentences()
    typer.echo(
        "(refined by live health: " + ("; ".join(said) if said else "nothing already down") + ")"
    )
