"""`labctl power status|on|off|cycle|reset|soft|bootdev`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from labctl.cli.options import InventoryOption, OutputFormat, OutputOption

if TYPE_CHECKING:
    from labctl.inventory.model import Server
    from labctl.power.requests import TargetResult

app = typer.Typer(
    help="Power servers on, off or through a cycle, via their BMCs or PDUs.", no_args_is_help=True
)


class Via(StrEnum):
    ipmi = "ipmi"
    pdu = "pdu"


TargetsArg = typer.Argument(None, help="Server names.")
AllOpt = typer.Option(False, "--all", help="Every server in the inventory.")
RoleOpt = typer.Option(None, "--role", help="Every server with this role (etcd, worker, ...).")
ViaOpt = typer.Option(Via.ipmi, "--via", help="ipmi (the BMC) or pdu (cut the outlets).")
DryRunOpt = typer.Option(False, "--dry-run", help="Say what would be done; touch nothing.")
YesOpt = typer.Option(False, "--yes", "-y", help="Do not ask before destructive actions.")
ForceOpt = typer.Option(False, "--force", help="Override the quorum guard.")
TimeoutOpt = typer.Option(5.0, "--timeout", help="Seconds per device call (retried twice).")
SettleOpt = typer.Option(60.0, "--settle", help="Seconds a server may take to reach the state.")
DelayOpt = typer.Option(5.0, "--cycle-delay", help="Seconds outlets stay off in a PDU cycle.")
StateDirOpt = typer.Option(
    Path(".labctl"), "--state-dir", envvar="LABCTL_STATE_DIR", help="Where the journal is."
)
GracefulOpt = typer.Option(
    True,
    "--graceful/--no-graceful",
    help="Ask the switches to stop preferring a node's routes before it goes down.",
)
SoftWaitOpt = typer.Option(
    60.0, "--soft-wait", help="Seconds a soft stop may take before a hard off (then the PDU)."
)


def _power(
    verb_name: str,
    targets: list[str] | None,
    everything: bool,
    role: str | None,
    via: Via,
    dry_run: bool,
    yes: bool,
    force: bool,
    timeout: float,
    settle: float,
    cycle_delay: float,
    inventory_path: Path,
    output: OutputFormat,
    graceful: bool = True,
    soft_wait: float = 60.0,
    state_dir: Path = Path(".labctl"),
) -> None:
    from labctl.cli.confirm import confirm
    from labctl.cli.platform_choice import require_inventory
    from labctl.power.requests import DISRUPTIVE, PowerVerb, select_targets

    verb = PowerVerb(verb_name)
    inventory = require_inventory(inventory_path)
    servers = select_targets(inventory, targets or [], everything, role)
    names = ", ".join(s.name for s in servers)
    if dry_run:
        what = "read the power state of" if verb is PowerVerb.STATUS else f"power {verb}"
        typer.echo(
            f"would {what} {names} via {via}" + ("" if force else ", after the quorum guard")
        )
        return
    destructive = verb in DISRUPTIVE or (via is Via.pdu and verb is not PowerVerb.STATUS)
    if destructive and (len(servers) > 1 or via is Via.pdu):
        confirm(f"power {verb} {names} via {via}?", yes)
    import asyncio  # here, not at the top: validate and --help do not pay for it
    import contextlib

    from labctl.cli.tables import Console
    from labctl.engine.journal import applied_layers
    from labctl.power.controller import PowerSession

    fabric = None
    if graceful and verb is not PowerVerb.STATUS and "calico" in applied_layers(state_dir):
        from labctl.calico.graceful import Fabric
        from labctl.cli.platform_choice import chosen

        # The switches hold the nodes' sessions once the calico layer has run (its journal).
        fabric = Fabric(inventory, inventory_path.parent, chosen().switch_platform())
    session = PowerSession(
        inventory,
        inventory_path.parent,
        via=via.value,
        servers=servers,
        timeout=timeout,
        cycle_delay=cycle_delay,
        graceful=fabric,
        soft_wait=soft_wait,
        say=lambda text: typer.echo(text, err=True),
    )

    async def work() -> list[TargetResult]:
        async with session:
            session.check_secrets()
            return await session.request(servers, verb, force=force, settle=settle)

    # A change may take up to --settle seconds: say what is going on, on a terminal only.
    waiting = (
        Console(stderr=True).status(f"power {verb}: {names} via {via}, up to {settle:g} s")
        if verb is not PowerVerb.STATUS
        else contextlib.nullcontext()
    )
    with waiting:
        results = asyncio.run(work())
    _report(results, output, session.said)  # after the spinner, so the table prints cleanly


def _report(
    results: Sequence[TargetResult], output: OutputFormat, said: Sequence[str] = ()
) -> None:
    failed = [r for r in results if not r.ok]
    if output is OutputFormat.json:
        report = {"ok": not failed, "targets": [r.as_dict() for r in results], "said": list(said)}
        typer.echo(json.dumps(report, indent=2))
    else:
        from labctl.cli.tables import Console, Table

        table = Table()
        for column in ("server", "before", "action", "after", "time", "error"):
            table.add_column(column)
        for r in results:
            table.add_row(
                r.server,
                r.before or "?",
                r.action,
                r.after or "?",
                f"{r.seconds:.1f}s",
                f"[red]{r.error}[/]" if r.error else "",
            )
        Console().print(table)
        if failed:
            typer.echo(f"not reached: {', '.join(r.server for r in failed)}", err=True)
    if failed:
        raise typer.Exit(1)


def _command(action: str, help_text: str, example: str) -> None:
    def command(
        targets: list[str] = TargetsArg,
        everything: bool = AllOpt,
        role: str | None = RoleOpt,
        via: Via = ViaOpt,
        dry_run: bool = DryRunOpt,
        yes: bool = YesOpt,
        force: bool = ForceOpt,
        timeout: float = TimeoutOpt,
        settle: float = SettleOpt,
        cycle_delay: float = DelayOpt,
        graceful: bool = GracefulOpt,
        soft_wait: float = SoftWaitOpt,
        state_dir: Path = StateDirOpt,
        inventory: Path = InventoryOption,
        output: OutputFormat = OutputOption,
    ) -> None:
        _power(
            action,
            targets,
            everything,
            role,
            via,
            dry_run,
            yes,
            force,
            timeout,
            settle,
            cycle_delay,
            inventory,
            output,
            graceful,
            soft_wait,
            state_dir,
        )

    command.__doc__ = f"{help_text}\n\nExample: {example}"
    app.command(action)(command)


_command("status", "Show the power state of servers.", "labctl power status --all -o json")
_command("on", "Power servers on.", "labctl power on wind")
_command("off", "Power servers off (hard). Guarded by etcd/Ceph quorum.", "labctl power off wind")
_command("cycle", "Power servers off and on. Guarded by quorum.", "labctl power cycle fohn")
_command(
    "reset", "Hard-reset servers. Guarded by quorum.", "labctl power reset fohn --via pdu --yes"
)
_command("soft", "Ask the OS to shut down (ACPI). Guarded by quorum.", "labctl power soft chequita")


class BootDeviceName(StrEnum):
    pxe = "pxe"
    disk = "disk"
    bios = "bios"


@app.command("bootdev")
def bootdev(
    device: BootDeviceName = typer.Argument(..., help="pxe, disk or bios."),
    targets: list[str] = TargetsArg,
    everything: bool = AllOpt,
    role: str | None = RoleOpt,
    persistent: bool = typer.Option(False, "--persistent", help="Every boot, not just the next."),
    dry_run: bool = DryRunOpt,
    timeout: float = TimeoutOpt,
    inventory: Path = InventoryOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Set the device servers boot from next (or always, with --persistent).

    Example: labctl power bootdev pxe fohn
    """
    import asyncio

    from labctl.cli.platform_choice import require_inventory
    from labctl.drivers.ipmi import BootDevice
    from labctl.errors import LabctlError
    from labctl.power.controller import PowerSession
    from labctl.power.requests import select_targets

    inv = require_inventory(inventory)
    servers = select_targets(inv, targets or [], everything, role)
    if dry_run:
        when = "persistent" if persistent else "next boot"
        typer.echo(
            f"would set boot device {device} ({when}) on {', '.join(s.name for s in servers)}"
        )
        return
    session = PowerSession(inv, inventory.parent, servers=servers, timeout=timeout)

    async def apply() -> list[tuple[str, str | None, str | None]]:
        async def one(server: Server) -> tuple[str, str | None, str | None]:
            try:
                await session.set_boot_device(server, BootDevice(device.value), persistent)
                return server.name, None, None
            except LabctlError as exc:
                return server.name, str(exc), exc.detail or None

        async with session:
            session.check_secrets(servers)
            return list(await asyncio.gather(*(one(s) for s in servers)))

    outcomes = asyncio.run(apply())
    failed = [name for name, error, _ in outcomes if error]
    if output is OutputFormat.json:
        typer.echo(
            json.dumps(
                {
                    "ok": not failed,
                    "targets": [
                        {
                            "server": n,
                            "bootdev": device.value,
                            "persistent": persistent,
                            "error": e,
                            "error_detail": d,
                        }
                        for n, e, d in outcomes
                    ],
                },
                indent=2,
            )
        )
    else:
        for name, error, _ in outcomes:
            typer.echo(
                f"{name}: {'boot from ' + device.value if not error else 'FAILED: ' + error}"
            )
    if failed:
        raise typer.Exit(1)


