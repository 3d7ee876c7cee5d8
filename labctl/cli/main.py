"""The `labctl` command: a thin face over the inventory, layers and drivers.

Heavy modules are imported inside commands so `labctl --help` stays fast.
"""

from __future__ import annotations

import sys

import typer

from labctl import __version__
from labctl.cli import (
    bgp_cmd,
    boot_cmd,
    bootstrap_cmd,
    ceph_cmd,
    completion_cmd,
    etcd_cmd,
    init_cmd,
    inventory_cmd,
    kube_cmd,
    os_cmd,
    pki_cmd,
    power_cmd,
    render_cmd,
    schema_cmd,
    sim_cmd,
    switch_cmd,
    validate_cmd,
)

app = typer.Typer(
    name="labctl",
    help="Declarative bare-metal lab provisioning from one inventory.yaml.\n\n"
    "Example: labctl validate inventory.yaml",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("init")(init_cmd.init)
app.command("validate")(validate_cmd.validate)
app.command("schema")(schema_cmd.schema)
app.add_typer(inventory_cmd.app, name="inventory")
app.add_typer(power_cmd.app, name="power")
app.add_typer(pki_cmd.app, name="pki")
app.add_typer(etcd_cmd.app, name="etcd")
app.add_typer(ceph_cmd.app, name="ceph")
app.add_typer(kube_cmd.app, name="kubernetes")
app.command("kubeconfig")(kube_cmd.kubeconfig)
app.add_typer(sim_cmd.app, name="sim")
app.add_typer(switch_cmd.app, name="switch")
app.add_typer(bgp_cmd.app, name="bgp")
app.add_typer(boot_cmd.app, name="boot")
app.add_typer(os_cmd.app, name="os")
app.command("plan")(bootstrap_cmd.plan)
app.command("bootstrap")(bootstrap_cmd.bootstrap)
app.command("render")(render_cmd.render)
app.command("completion")(completion_cmd.completion)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"labctl {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Declarative bare-metal lab provisioning from one inventory.yaml."""


def run() -> None:
    """Console-script entry: user errors become a message and an exit code, never a traceback."""
    from labctl.errors import LabctlError

    completion_cmd.answer_if_asked()
    try:
        app(standalone_mode=True)
    except LabctlError as exc:
        typer.echo(f"labctl: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("labctl: interrupted", err=True)
        sys.exit(130)
