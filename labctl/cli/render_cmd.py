"""`labctl render NODE [WHAT]`: every file labctl would put on a node or switch, with no lab.

A newcomer reads and diffs what a bootstrap would push before there is a lab
to push it to. The files come from ``labctl/artefacts.py`` (the layers' own dry
plans and the boot renders), so what this shows is what a bootstrap pushes;
this module only picks the target, prints or writes them, and says what a dry
run could not show.
"""

from __future__ import annotations

import difflib
import json
import tempfile
from pathlib import Path

import typer

from labctl.cli.options import InventoryOption, OutputFormat, OutputOption


def render(
    node: str = typer.Argument(..., metavar="NODE", help="A server or switch of the inventory."),
    what: str | None = typer.Argument(
        None,
        metavar="WHAT",
        help="Only this layer (boot, ignition, pki, etcd, ...) or path glob (*.service).",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Write the files under this existing folder, as DIR/NODE/<path on the node>.",
    ),
    inventory: Path = InventoryOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Print every file labctl would send NODE: boot answers, units, configs, certificates.

    No lab, boot service or SSH is needed: the files come from each layer's plans,
    made dry as for a first bootstrap; secrets are masked. A file a dry run cannot
    know yet (certificates before `labctl pki mint`) is named on stderr instead.

    Example: labctl render fohn etcd --out /tmp/render
    """
    from labctl.artefacts import collect, matching
    from labctl.cli.outfile import write_output
    from labctl.cli.platform_choice import chosen
    from labctl.engine.layer import LayerContext
    from labctl.errors import UsageError
    from labctl.inventory import require_inventory
    from labctl.layers import LAYERS

    if out is not None and not out.expanduser().is_dir():
        raise UsageError(
            f"--out {out}: no such folder; create it first (mkdir -p {out}) or name another"
        )
    model = require_inventory(inventory)
    names = [s.name for s in model.servers] + [s.name for s in model.switches]
    if node not in names:
        close = difflib.get_close_matches(node, names, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise UsageError(
            f"{node} is no server or switch of {inventory}{hint} (known: {', '.join(names)})"
        )
    with tempfile.TemporaryDirectory(prefix="labctl-render-") as state:
        # An empty state directory: what a first bootstrap would push.
        ctx = LayerContext(model, inventory, Path(state), dry_run=True, platform=chosen())
        found, notes = collect(ctx, LAYERS, node)
    shown = matching(found, what)
    if what and not shown:
        layers = sorted({a.layer for a in found})
        raise UsageError(
            f"nothing for {node} matches {what!r}; layers with files: {', '.join(layers)}"
        )
    if not found and node in [s.name for s in model.switches]:
        notes.append(
            f"bootstrap pushes nothing to {node}: only a switch the nodes peer with "
            "(cluster.calico) that runs FRR gets its configuration; "
            f"`labctl switch config {node}` prints what it would be"
        )
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    if out is not None:
        root = out.expanduser() / node
        for artefact in shown:
            target = root / artefact.path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            write_output(target, artefact.content, "--out", artefact.mode)
        typer.echo(f"wrote {len(shown)} file(s) under {root}", err=True)
    if output is OutputFormat.json:
        typer.echo(json.dumps({"node": node, "files": [a.as_dict() for a in shown]}, indent=2))
    elif out is None:
        for artefact in shown:
            typer.echo(f"==> {artefact.path} ({artefact.layer}, {artefact.mode:04o}) <==")
            typer.echo(artefact.content.decode("utf-8", "replace"), nl=False)
            if not artefact.content.endswith(b"\n"):
                typer.echo()
