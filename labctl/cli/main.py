"""The `labctl` command: a thin face over the inventory, layers and drivers.

Start-up is most of what a quick command costs (`labctl validate` on a whole lab,
`--help`), so the command line is built for the command asked: `run()` imports that
command's module alone and stands each other command in with its name and one-line
help, which is all `labctl --help` and "No such command" need. Heavy modules are
imported inside commands too. `app` (for tests and the docs) is the whole tree.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import typer

from labctl import __version__
from labctl.cli import options as _flag_help  # noqa: F401  (flags show no <bool> in help)


def _init() -> Any:
    from labctl.cli.init_cmd import init

    return init


def _render() -> Any:
    from labctl.cli.render_cmd import render

    return render


def _validate() -> Any:
    from labctl.cli.validate_cmd import validate

    return validate


def _schema() -> Any:
    from labctl.cli.schema_cmd import schema

    return schema


def _inventory() -> Any:
    from labctl.cli.inventory_cmd import app

    return app


def _power() -> Any:
    from labctl.cli.power_cmd import app

    return app


def _pki() -> Any:
    from labctl.cli.pki_cmd import app

    return app


def _etcd() -> Any:
    from labctl.cli.etcd_cmd import app

    return app


def _ceph() -> Any:
    from labctl.cli.ceph_cmd import app

    return app


def _kubernetes() -> Any:
    from labctl.cli.kubernetes_cmd import app

    return app


def _kubeconfig() -> Any:
    from labctl.cli.kubernetes_cmd import kubeconfig

    return kubeconfig


def _sim() -> Any:
    from labctl.cli.sim_cmd import app

    return app


def _switch() -> Any:
    from labctl.cli.switch_cmd import app

    return app


def _bgp() -> Any:
    from labctl.cli.bgp_cmd import app

    return app


def _boot() -> Any:
    from labctl.cli.boot_cmd import app

    return app


def _os() -> Any:
    from labctl.cli.os_cmd import app

    return app


def _plan() -> Any:
    from labctl.cli.plan_cmd import plan

    return plan


def _bootstrap() -> Any:
    from labctl.cli.bootstrap_cmd import bootstrap

    return bootstrap


def _reset() -> Any:
    from labctl.cli.reset_cmd import reset

    return reset


def _monitoring() -> Any:
    from labctl.cli.monitoring_cmd import app

    return app


def _whatif() -> Any:
    from labctl.cli.whatif_cmd import whatif

    return whatif


def _doctor() -> Any:
    from labctl.cli.doctor_cmd import doctor

    return doctor


def _completion() -> Any:
    from labctl.cli.completion_cmd import completion

    return completion


# Every command in the order `--help` lists it: its loader, whether it is a group of
# subcommands, and its one-line help as the command itself says it (a unit test holds
# the two equal: tests/unit/test_cli_startup.py).
COMMANDS: dict[str, tuple[Callable[[], Any], bool, str]] = {
    "init": (_init, False, "Write a commented starter inventory that `labctl validate` accepts."),
    "validate": (
        _validate,
        False,
        "Check inventory files: YAML, schema and semantic checks (docs/checks.md).",
    ),
    "schema": (_schema, False, "Print the inventory JSON Schema (draft 2020-12)."),
    "inventory": (_inventory, True, "Show or export the inventory."),
    "power": (_power, True, "Power servers on, off or through a cycle, via their BMCs or PDUs."),
    "pki": (_pki, True, "Mint, list, check and rotate the lab's certificates."),
    "etcd": (_etcd, True, "The lab's etcd cluster: status, snapshots, restore; etcd builds."),
    "ceph": (_ceph, True, "The lab's Ceph cluster: health, quorum, OSDs, pools."),
    "kubernetes": (
        _kubernetes,
        True,
        "The lab's Kubernetes cluster: status, and the binaries of any version.",
    ),
    "monitoring": (
        _monitoring,
        True,
        "The lab's monitoring (Prometheus, Alertmanager): targets and alerts.",
    ),
    "kubeconfig": (
        _kubeconfig,
        False,
        "A self-contained kubeconfig for the lab's API, with a certificate from the PKI store.",
    ),
    "sim": (_sim, True, "Build the inventory's lab on this machine from real daemons (root)."),
    "switch": (
        _switch,
        True,
        "Switch configurations rendered from the inventory, and their drift.",
    ),
    "bgp": (_bgp, True, "The lab's BGP fabric (Calico nodes and switches)."),
    "boot": (
        _boot,
        True,
        "The boot service: install assets, DHCP/TFTP (dnsmasq), iPXE and Ignition over HTTP.",
    ),
    "os": (_os, True, "Servers' operating system: what is installed, and network installs."),
    "plan": (
        _plan,
        False,
        "Print what bootstrap would change: servers joining or leaving, versions, each node's "
        "steps.",
    ),
    "bootstrap": (
        _bootstrap,
        False,
        "Bring the lab up in layer order, power first, monitoring last (`labctl plan` lists them).",
    ),
    "reset": (
        _reset,
        False,
        "Take servers out of the running lab and wipe what labctl put on them.",
    ),
    "render": (
        _render,
        False,
        "Print every file labctl would send NODE: boot answers, units, configs, certificates.",
    ),
    "whatif": (
        _whatif,
        False,
        "Say what losing DEVICEs (PDUs, outlets, switches, servers) would break, before any is.",
    ),
    "doctor": (
        _doctor,
        False,
        "Say whether the lab is fit: BMCs, PDUs, SSH, clocks, disks, certificates, services.",
    ),
    "completion": (
        _completion,
        False,
        "Print the shell completion script for SHELL (commands, options, their values).",
    ),
}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"labctl {__version__}")
        raise typer.Exit()


def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Declarative bare-metal lab provisioning from one inventory.yaml."""


