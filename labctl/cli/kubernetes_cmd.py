"""`labctl kubeconfig` and `labctl kubernetes status`: the lab's cluster, from the operator."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from labctl.cli.options import InventoryOption, OutputFormat, OutputOption

app = typer.Typer(
    help="The lab's Kubernetes cluster: status, and the binaries of any version.",
    no_args_is_help=True,
)


def kubeconfig(
    user: str = typer.Option(
        "admin",
        "--user",
        help="Whose certificate: admin, kube-controller-manager, kube-scheduler or kube-proxy.",
    ),
    write: Path | None = typer.Option(
        None, "--write", help="Write it to this file (0600, atomically) instead of printing it."
    ),
    inventory: Path = InventoryOption,
) -> None:
    """A self-contained kubeconfig for the lab's API, with a certificate from the PKI store.

    It holds a private key: --write makes the file readable by you only.

    Example: labctl kubeconfig --write ~/.kube/sthlm && kubectl --kubeconfig ~/.kube/sthlm get nodes
    """
    from labctl.cli.outfile import check_destination, write_output
    from labctl.cli.platform_choice import require_inventory
    from labctl.errors import UsageError
    from labctl.kubernetes.api import USERS, KubeSession
    from labctl.render.kubernetes.common import to_yaml

    if user not in USERS:  # a wrong argument: a usage error (exit 2), before any file is read
        raise UsageError(f"no kubeconfig for {user!r}; users are: {', '.join(USERS)}")
    if write is not None:
        check_destination(write, "--write")  # before the PKI store is read
    session = KubeSession(require_inventory(inventory), inventory.parent)
    text = to_yaml(session.kubeconfig(user))
    if write is None:
        typer.echo(text, nl=False)
        return
    write_output(write, text.encode(), "--write", 0o600)
    typer.echo(f"wrote the {user} kubeconfig to {write}", err=True)


@app.command()
def status(inventory: Path = InventoryOption, output: OutputFormat = OutputOption) -> None:
    """API health, control-plane components, Nodes and addons (exit 1 if the API, a
    component or a Node is unwell or missing).

    The addons' pods (kube-proxy, CoreDNS) are shown with their ready counts but do not
    change the exit code: CoreDNS needs the pod network, which the calico layers bring
    after this one.

    Example: labctl kubernetes status -o json
    """
    from labctl.cli.platform_choice import require_inventory
    from labctl.kubernetes.api import KubeSession

    found = KubeSession(require_inventory(inventory), inventory.parent).status()
    api = found["api"]
    unwell = (
        not api["ready"]
        or bool(found["missing_nodes"])
        or not all(c["healthy"] for c in found["components"])
    )
    if output is OutputFormat.json:
        typer.echo(json.dumps({"ok": not unwell, **found}, indent=2))
    else:
        from labctl.cli.tables import Console, Table

        console = Console()
        state = "ready" if api["ready"] else f"[red]not ready: {api['reason']}[/]"
        console.print(f"API {api['url']}: {state}")
        components = Table(title="control plane")
        for column in ("component", "leader", "renewed (s ago)", "health"):
            components.add_column(column)
        for c in found["components"]:
            components.add_row(
                c["component"],
                c["holder"] or "-",
                "-" if c["renewed_seconds_ago"] is None else str(c["renewed_seconds_ago"]),
                "healthy" if c["healthy"] else "[red]no fresh lease[/]",
            )
        nodes = Table(title="nodes")
        for column in ("node", "address", "kubelet", "ready"):
            nodes.add_column(column)
        for n in found["nodes"]:
            ready = "Ready" if n["ready"] else f"[yellow]NotReady[/] {n['reason'][:60]}"
            nodes.add_row(n["name"], n["address"], n["kubelet_version"], ready)
        for name in found["missing_nodes"]:
            nodes.add_row(name, "", "", "[red]not registered[/]")
        addons = Table(title="addons")
        for column in ("addon", "namespace", "ready"):
            addons.add_column(column)
        for a in found["addons"]:
            if a["desired"] is None:
                count = "[red]not in the API[/]"
            else:
                count = f"{a['ready']}/{a['desired']}"
                count = count if a["healthy"] else f"[yellow]{count}[/]"
            addons.add_row(f"{a['kind']} {a['name']}", a["namespace"], count)
        if api["ready"]:
            console.print(components)
            console.print(nodes)
            console.print(addons)
    if unwell:
        raise typer.Exit(1)


@app.command()
def build(
    version: str | None = typer.Option(
        None, "--version", help="The Kubernetes release to build (1.35.4); else the inventory's."
    ),
    inventory: Path = InventoryOption,
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Ask the proxy and resolve the module graph (go.mod, go.sum), compile nothing.",
    ),
) -> None:
    """Build the Kubernetes binaries of a version into this machine's cache, once.

    Any release the Go module proxy serves: the module is generated in a work folder
    under the cache (no tracked file changes), go's output goes to a log file named in
    the progress, and the time is recorded so the next build says what to expect. A
    version already built costs nothing.

    Example: labctl kubernetes build --version 1.35.4
    """
    from labctl.kubernetes import build as b
    from labctl.kubernetes import builder

    if version is None:
        from labctl.cli.platform_choice import require_inventory

        release = b.tag(require_inventory(inventory).cluster.kubernetes.version)
    else:
        release = b.tag(version)

    def say(line: str) -> None:
        typer.echo(line, err=True)

    builder.build(release, say, resolve_only=dry_run)
    if dry_run or os.geteuid() != 0:
        return
    # The simulated lab (root only) runs the control plane from images made of these
    # binaries; made here too, so a lab at this version needs nothing else.
    import time

    from labctl.sim import images

    start = time.monotonic()
    say(f"images for the simulated lab: {images.image_dir(release)}")
    images.build(release, images.modcache())
    say(f"images ready in {round(time.monotonic() - start)} s")
