"""Which servers the os layer installs, and why: observations in, decisions out (pure).

A server counts as installed when it answers SSH with the host key labctl
knows and its ``/etc/os-release`` names the inventory's distribution (and
version, when ``os.version`` is set). Anything else is installed, with the
reason. A server that holds data (roles ``etcd`` or ``ceph-osd``) and shows
signs of an earlier install (it answers SSH, or labctl's own record says it
installed it) is *re*installed only when the operator named it
(``labctl os install --reinstall NAME``); otherwise the run is refused for it.
A server that answers nothing and that labctl never installed is a new
machine: its disks hold nothing of the lab's yet.

A server that is powered on but does not answer SSH *yet*, and that showed an OS
before (labctl installed it, or ``labctl reset`` wiped labctl's files from it and
kept its OS: ``reset_record``), is booting: the power layer may have turned it on a
moment ago. The survey waits for it (``booting``; up to ``lab.ssh.boot_wait``, as
every later layer waits for its nodes) before anything is decided. Before, such a
server was decided at once: a reset server was taken for a new machine to install
(and the run stopped for want of boot assets), one labctl had installed was refused
as a reinstall. A reset server still powered off is kept, not installed: a plan, which
powers nothing on, says what the run will do (the power layer turns it on first).

The observations are written by local work (``labctl.os.work``) to the
state directory; they are gathered back as the fact ``OsSurvey``
(``engine/facts.py``) for the layer's next plan. The survey's dry run looks
as its run does, so a dry run plans from this run's survey too. Every run
surveys afresh (the step is not remembered), so resume never reads an
earlier run's survey: the file is only the hand-off from the survey step to
the fact, and ``OsSurvey.gather`` is its one reader (``load``); the refusal
step reads the fact.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Self

from labctl.files import write_atomic
from labctl.inventory.model import Inventory, Server

if TYPE_CHECKING:
    from labctl.engine.layer import LayerContext

DATA_ROLES = ("etcd", "ceph-osd")
KEEP, INSTALL, REINSTALL, REFUSE = "keep", "install", "reinstall", "refuse"


@dataclass(frozen=True)
class Observation:
    """What labctl saw of one server just now."""

    server: str
    answers: bool  # SSH login with the known host key worked
    error: str | None = None  # why not, when it did not
    os_id: str | None = None
    version_id: str | None = None
    installed_before: bool = False  # labctl's own record of a finished install
    power: str | None = None  # on / off / None when the BMC did not say
    kept_by_reset: bool = False  # `labctl reset` wiped labctl's files and kept its OS


@dataclass(frozen=True)
class Decision:
    server: str
    action: str  # keep, install, reinstall, refuse
    reason: str
    power: str | None = None

    @property
    def installs(self) -> bool:
        return self.action in (INSTALL, REINSTALL)


def os_release(text: str) -> dict[str, str]:
    """``/etc/os-release`` as a dict, quotes removed."""
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            found[key.strip()] = value.strip().strip("\"'")
    return found


def _mismatch(server: Server, seen: Observation) -> str | None:
    if seen.os_id != server.os.distribution:
        return f"runs {seen.os_id or 'an unknown OS'}, not {server.os.distribution}"
    if server.os.version and seen.version_id != server.os.version:
        return f"runs {seen.os_id} {seen.version_id}, not {server.os.version}"
    return None


def booting(seen: Observation) -> bool:
    """Whether the survey waits for ``seen`` to answer before deciding: powered on, not
    answering yet, and it showed an OS before (labctl installed it, or reset it)."""
    return not seen.answers and seen.power == "on" and (seen.installed_before or seen.kept_by_reset)


def decide_one(
    inventory: Inventory, server: Server, seen: Observation, reinstall: Iterable[str] = ()
) -> Decision:
    powered_off_after_reset = not seen.answers and seen.power == "off" and seen.kept_by_reset
    if powered_off_after_reset and server.name not in set(reinstall):
        # A run's power layer turns it on before this survey, which then waits for it
        # (``booting``): a plan that said "install" here was not what a run does.
        return Decision(
            server.name,
            KEEP,
            "powered off; labctl reset kept its OS, which boots from its disk once "
            "powered on (the power layer does, and the survey waits for it)",
            seen.power,
        )
    if seen.answers:
        wrong = _mismatch(server, seen)
        if wrong is None:
            return Decision(server.name, KEEP, f"installed: {seen.os_id} {seen.version_id}")
        reason = f"answers SSH but {wrong}"
    else:
        reason = f"does not answer SSH ({seen.error or 'no answer'})"
    if inventory.lab.boot is None:
        return Decision(server.name, REFUSE, f"{reason}; no lab.boot to install it with")
    earlier = seen.answers or seen.installed_before
    holds = sorted(set(DATA_ROLES) & server.roles)
    if earlier and holds:
        if server.name in set(reinstall):
            return Decision(server.name, REINSTALL, f"{reason}; reinstall asked for", seen.power)
        return Decision(
            server.name,
            REFUSE,
            f"{reason}; it may hold data ({', '.join(holds)}) from an earlier install, so "
            f"labctl reinstalls it only when told: labctl os install --reinstall {server.name}",
        )
    return Decision(server.name, REINSTALL if earlier else INSTALL, reason, seen.power)


def decide(
    inventory: Inventory, observed: Mapping[str, Observation], reinstall: Iterable[str] = ()
) -> list[Decision]:
    """One decision per server, in inventory order; a server not observed is left alone."""
    wanted = set(reinstall)
    return [
        decide_one(inventory, server, observed[server.name], wanted)
        for server in inventory.servers
        if server.name in observed
    ]


def survey_path(state_dir: Path) -> Path:
    return state_dir / "os" / "survey.json"


def installed_record(state_dir: Path, server: str) -> Path:
    return state_dir / "os" / "installed" / f"{server}.json"


def reset_record(state_dir: Path, server: str) -> Path:
    """Written by ``labctl reset`` once it wiped labctl's files from ``server`` and kept
    its OS; gone once the survey sees it answer again, or it is installed."""
    return state_dir / "os" / "reset" / f"{server}.json"


def save(state_dir: Path, observed: Iterable[Observation]) -> None:
    data = {o.server: asdict(o) for o in observed}
    write_atomic(survey_path(state_dir), (json.dumps(data, indent=2) + "\n").encode())


def load(state_dir: Path) -> dict[str, Observation]:
    """The last survey; empty when there is none (nothing is decided without one). For
    ``OsSurvey.gather`` only (the module paragraph)."""
    try:
        data = json.loads(survey_path(state_dir).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return {name: Observation(**fields) for name, fields in data.items()}


@dataclass(frozen=True)
class OsSurvey:
    """A fact: what the survey (plan ``os: survey``) saw of each server, in its order."""

    observations: tuple[Observation, ...] = ()

    @property
    def by_server(self) -> dict[str, Observation]:
        return {o.server: o for o in self.observations}

    @classmethod
    def gather(cls, ctx: LayerContext) -> Self:
        """The last survey written to the state directory (none: no server observed)."""
        return cls(tuple(load(ctx.state_dir).values()))

    def describe(self) -> str:
        return f"a survey of {len(self.observations)} server(s)"
