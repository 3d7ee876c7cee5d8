"""`labctl sim up|status|down|ssh|console`: the inventory's lab, simulated on this machine."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from labctl.cli.options import InventoryOption, OutputFormat, OutputOption

app = typer.Typer(
    help="Build the inventory's lab on this machine from real daemons (root).", no_args_is_help=True
)
StateOpt = typer.Option(
    Path(".labctl/sim"),
    "--state-dir",
    envvar="LABCTL_SIM_STATE",
    help="Where the simulated lab keeps its state.",
)


@app.command()
def up(
    inventory: Path = InventoryOption,
    state_dir: Path = StateOpt,
    vm: list[str] = typer.Option(
        [],
        "--vm",
        help=(
            "Make this server a VM node (qemu) that network-installs for real: NAME "
            "(SeaBIOS) or NAME:uefi (OVMF). Repeatable."
        ),
    ),
) -> None:
    """Bring the simulated lab up: namespaces, bridges, nodes with sshd, BMCs and PDUs.

    Secrets (BMC passwords, SNMP keys) come from the inventory's references.
    Idempotent: a second `up` changes nothing.

    Example: sudo -E labctl sim up && labctl sim status
    """
    from labctl.cli.bootstrap_cmd import StateDirOption as StateDir
    from labctl.cli.platform_choice import require_inventory
    from labctl.cli.tables import Console
    from labctl.engine.journal import journal_path
    from labctl.sim.lab import up as sim_up

    lab = require_inventory(inventory)
    # bootstrap's journal, where bootstrap run from here keeps it (its --state-dir).
    journal_dir = Path(os.environ.get(str(StateDir.envvar)) or StateDir.default)
    # A spinner on a terminal (30 servers take seconds); nothing extra in a pipe or log.
    with Console(stderr=True).status("simulated lab: starting") as shown:
        said = sim_up(
            lab,
            inventory,
            state_dir.resolve(),
            lambda phase: shown.update(phase),
            tuple(vm),
            journal_path(journal_dir.resolve()),
        )
    typer.echo(said)


@app.command()
def down(state_dir: Path = StateOpt) -> None:
    """Remove every namespace, link, route, mount and process the simulated lab made.

    Example: labctl sim down
    """
    from labctl.sim.lab import down as sim_down

    typer.echo(sim_down(state_dir.resolve()))


@app.command()
def status(state_dir: Path = StateOpt, output: OutputFormat = OutputOption) -> None:
    """Each part checked for real: host link and routes, nodes, sshd, BMCs (RMCP), PDU agents.

    Exit 1 when any part is missing or does not answer, each said in one line.

    Example: labctl sim status -o json
    """
    from labctl.sim.lab import status as sim_status

    lab = sim_status(state_dir.resolve())
    if output is OutputFormat.json:
        typer.echo(json.dumps(lab.as_dict(), indent=2))
    else:
        from labctl.cli.tables import Console, Table

        table = Table(title="simulated lab")
        for column in ("node", "running", "BMC power", "BMC answers", "outlets", "SSH"):
            table.add_column(column)
        for r in lab.nodes:
            answers = "?" if r.bmc_answers is None else ("yes" if r.bmc_answers else "no")
            table.add_row(
                r.name,
                "up" if r.running else "down",
                r.bmc_power,
                answers,
                r.outlets,
                "yes" if r.ssh else "no",
            )
        Console().print(table)
        for problem in lab.problems:
            typer.echo(f"broken: {problem}", err=True)
    if lab.problems:
        raise typer.Exit(1)


def _node(state_dir: Path, name: str) -> dict[str, str]:
    from labctl.errors import LabctlError
    from labctl.sim.record import read_record

    nodes: dict[str, dict[str, str]] = read_record(state_dir.resolve())["nodes"]
    if name not in nodes:
        raise LabctlError(f"no simulated node {name}; nodes: {', '.join(nodes)}")
    return nodes[name]


@app.command()
def env(state_dir: Path = StateOpt) -> None:
    """Print the environment that points labctl's SSH at the simulated nodes.

    Example: eval "$(labctl sim env)" && labctl bootstrap --only pki
    """
    import shlex

    from labctl.kubernetes.binaries import bin_dir
    from labctl.sim import platform as sim_platform
    from labctl.sim.record import read_record

    state = state_dir.resolve()
    record = read_record(state)
    engine = record.get("engine") or {}
    values = {
        # The inventory's login user, which sim up made on every node with sudo.
        "LABCTL_SSH_USER": record.get("login_user", "root"),
        "LABCTL_SSH_KNOWN_HOSTS": str(state / "known_hosts"),
        "LABCTL_SSH_IDENTITY": str(state / "id_ed25519"),
        # Ceph runs as the inventory says when sim up loaded its image into the nodes'
        # podman; else (no podman, no Ceph, or runtime host) from the host's binaries.
        **({} if "ceph" in engine.get("runtimes", []) else {sim_platform.CEPH_RUNTIME: "host"}),
        # Its monitors' stores share this machine's disk, whose free space is not the
        # lab's: warn only when it is nearly full.
        sim_platform.CEPH_CONFIG: "mon_data_avail_warn=5",
        # Simulated switches run FRR whatever their platform.
        sim_platform.SWITCH_PLATFORM: "frr",
        # ... nor a registry: the control plane's static pods run from images made of
        # the Kubernetes binaries this machine built (labctl/sim/images.py), imported
        # into each node's containerd from the build cache beside LABCTL_KUBE_BIN_DIR.
        sim_platform.KUBE_RUNTIME: "pods",
        sim_platform.KUBE_BIN_DIR: str(bin_dir()),
    }
    from labctl.programs import BIRD1, calico_build_dir

    # No calico-node here: nodes run BIRD 1.6 in its place, where setup.sh unpacks it.
    bird = os.environ.get(sim_platform.CALICO_BIRD) or BIRD1
    if Path(bird).exists():
        values[sim_platform.CALICO_BIRD] = bird
        # ... and calico-node's own confd and CNI plugin once Calico's objects are on the
        # API (docs/calico.md), from scripts/build-calico.sh's build (LABCTL_CALICO_NODE
        # names another; 0: labctl's own bird.cfg stays on the nodes, for debugging).
        asked = os.environ.get(sim_platform.CALICO_NODE, "")
        if asked != sim_platform.OPT_OUT:
            built = asked or str(calico_build_dir(os.environ, os.getuid()))
            if (Path(built) / "bin" / "calico-node").exists():
                values[sim_platform.CALICO_NODE] = built
                # ... and its Felix, unless the operator says LABCTL_CALICO_FELIX=0
                # (unset: sim_platform.FELIX_BY_DEFAULT, on).
                felix = os.environ.get(sim_platform.CALICO_FELIX, "")
                if felix:
                    values[sim_platform.CALICO_FELIX] = felix
            else:
                typer.echo(
                    f"calico-node is not built in {built} (scripts/build-calico.sh): the "
                    "nodes run labctl's own bird.cfg, not calico-node's confd",
                    err=True,
                )
    fabric = record.get("plan", {}).get("fabric")
    if fabric:  # the boot service runs where the lab's bridges are (VM nodes boot from it)
        values[sim_platform.BOOT_NETNS] = fabric
    if engine:
        values[sim_platform.CONTAINER_ENGINE] = "podman"
    if "monitoring" not in engine.get("runtimes", []):
        # No podman at sim up (or a lab made before the monitoring images): Debian's
        # monitoring programs run as units, each as its own user, not as containers.
        values[sim_platform.MONITORING_RUNTIME] = "host"
    if "etcd" not in engine.get("runtimes", []):
        # sim up found no podman (scripts/setup.sh installs it): the nodes have no engine.
        values[sim_platform.ETCD_RUNTIME] = "host"
        typer.echo(
            "podman was missing at sim up: etcd runs from the host's binary, not as the "
            "inventory's container",
            err=True,
        )
    for key, value in values.items():
        typer.echo(f"export {key}={shlex.quote(value)}")


# Everything after NAME belongs to the remote command: its options (`ls -l`, even
# `-h`) must not be read as labctl's.
@app.command(context_settings={"allow_interspersed_args": False})
def ssh(
    name: str,
    command: list[str] | None = typer.Argument(
        None, help="A command to run on the node instead of a shell (as with ssh)."
    ),
    state_dir: Path = StateOpt,
) -> None:
    """SSH into a node as root, with its host key checked strictly.

    With a COMMAND, run it there and exit with its status, as ssh does; without
    one, an interactive shell. Options go before NAME; after it, everything is
    the command's (a leading `--` is allowed).

    Example: labctl sim ssh fohn hostname
    """
    from labctl.programs import require

    argv = ssh_argv(state_dir, name, command or [])
    require("ssh", "labctl sim ssh runs it")  # a sentence, not exec's FileNotFoundError
    os.execvp("ssh", argv)


def ssh_argv(state_dir: Path, name: str, command: list[str]) -> list[str]:
    """The ssh command line for ``labctl sim ssh NAME [COMMAND...]``."""
    node = _node(state_dir, name)
    state = state_dir.resolve()
    argv = [
        "ssh", "-i", str(state / "id_ed25519"), "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={state / 'known_hosts'}", f"root@{node['ssh']}",
    ]  # fmt: skip
    if command[:1] == ["--"]:
        command = command[1:]
    if command:
        # After `--`, ssh takes every word as the remote command's, `-l` included.
        argv += ["--", *command]
    return argv


@app.command()
def console(name: str, state_dir: Path = StateOpt) -> None:
    """A shell inside a node's namespaces (for debugging; needs the node running).

    Example: labctl sim console wind
    """
    from labctl.errors import LabctlError
    from labctl.sim.node import pid

    _node(state_dir, name)
    init = pid(state_dir.resolve(), name)
    if init is None:
        raise LabctlError(f"{name} is powered off")
    children = Path(f"/proc/{init}/task/{init}/children").read_text().split()
    target = children[0] if children else str(init)
    from labctl.programs import require

    require("nsenter", "labctl sim console runs it")
    os.execvp("nsenter", ["nsenter", "-t", target, "-a", "sh"])
