"""`labctl boot fetch|serve|stop|status`: the boot service that network-installs servers."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from types import FrameType

import typer

from labctl.cli.bootstrap_cmd import StateDirOption
from labctl.cli.options import InventoryOption, OutputFormat, OutputOption

app = typer.Typer(
    help="The boot service: install assets, DHCP/TFTP (dnsmasq), iPXE and Ignition over HTTP.",
    no_args_is_help=True,
)

NetnsOption = typer.Option(
    None, "--netns", help="Run the service inside this network namespace (simulated labs)."
)


@app.command()
def fetch(
    keyring: Path | None = typer.Option(
        None,
        "--keyring",
        help="GPG keyring with the publisher's key: Flatcar's digests or each Fedora CoreOS "
        "file are checked against it with gpgv.",
    ),
    inventory: Path = InventoryOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Fetch each release the servers install into the asset cache, checksums verified.

    A file whose hash is not the published one (Flatcar: SHA-512 in .DIGESTS; Fedora
    CoreOS: SHA-256 in its stream metadata) is refused and not cached.

    Example: labctl boot fetch -o json
    """
    from labctl.boot import assets
    from labctl.cli.platform_choice import require_inventory

    inv = require_inventory(inventory)
    results = []
    for release in assets.releases(inv, inventory.parent):
        results += assets.fetch(release, keyring=keyring)
    if output is OutputFormat.json:
        typer.echo(json.dumps([r.__dict__ for r in results], indent=2))
        return
    for r in results:
        state = "fetched" if r.changed else "already cached"
        typer.echo(f"{r.release} {r.role}: {r.name} {state} (sha512 {r.sha512[:16]}...)")


@app.command()
def serve(
    background: bool = typer.Option(
        False, "--background", help="Start it and return; labctl boot stop ends it."
    ),
    netns: str | None = NetnsOption,
    inventory: Path = InventoryOption,
    state_dir: Path = StateDirOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Answer booting servers: DHCP and TFTP through dnsmasq, iPXE scripts, kernels and
    Ignition over HTTP per MAC (unknown MACs get nothing), install reports.

    Runs until interrupted unless --background.

    Example: labctl boot serve
    """
    from labctl.boot import service
    from labctl.boot.state import BootDirs
    from labctl.cli.platform_choice import require_inventory

    inv = require_inventory(inventory)
    boot = inv.lab.boot
    running = service.start(inv, inventory, state_dir, netns=netns)
    where = f"http://{boot.address}:{boot.http_port}" if boot else "?"
    dirs = BootDirs.of(state_dir)
    if output is OutputFormat.json:
        typer.echo(
            json.dumps(
                {"dnsmasq": running.dnsmasq, "http": running.http, "url": where,
                 "requests": str(dirs.requests), "reports": str(dirs.reports)},
                indent=2,
            )
        )  # fmt: skip
    else:
        typer.echo(f"boot service up: dnsmasq pid {running.dnsmasq}, HTTP {where}")
        typer.echo(f"requests: {dirs.requests}; reports: {dirs.reports}")
    if background:
        return

    def _stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        while service.running(state_dir) is not None:
            time.sleep(1)
        typer.echo("labctl: the boot service stopped on its own", err=True)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        service.stop(state_dir)


@app.command()
def stop(state_dir: Path = StateDirOption) -> None:
    """Stop the boot service this state directory started.

    Example: labctl boot stop
    """
    from labctl.boot import service

    typer.echo("stopped" if service.stop(state_dir) else "was not running")


@app.command()
def status(
    inventory: Path = InventoryOption,
    state_dir: Path = StateDirOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Whether the service runs, and each server's last install report.

    Example: labctl boot status -o json
    """
    from labctl.boot import service
    from labctl.boot.state import BootDirs, read_report
    from labctl.cli.platform_choice import require_inventory

    inv = require_inventory(inventory)
    running = service.running(state_dir)
    dirs = BootDirs.of(state_dir)
    reports = {s.name: read_report(dirs, s.name) for s in inv.servers}
    if output is OutputFormat.json:
        typer.echo(
            json.dumps(
                {
                    "running": running is not None,
                    "reports": {k: v.as_dict() if v else None for k, v in reports.items()},
                },
                indent=2,
            )
        )
        return
    typer.echo("running" if running else "not running")
    for name, report in reports.items():
        said = f"{report.result}: {report.message}" if report else "no report"
        typer.echo(f"{name}: {said}")
