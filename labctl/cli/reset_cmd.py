"""`labctl reset`: servers taken out of the running lab and wiped, or the whole lab.

The command reads what runs (``day2/live.py``), plans the steps or the refusals
(``day2/retire.py``, pure), asks for confirmation naming everything destroyed, and
carries the steps out (``day2/apply.py``) under the state directory's run lock, so no
bootstrap runs meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from labctl.cli.bootstrap_cmd import StateDirOption
from labctl.cli.options import InventoryOption, OutputFormat, OutputOption

if TYPE_CHECKING:
    from labctl.day2.retire import Retirement, Step
    from labctl.inventory.model import Inventory


def reset(
    servers: list[str] = typer.Argument(None, help="Servers to reset (or --all)."),
    everything: bool = typer.Option(False, "--all", help="Reset every server of the lab."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask first."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Say what would be removed and wiped; change nothing."
    ),
    inventory: Path = InventoryOption,
    state_dir: Path = StateDirOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Take servers out of the running lab and wipe what labctl put on them.

    For each server, in order: its Node drained and deleted, its etcd member removed,
    its OSDs out, safe to destroy and purged, its monitor removed, its BGP neighbours
    removed from the switches, labctl's units, data and certificates wiped, and the
    server powered off. Refused, before anything changes, when etcd or the Ceph
    monitors would lose quorum or a pool its copies. With --all every server is wiped
    and powered off (no quorum to keep), refused while one that no reset wiped does
    not answer SSH. `labctl bootstrap` builds a reset server (or lab) again; to
    remove a server for good, delete it from the inventory after.

    Example: labctl reset wind --dry-run
    """
    from labctl.cli.confirm import confirm
    from labctl.cli.platform_choice import chosen, require_inventory
    from labctl.day2.live import read_live, read_whole_lab
    from labctl.day2.retire import plan_reset
    from labctl.errors import LabctlError, UsageError

    names = list(servers or [])
    if everything == bool(names):
        raise UsageError("name the servers to reset, or --all (not both)")
    inv = require_inventory(inventory)
    base_dir = inventory.parent
    if everything:  # nothing stays: no quorum to keep; only who answers SSH is asked
        live = read_whole_lab(inv, state_dir)
    else:
        live = read_live(inv, base_dir, state_dir, chosen().switch_platform(), names)
    retirement = plan_reset(inv, names, live, whole_lab=everything)
    if output is OutputFormat.json and (dry_run or retirement.refusals):
        typer.echo(json.dumps({"ok": not retirement.refusals, "dry_run": dry_run,
                               **retirement.as_dict()}, indent=2))  # fmt: skip
        if retirement.refusals:
            raise typer.Exit(1)
        return
    if retirement.refusals:
        raise LabctlError("reset refused, nothing changed:\n  " + "\n  ".join(retirement.refusals))
    if output is not OutputFormat.json:
        for note in retirement.notes:
            typer.echo(note, err=True)
    if dry_run:
        for step in retirement.steps:
            typer.echo(step.sentence)
        return
    who = (
        "the whole lab (" + ", ".join(retirement.servers) + ")"
        if everything
        else ", ".join(retirement.servers)
    )
    if not yes:  # the confirmation names everything destroyed
        listing = "".join(f"\n  {line}" for line in retirement.destroyed())
        typer.echo(f"`labctl reset` will:{listing}", err=True)
    confirm(f"reset {who}?", yes)
    _apply(retirement, inv, base_dir, state_dir, everything, output)


def _apply(
    retirement: Retirement,
    inv: Inventory,
    base_dir: Path,
    state_dir: Path,
    everything: bool,
    output: OutputFormat,
) -> None:
    from labctl.cli.platform_choice import chosen
    from labctl.day2.apply import Reset
    from labctl.engine.journal import RunLock
    from labctl.errors import LabctlError

    quiet = output is OutputFormat.json

    def say(line: str) -> None:
        if not quiet:
            typer.echo(line, err=True)

    applier = Reset(inv, base_dir, state_dir, everything, say, platform=chosen())

    def carry_out(steps: Sequence[Step]) -> tuple[list[dict[str, str]], str | None]:
        """``steps`` one after another, up to the first that fails: what was done, and
        the failure's sentence."""
        done: list[dict[str, str]] = []
        for step in steps:
            say(step.sentence)
            try:
                applier.do(step)
            except LabctlError as exc:
                return done, f"{step.sentence}: {exc}"
            done.append(step.as_dict())
        return done, None

    # A server's reset guards the others' quorum and data, so one server's steps wait
    # for the last's. --all has no guard left to keep: every server's own steps (its
    # wipe, its power-off) run beside the others', a server's in their order.
    groups: list[Sequence[Step]] = [retirement.steps]
    if everything:
        by_server: dict[str, list[Step]] = {}
        for step in retirement.steps:
            by_server.setdefault(step.server, []).append(step)
        groups = list(by_server.values())
    with RunLock(state_dir):
        try:
            with ThreadPoolExecutor(max_workers=min(8, max(1, len(groups)))) as pool:
                outcomes = list(pool.map(carry_out, groups))
        finally:
            applier.close()
    done = [step for group, _ in outcomes for step in group]
    failure = next((why for _, why in outcomes if why is not None), None)
    if quiet:
        report = {"ok": failure is None, "dry_run": False, **retirement.as_dict(),
                  "done": done, "failed": failure}  # fmt: skip
        typer.echo(json.dumps(report, indent=2))
    if failure is not None:
        if not quiet:
            typer.echo(f"labctl: reset stopped: {failure}\n(run it again to resume)", err=True)
        raise typer.Exit(1)
