"""`labctl bootstrap`: layers in order, applied (or dry-run); what `labctl plan --layers` prints."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from labctl.cli.options import InventoryOption, OutputFormat, OutputOption

if TYPE_CHECKING:
    from labctl.engine.layer import Layer, LayerContext

StateDirOption = typer.Option(
    Path(".labctl"), "--state-dir", envvar="LABCTL_STATE_DIR", help="Journal, lock and local state."
)


def layer_context(
    inventory: Path, state_dir: Path, dry_run: bool, layers: Sequence[Layer] = ()
) -> LayerContext:
    """The context ``layers`` run in. Here the lab kind is known, so the lab checks those
    layers name (``lab_checks``) run: on a real lab a finding refuses the run before
    anything is written; on the simulated one it is a note on stderr."""
    from labctl.cli.platform_choice import chosen, require_for_lab
    from labctl.engine.layer import LayerContext
    from labctl.inventory import format_note

    # The platform, chosen here once from `labctl sim env`'s variables (or none: a real lab).
    platform = chosen()
    checks = [c for layer in layers for c in getattr(layer, "lab_checks", ())]
    model, notes = require_for_lab(inventory, platform, checks)
    for note in notes:
        typer.echo(format_note(note), err=True)
    return LayerContext(model, inventory, state_dir, dry_run, platform=platform)


def bootstrap(
    only: list[str] = typer.Option(None, "--only", help="Run only this layer (repeatable)."),
    start: str | None = typer.Option(None, "--from", help="Start at this layer."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would change; change nothing."
    ),
    inventory: Path = InventoryOption,
    state_dir: Path = StateDirOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Bring the lab up in layer order, power first, monitoring last (`labctl plan` lists them).

    Re-running on a converged lab changes nothing; a run that was killed resumes.

    Example: labctl bootstrap --from pki --dry-run
    """
    _bootstrap(only or None, start, dry_run, inventory, state_dir, output)


def _bootstrap(
    only: list[str] | None,
    start: str | None,
    dry_run: bool,
    inventory: Path,
    state_dir: Path,
    output: OutputFormat,
    show_graph: bool = False,
) -> None:
    from labctl.engine.layer import select_layers
    from labctl.errors import UsageError
    from labctl.layers import LAYERS

    try:
        layers = select_layers(LAYERS, only, start)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    ctx = layer_context(inventory, state_dir, dry_run, layers)
    from labctl.cli.preflight import skew_preflight
    from labctl.drivers.ssh import shared_sessions

    # One SSH connection per node for the preflight and every layer's reads and work.
    with shared_sessions():
        skew_preflight(layers, ctx, inventory)
        run_and_report(layers, ctx, output, stand_ins=True, graph=show_graph)


STAND_IN = "stand-in: "
GRAPH = "graph: "


def run_and_report(
    layers: Sequence[Layer],
    ctx: LayerContext,
    output: OutputFormat,
    stand_ins: bool = False,
    graph: bool = False,
) -> None:
    """Run ``layers`` with progress on stderr (or one JSON report); exit 1 if one failed.
    With ``stand_ins`` (``plan``, ``bootstrap``), a simulated lab's differences are said
    once first, one line each (``stand_ins`` in JSON); a real lab has none to say. With
    ``graph`` (``plan``), what each layer waits for, one ``graph: `` line each (``graph``
    in JSON: each layer's list)."""
    from labctl.engine.executor import Options
    from labctl.run import layer_waits, run_layers

    options = Options(dry_run=ctx.dry_run)
    differences = ctx.platform.differences() if stand_ins else ()
    waits = layer_waits(layers) if graph else {}
    if output is OutputFormat.json:
        outcomes = run_layers(layers, ctx, options)
    else:
        from labctl.cli.progress import StepProgress

        with StepProgress() as progress:
            for line in differences:
                progress.announce(STAND_IN + line)
            if waits:
                from labctl.engine.graph import describe

                for line in describe(waits):
                    progress.announce(GRAPH + line)
            outcomes = run_layers(
                layers, ctx, options, progress=progress.update, announce=progress.announce
            )
    failed = any(o.status == "failed" for o in outcomes)
    if output is OutputFormat.json:
        report: dict[str, object] = {"ok": not failed}
        if differences:
            report["stand_ins"] = list(differences)
        if waits:
            from labctl.engine.graph import direct

            report["graph"] = {name: list(needs) for name, needs in direct(waits).items()}
        report["layers"] = [o.as_dict() for o in outcomes]
        typer.echo(json.dumps(report, indent=2))
    if failed:
        raise typer.Exit(1)