TIMELINE = "restore-timeline.json"  # beside the journal, in --state-dir


@app.command("restore")
def restore(
    drill: bool = typer.Option(
        False, "--drill", help="Cut every outlet first (an outage on purpose); asks first."
    ),
    yes: bool = YesOpt,
    dry_run: bool = DryRunOpt,
    tier_timeout: float = typer.Option(
        300.0, "--tier-timeout", help="Seconds each tier may take to come back healthy."
    ),
    timeout: float = TimeoutOpt,
    state_dir: Path = StateDirOpt,
    inventory: Path = InventoryOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Bring the lab back after a site-wide outage: outlets in dependency order, tier by tier.

    Switches first, then the servers holding etcd and Ceph, then the rest; each
    PDU's outlets `stagger` apart; each tier healthy before the next. The timeline
    is printed and kept in the state directory (restore-timeline.json).

    Example: labctl power restore --drill --yes
    """
    import asyncio

    from labctl.cli.confirm import confirm
    from labctl.cli.platform_choice import chosen, require_inventory
    from labctl.engine.journal import applied_layers
    from labctl.errors import LabctlError, UsageError
    from labctl.files import write_atomic
    from labctl.power.channels import IpmiChannel, PduChannel
    from labctl.power.health import LabProbes
    from labctl.power.restore import RestoreReport, Timeline, final_probes, plan_tiers
    from labctl.power.restore import restore as run_restore

    try:
        inv = require_inventory(inventory)
    except UsageError:
        raise
    except LabctlError as exc:  # a bad inventory is bad input here: nothing was touched
        raise UsageError(str(exc)) from None
    layers = applied_layers(state_dir)
    tiers = plan_tiers(inv, layers)
    final = final_probes(layers)
    if dry_run:
        if output is OutputFormat.json:
            plan = {"drill": drill, "tiers": [t.as_dict() for t in tiers], "final": list(final)}
            typer.echo(json.dumps(plan, indent=2))
            return
        if drill:
            typer.echo("would cut every outlet first (a drill)")
        for t in tiers:
            steps = ", ".join(str(o) for o in t.outlets) or "no outlet"
            typer.echo(f"would switch on {t.name}: {steps}; then wait for {', '.join(t.probes)}")
        typer.echo(f"then wait for every layer: {', '.join(final) or 'none bootstrapped'}")
        return
    if drill:
        confirm(f"cut every outlet of {', '.join(p.name for p in inv.pdus)} (a drill)?", yes)
    platform = chosen()
    pdus = PduChannel(inv, [], inventory.parent, timeout, 0.0)
    bmcs = IpmiChannel(list(inv.servers), inventory.parent, timeout)
    bmcs.check_secrets()
    probes = LabProbes(
        inv,
        inventory.parent,
        node_query=platform.node_bgp_query(),
        switch_platform=platform.switch_platform(),
    )
    timeline = Timeline(say=lambda text: typer.echo(text, err=True))

    async def work() -> RestoreReport:
        try:
            return await run_restore(
                inv,
                tiers,
                pdus,
                bmcs,
                probes.as_mapping(),
                final=final,
                drill=drill,
                tier_timeout=tier_timeout,
                timeline=timeline,
            )
        finally:
            await pdus.close()
            await bmcs.close()

    report = asyncio.run(work())
    state_dir.mkdir(parents=True, exist_ok=True)
    kept = state_dir / TIMELINE
    write_atomic(kept, (json.dumps(report.as_dict(), indent=2) + "\n").encode())
    if output is OutputFormat.json:
        typer.echo(json.dumps({**report.as_dict(), "kept": str(kept)}, indent=2))
    else:
        for done in report.tiers:
            when = f"healthy at {done.healthy:.1f}s" if done.healthy is not None else "NOT healthy"
            typer.echo(f"{done.name}: started {done.started:.1f}s, {when}")
            for problem in done.problems:
                typer.echo(f"  {problem}")
        for problem in report.final:
            typer.echo(f"not healthy: {problem}")
        verdict = "every layer healthy" if report.ok else "NOT every layer healthy"
        typer.echo(f"{verdict} after {report.seconds:.1f}s; timeline kept in {kept}")
    if not report.ok:
        raise typer.Exit(1)
