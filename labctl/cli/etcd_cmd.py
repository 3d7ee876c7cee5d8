"""`labctl etcd status|snapshot|restore`: the lab's etcd cluster, from the operator's machine."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import typer

from labctl.cli.bootstrap_cmd import StateDirOption
from labctl.cli.options import InventoryOption, OutputFormat, OutputOption

app = typer.Typer(
    help="The lab's etcd cluster: status, snapshots, restore; etcd builds.", no_args_is_help=True
)


@app.command()
def status(inventory: Path = InventoryOption, output: OutputFormat = OutputOption) -> None:
    """Members, leader, raft index, database size and alarms (exit 1 if a member is unwell).

    Example: labctl etcd status -o json
    """
    from labctl.cli.platform_choice import require_inventory
    from labctl.errors import LabctlError
    from labctl.etcd.cluster import EtcdSession

    with EtcdSession(require_inventory(inventory), inventory.parent) as session:
        states = session.states()
        try:
            alarms = [f"{a.alarm} on {a.member_id:x}" for a in session.client().alarms()]
        except LabctlError as exc:
            alarms = [f"cannot read alarms: {exc}"]
    unwell = [s for s in states if s.error] or alarms
    if output is OutputFormat.json:
        rows = [s.as_dict() for s in states]
        typer.echo(json.dumps({"ok": not unwell, "members": rows, "alarms": alarms}, indent=2))
    else:
        from labctl.cli.tables import Console, Table

        table = Table(title="etcd")
        for column in ("member", "url", "health", "leader", "raft index", "db size", "version"):
            table.add_column(column)
        for s in states:
            st = s.status
            table.add_row(
                s.name,
                s.url,
                "healthy" if s.error is None else f"[red]{s.error}[/]",
                "yes" if st and st.is_leader else "",
                str(st.raft_index) if st else "?",
                _size(st.db_size) if st else "?",
                st.version if st else "?",
            )
        Console().print(table)
        for alarm in alarms:
            typer.echo(f"alarm: {alarm}", err=True)
    if unwell:
        raise typer.Exit(1)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


# A full disk, a quota, no permission, a read-only file system: the local write failed.
_LOCAL_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EISDIR)


@app.command()
def snapshot(
    out: Path | None = typer.Option(
        None, "--out", help="Write it here instead of cluster.etcd.snapshots.directory."
    ),
    inventory: Path = InventoryOption,
    output: OutputFormat = OutputOption,
) -> None:
    """A consistent snapshot of the cluster, checksummed; kept with the others unless --out.

    Example: labctl etcd snapshot --out before-upgrade.db
    """
    from labctl.cli.outfile import check_destination
    from labctl.cli.platform_choice import require_inventory
    from labctl.etcd.cluster import EtcdSession

    if out is not None:
        check_destination(out, "--out")  # before asking the cluster for a snapshot
    try:
        with EtcdSession(require_inventory(inventory), inventory.parent) as session:
            entry = session.snapshot("labctl etcd snapshot", out)
            where = (out if out is not None else session.snapshot_dir() / entry.file).resolve()
    except OSError as exc:
        if exc.errno not in _LOCAL_WRITE_ERRORS:
            raise
        from labctl.errors import LabctlError

        raise LabctlError(
            f"etcd snapshot: could not write {exc.filename or out}: {exc.strerror}"
        ) from None
    if output is OutputFormat.json:
        typer.echo(json.dumps({"path": str(where), **entry.__dict__}, indent=2))
    else:
        typer.echo(f"{where}: {_size(entry.size)} from {entry.member}, sha256 {entry.sha256}")


@app.command()
def restore(
    file: Path = typer.Argument(..., help="A snapshot file (from labctl etcd snapshot)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask first."),
    inventory: Path = InventoryOption,
    state_dir: Path = StateDirOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Replace every member's data with a snapshot's; the cluster comes back with it.

    Every member is stopped, its data directory moved aside (never deleted), the
    snapshot restored in its place, then all are started and must answer healthy.
    A snapshot of the current data is taken first when the cluster answers.

    Example: labctl etcd restore etcd-snapshots/etcd-20261126T101500Z.db --yes
    """
    import datetime as dt
    import hashlib

    from labctl.cli.bootstrap_cmd import layer_context, run_and_report
    from labctl.cli.confirm import confirm
    from labctl.errors import LabctlError, UsageError
    from labctl.etcd.cluster import EtcdSession
    from labctl.etcd.restore import EtcdRestore

    if not file.is_file():
        raise UsageError(f"{file}: no such snapshot file")
    content = file.read_bytes()
    if not content:
        raise UsageError(f"{file} is empty; it is not an etcd snapshot")
    ctx = layer_context(inventory, state_dir, dry_run=False)
    members = ", ".join(e.name for e in EtcdSession(ctx.inventory, ctx.base_dir).endpoints)
    confirm(f"replace the etcd data of {members} with {file.name}?", yes)
    with EtcdSession(ctx.inventory, ctx.base_dir) as session:
        try:
            if session.reachable_unhealthy() is not None:
                kept = session.snapshot(f"before restoring {file.name}")
                typer.echo(f"current data kept as {session.snapshot_dir() / kept.file}", err=True)
        except LabctlError as exc:
            typer.echo(f"no snapshot of the current data ({exc})", err=True)
    now = dt.datetime.now(dt.UTC)
    restore_id = f"{hashlib.sha256(content).hexdigest()[:12]}-{now:%Y%m%dT%H%M%SZ}"
    run_and_report([EtcdRestore(content, restore_id)], ctx, output)


@app.command()
def build(
    version: str | None = typer.Option(
        None, "--version", help="The etcd release to build (3.5.21); else the inventory's."
    ),
    inventory: Path = InventoryOption,
) -> None:
    """Build etcd and etcdctl of a version into this machine's cache, once.

    The simulated lab makes its etcd image from them when the inventory names a
    version other than this machine's etcd. The module is generated in a work folder
    under the cache (no tracked file changes); go's output goes to a log file named in
    the progress; the time is recorded so the next build says what to expect.

    Example: labctl etcd build --version 3.5.21
    """
    from labctl.etcd import build as b
    from labctl.etcd import builder

    if version is None:
        from labctl.cli.platform_choice import require_inventory

        named = require_inventory(inventory).cluster.etcd.version
        if named is None:
            from labctl.errors import UsageError

            raise UsageError(f"{inventory} names no cluster.etcd.version; give --version")
        release = b.tag(named)
    else:
        release = b.tag(version)
    builder.build(release, lambda line: typer.echo(line, err=True))
