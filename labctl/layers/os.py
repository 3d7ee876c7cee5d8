"""The os layer: every server runs the inventory's OS, installed from the network if it does not.

First a survey (local work ``os.survey``): every server is asked over SSH for
its OS release, and its BMC for its power. From what it found (the fact
``OsSurvey``, ``os/survey.py``), the layer
decides per server (``os/survey.py``): installed servers are left alone,
so a re-run on an installed lab changes nothing; a server that may hold data
is reinstalled only when the operator named it. For the others, the boot
service is started (``os.boot-start``), and each server, in parallel:
forgets any earlier install report, is told to boot from the network once,
is powered on (or cycled, when it was on: through the quorum guard, one
server at a time), waits for its installer to report (failure carries the
installer's own message), boots from disk from then on, is powered on and
must answer SSH as the distribution the inventory names. Then the boot
service stops.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from labctl.engine.actions import LocalStep, SetBootDevice, SetPower
from labctl.engine.appliers import LocalWorkFactory
from labctl.engine.layer import LayerContext
from labctl.engine.plan import Plan, Step
from labctl.os import survey
from labctl.render import ignition


def inputs_digest(ctx: LayerContext) -> str:
    """Changes when what any server would be installed with changes."""
    parts = [ignition.install_digest(ctx.inventory, s) for s in ctx.inventory.servers]
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def install_steps(ctx: LayerContext, decision: survey.Decision) -> list[Step]:
    name = decision.server
    boot = ctx.inventory.lab.boot
    timeout = boot.install_timeout if boot else 0
    digest = ignition.install_digest(ctx.inventory, ctx.inventory.server(name))
    power = "cycle" if decision.power == "on" else "on"
    return [
        Step(
            f"arm:{name}",
            LocalStep(
                "os.arm", f"{decision.action} ({decision.reason})", digest, name, subject=name
            ),
        ),
        Step(f"pxe:{name}", SetBootDevice(name, "pxe")),
        Step(f"power:{name}", SetPower(name, power)),
        Step(
            f"report:{name}",
            LocalStep(
                "os.await-install",
                f"wait up to {timeout:g} s for the installer's report",
                digest,
                name,
                subject=name,
            ),
        ),
        Step(f"disk:{name}", SetBootDevice(name, "disk", persistent=True)),
        Step(f"on:{name}", SetPower(name, "on")),
        Step(
            f"ssh:{name}",
            LocalStep(
                "os.await-ssh",
                "wait for SSH from the installed OS (its new host key recorded)",
                digest,
                name,
                subject=name,
            ),
        ),
    ]


@dataclass(frozen=True)
class OsLayer:
    """``reinstall`` names servers that may be reinstalled although they may hold data."""

    reinstall: frozenset[str] = field(default_factory=frozenset)
    name: str = "os"
    facts: ClassVar[tuple[type, ...]] = (survey.OsSurvey,)
    needs: ClassVar[tuple[str, ...]] = ("power",)  # the BMCs power the servers it installs

    def local_work(self) -> Mapping[str, LocalWorkFactory]:
        """The work of the ``LocalStep``s this layer's plans hold, by step name."""
        from labctl.os.work import (
            ArmWork,
            AwaitInstallWork,
            AwaitSshWork,
            BootStartWork,
            BootStopWork,
            RefuseWork,
            SurveyWork,
        )

        return {
            "os.survey": SurveyWork,
            "os.boot-start": BootStartWork,
            "os.boot-stop": BootStopWork,
            "os.arm": ArmWork,
            "os.refuse": RefuseWork,
            "os.await-install": AwaitInstallWork,
            "os.await-ssh": AwaitSshWork,
        }

    def plans(self, ctx: LayerContext) -> Iterator[Plan]:
        digest = inputs_digest(ctx)
        yield Plan.of(
            "os: survey",
            [LocalStep("os.survey", "ask every server its OS over SSH, its BMC its power", digest)],
            makes=(survey.OsSurvey,),
        )
        observed = ctx.fact(survey.OsSurvey).by_server
        decisions = survey.decide(ctx.inventory, observed, self.reinstall)
        installs = [d for d in decisions if d.installs]
        refused = [d for d in decisions if d.action == survey.REFUSE]
        if not installs and not refused:
            return
        if installs:
            names = ", ".join(d.server for d in installs)
            yield Plan.of(
                "os: boot service",
                [LocalStep("os.boot-start", f"start the boot service for {names}", digest)],
            )
        steps: list[Step] = []
        for decision in refused:
            name = decision.server
            refusal = LocalStep("os.refuse", decision.reason, digest, name, subject=name)
            steps.append(Step(f"refuse:{name}", refusal))
        for decision in installs:
            steps += install_steps(ctx, decision)
        # An installed server has none of what later layers did to it before.
        yield Plan("os: install", tuple(steps), frozenset(d.server for d in installs))
        if installs:
            yield Plan.of(
                "os: boot service stop",
                [LocalStep("os.boot-stop", "stop the boot service", digest)],
            )
