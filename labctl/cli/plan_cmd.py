"""`labctl plan`: the whole lab's diff between its inventory and what runs.

The plan reads what runs (``labdiff/running.py``: the journal, the live APIs of
the components whose layers ran), dry-runs every chosen layer one at a time (a
layer whose dry run could not ask its nodes does not hide the ones after it:
a dry run changes nothing, so each is asked on its own), and prints the diff
``labdiff/diff.py`` makes of them. ``--layers`` keeps the layer-by-layer dry run
the command printed before (the same as ``bootstrap --dry-run``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from labctl.cli.bootstrap_cmd import StateDirOption, layer_context
from labctl.cli.options import InventoryOption, OutputFormat, OutputOption

if TYPE_CHECKING:
    from labctl.engine.executor import ProgressSink
    from labctl.engine.layer import Layer, LayerContext
    from labctl.labdiff.diff import LabDiff, LayerChange


def plan(
    layers: list[str] = typer.Argument(None, help="Layers to plan (default: all, in order)."),
    by_layer: bool = typer.Option(
        False,
        "--layers",
        help="Print each layer's dry run as bootstrap --dry-run does, not the lab's diff.",
    ),
    inventory: Path = InventoryOption,
    state_dir: Path = StateDirOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Print what bootstrap would change: servers joining or leaving, versions, each node's steps.

    Exit 2 when a version change breaks a skew rule (bootstrap would refuse it),
    1 when a layer could not ask its nodes, else 0. Nothing is changed.

    Example: labctl plan -o json
    """
    from labctl.cli.bootstrap_cmd import _bootstrap
    from labctl.engine.layer import select_layers
    from labctl.errors import UsageError
    from labctl.layers import LAYERS

    if by_layer:
        _bootstrap(layers or None, None, True, inventory, state_dir, output, show_graph=True)
        return
    try:
        chosen = select_layers(LAYERS, layers or None, None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    ctx = layer_context(inventory, state_dir, True, chosen)
    diff = lab_diff_of(chosen, ctx, inventory, state_dir, output)
    if output is OutputFormat.json:
        from labctl.engine.graph import direct
        from labctl.run import layer_waits

        report = diff.as_dict()
        report["graph"] = {n: list(needs) for n, needs in direct(layer_waits(chosen)).items()}
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(diff.render_text())
    if diff.skew:
        raise typer.Exit(2)
    if not diff.ok:
        raise typer.Exit(1)


def lab_diff_of(
    layers: Sequence[Layer],
    ctx: LayerContext,
    inventory: Path,
    state_dir: Path,
    output: OutputFormat,
) -> LabDiff:
    """The diff of ``layers`` on the lab ``ctx`` names (progress on stderr in text)."""
    import dataclasses

    from labctl.cli.bootstrap_cmd import STAND_IN
    from labctl.labdiff.diff import lab_diff, located
    from labctl.labdiff.running import observe

    differences = ctx.platform.differences()
    observed = observe(ctx.inventory, ctx.base_dir, state_dir)
    if output is OutputFormat.json:
        changes = _dry_runs(layers, ctx, None)
    else:
        from labctl.cli.progress import StepProgress

        with StepProgress() as progress:
            for line in differences:
                progress.announce(STAND_IN + line)
            # Which chosen layer waits for which (bootstrap runs the others at once).
            from labctl.cli.bootstrap_cmd import GRAPH
            from labctl.engine.graph import describe
            from labctl.run import layer_waits

            for line in describe(layer_waits(layers)):
                progress.announce(GRAPH + line)
            changes = _dry_runs(layers, ctx, progress.update)
    diff = lab_diff(ctx.inventory, str(inventory), observed, changes, differences)
    text = inventory.read_text(encoding="utf-8")
    skew = tuple(
        dataclasses.replace(p, message=located(p, text, str(inventory))) for p in diff.skew
    )
    return dataclasses.replace(diff, skew=skew)


def _dry_runs(
    layers: Sequence[Layer], ctx: LayerContext, progress: ProgressSink | None
) -> list[LayerChange]:
    """Each layer's dry run on its own, as the diff shows it."""
    from labctl.engine.executor import Options
    from labctl.errors import LabctlError
    from labctl.labdiff.diff import LayerChange, layer_change
    from labctl.run import run_layers

    found = []
    for layer in layers:
        try:
            (outcome,) = run_layers(
                [layer],
                ctx,
                Options(dry_run=True),
                progress=progress,
            )
        except LabctlError as exc:
            found.append(LayerChange(layer.name, "could-not-ask", could_not_ask=(str(exc),)))
            continue
        found.append(layer_change(outcome))
    return found