def _standing_in() -> None:
    """A command not asked for on this command line; never called."""


def build_app(loaded: Callable[[str], bool] = lambda name: True) -> typer.Typer:
    """The command line with the commands ``loaded`` names imported, the others stood in."""
    app = typer.Typer(
        name="labctl",
        help="Declarative bare-metal lab provisioning from one inventory.yaml.\n\n"
        "Example: labctl validate inventory.yaml",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(main)
    for name, (load, group, short_help) in COMMANDS.items():
        if loaded(name):
            if group:
                app.add_typer(load(), name=name)
            else:
                app.command(name)(load())
        elif group:
            app.add_typer(typer.Typer(help=short_help), name=name)
        else:
            app.command(name, help=short_help)(_standing_in)
    return app


def asked(argv: list[str]) -> str | None:
    """The command ``argv`` (without the program) names, if any: the first word that is
    not an option (the top level's options take no value), or the word after ``--``."""
    words = iter(argv)
    for word in words:
        if word == "--":  # what follows is no option, whatever it looks like
            word = next(words, "")
        elif word.startswith("-"):
            continue
        return word if word in COMMANDS else None
    return None


def __getattr__(name: str) -> Any:
    if name == "app":  # the whole tree, every command imported
        return build_app()
    raise AttributeError(name)


def run() -> None:
    """Console-script entry: user errors become a message and an exit code, never a traceback."""
    from labctl.cli.completion_cmd import COMPLETE_VAR, answer_if_asked
    from labctl.errors import LabctlError

    answer_if_asked()
    if os.environ.get(COMPLETE_VAR):  # a shell completing needs every command's words
        app = build_app()
    else:
        command = asked(sys.argv[1:])
        app = build_app(lambda name: name == command)
    try:
        app(standalone_mode=True)
    except LabctlError as exc:
        typer.echo(f"labctl: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("labctl: interrupted", err=True)
        sys.exit(130)
    finally:
        _leave_to_exit()


def _leave_to_exit() -> None:
    """The command has ended and the process is about to: what it made is left to the
    exit. The interpreter's shutdown runs the cycle collector over every object still
    alive (modules, paramiko's and cryptography's, a bootstrap's plans and facts):
    0.15-0.2 s of a converged bootstrap (docs/performance.md, `convgap`). Frozen, they
    are not scanned: modules are still torn down and files closed as before, and what
    is left in cycles goes with the process's memory instead of through the collector."""
    import gc

    gc.freeze()
