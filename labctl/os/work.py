"""The os layer's local work: survey, boot service start/stop, install reports, first SSH.

Declared by the os layer (``OsLayer.local_work``) under ``os.*``; the per-server
ones are named ``os.<work>:<server>`` and built with the server's name. They run on the
operator's machine and talk to the servers only through labctl's drivers
(SSH, the BMC) and the boot service's files.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from labctl.boot import assets, service
from labctl.boot.state import BootDirs, clear_report, read_report
from labctl.errors import LabctlError
from labctl.files import write_atomic
from labctl.inventory.model import Inventory, Server
from labctl.os import survey
from labctl.os.firstssh import first_login

if TYPE_CHECKING:
    from labctl.engine.layer import LayerContext

SURVEY_SSH_TIMEOUT = 5.0
POLL = 1.0
BOOT_POLL = 2.0  # how often a booting server is looked at again


def _ssh_look(ctx: LayerContext, server: Server) -> survey.Observation:
    from labctl.drivers.ssh import session
    from labctl.targets import ssh_target

    name = server.name
    before = survey.installed_record(ctx.state_dir, name).exists()
    kept = survey.reset_record(ctx.state_dir, name).exists()
    try:
        target = replace(
            ssh_target(ctx.inventory, ctx.base_dir, name), connect_timeout=SURVEY_SSH_TIMEOUT
        )
        # The run's shared connection when bootstrap opened one (the later layers reuse
        # it); a command that times out closes it, so a server that went down while
        # booting is asked again over a new one.
        with session(target) as ssh:
            text = ssh.run(("cat", ctx.on_node(name, "/etc/os-release")), timeout=10).text()
    except LabctlError as exc:
        return survey.Observation(
            name, False, str(exc), installed_before=before, kept_by_reset=kept
        )
    release = survey.os_release(text)
    return survey.Observation(
        name, True, None, release.get("ID"), release.get("VERSION_ID"), before, None, kept
    )


def _powers(inventory: Inventory, base_dir: Path) -> dict[str, str | None]:
    """Each server's power as its BMC says; None where it did not say."""
    from labctl.power.controller import PowerSession

    async def read_all() -> dict[str, str | None]:
        try:
            session = PowerSession(inventory, base_dir)
        except LabctlError:
            return {s.name: None for s in inventory.servers}
        try:
            states = await asyncio.gather(
                *(session.state(s) for s in inventory.servers), return_exceptions=True
            )
        finally:
            await session.close()
        return {
            s.name: (str(state) if isinstance(state, str) else None)
            for s, state in zip(inventory.servers, states, strict=True)
        }

    return asyncio.run(read_all())


def observe_all(ctx: LayerContext, wait: bool = False) -> list[survey.Observation]:
    """Every server as it is now. With ``wait``, a server that is booting
    (``survey.booting``) is looked at again until it answers, up to
    ``lab.ssh.boot_wait`` (a dry run does not wait)."""
    servers = list(ctx.inventory.servers)
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(servers)))) as pool:
        looks = list(pool.map(lambda s: _ssh_look(ctx, s), servers))
        # Power matters only for a server to install: on means a cycle, off a power on.
        if all(o.answers for o in looks):
            return looks
        powers = _powers(ctx.inventory, ctx.base_dir)
        looks = [replace(o, power=powers.get(o.server)) for o in looks]
        end = time.monotonic() + float(ctx.inventory.lab.ssh.boot_wait)
        while wait and (booting := [o for o in looks if survey.booting(o)]):
            if time.monotonic() > end:
                break
            time.sleep(BOOT_POLL)
            again = dict(
                zip(
                    [o.server for o in booting],
                    pool.map(lambda o: _ssh_look(ctx, ctx.inventory.server(o.server)), booting),
                    strict=True,
                )
            )
            looks = [replace(again[o.server], power=o.power) if o.server in again else o
                     for o in looks]  # fmt: skip
    return looks


class SurveyWork:
    """Looks at every server and writes what it saw for the layer's next plan."""

    def apply(self, ctx: LayerContext) -> bool:
        observed = observe_all(ctx, wait=True)
        survey.save(ctx.state_dir, observed)
        for seen in observed:  # back with its OS: a reset server is a server like any other
            if seen.answers:
                survey.reset_record(ctx.state_dir, seen.server).unlink(missing_ok=True)
        return False  # looking changes nothing

    def observe(self, ctx: LayerContext) -> str | None:
        observed = observe_all(ctx)
        survey.save(ctx.state_dir, observed)
        decisions = survey.decide(ctx.inventory, {o.server: o for o in observed})
        acting = [f"{d.server} {d.action} ({d.reason})" for d in decisions if d.action != "keep"]
        return "; ".join(acting) or None


class BootStartWork:
    def apply(self, ctx: LayerContext) -> bool:
        before = service.running(ctx.state_dir)
        boot = ctx.inventory.lab.boot
        lifetime = (boot.install_timeout if boot else 1200) * 2 + 600
        # Reused when it serves this inventory already, restarted when not.
        after = service.start(
            ctx.inventory,
            ctx.inventory_path,
            ctx.state_dir,
            netns=ctx.platform.boot_netns(),
            lifetime=lifetime,
        )
        return after != before

    def observe(self, ctx: LayerContext) -> str | None:
        """Why it would start, and what would stop it from starting: `labctl plan` says
        so before a run powers anything on (before, only the run found the assets
        missing, after the power layer)."""
        if service.running(ctx.state_dir):
            return None
        missing = []
        for release in assets.releases(ctx.inventory, ctx.inventory_path.parent):
            try:
                assets.verify(release)
            except assets.AssetError as exc:
                missing.append(str(exc))
        if missing:
            return "the boot service is not running and cannot start: " + "; ".join(missing)
        return "the boot service is not running"


class BootStopWork:
    def apply(self, ctx: LayerContext) -> bool:
        return service.stop(ctx.state_dir)

    def observe(self, ctx: LayerContext) -> str | None:
        return "the boot service runs" if service.running(ctx.state_dir) else None


class ServerWork:
    """Local work about one server (``os.<work>:<server>``)."""

    def __init__(self, server: str) -> None:
        self.server = server


class ArmWork(ServerWork):
    """Forgets the server's earlier report, so only this install's can end the wait."""

    def apply(self, ctx: LayerContext) -> bool:
        clear_report(BootDirs.of(ctx.state_dir), self.server)
        survey.installed_record(ctx.state_dir, self.server).unlink(missing_ok=True)
        survey.reset_record(ctx.state_dir, self.server).unlink(missing_ok=True)
        return True

    def observe(self, ctx: LayerContext) -> str | None:
        return "installs it from the network"


class RefuseWork(ServerWork):
    def _reason(self, ctx: LayerContext) -> str:
        observed = ctx.fact(survey.OsSurvey).by_server
        for decision in survey.decide(ctx.inventory, observed):
            if decision.server == self.server and decision.action == survey.REFUSE:
                return decision.reason
        return "refused by the survey"

    def apply(self, ctx: LayerContext) -> bool:
        raise LabctlError(f"{self.server}: {self._reason(ctx)}")

    def observe(self, ctx: LayerContext) -> str | None:
        raise LabctlError(f"{self.server}: {self._reason(ctx)}")


def _last_request(dirs: BootDirs, mac: str | None) -> str:
    """The boot service's last answer about ``mac``, for a timeout's message."""
    if mac is None or not dirs.requests.exists():
        return "no request from it"
    last = None
    for line in dirs.requests.read_text().splitlines():
        if mac in line.lower():
            last = line
    return f"its last request: {last}" if last else "no request from its MAC at all"


POWER_OFF_WAIT = 120.0


def _wait_powered_off(ctx: LayerContext, name: str, wait: float) -> None:
    """The installer powers the server off after its report; boot from disk only after."""
    from labctl.power.controller import PowerSession

    server = ctx.inventory.server(name)

    async def poll() -> str:
        session = PowerSession(ctx.inventory, ctx.base_dir)
        try:
            end = time.monotonic() + wait
            while True:
                state = str(await session.state(server))
                if state == "off" or time.monotonic() > end:
                    return state
                await asyncio.sleep(POLL)
        finally:
            await session.close()

    state = asyncio.run(poll())
    if state != "off":
        raise LabctlError(
            f"{name}: the installer reported success but the server is still {state} "
            f"{wait:g} s later (the installer powers it off when done)"
        )


class AwaitInstallWork(ServerWork):
    """Waits for the installer's report: ok records the install, failed carries its words."""

    def apply(self, ctx: LayerContext) -> bool:
        from labctl.render.boot import normal_mac, pxe_nic

        boot = ctx.inventory.lab.boot
        timeout = boot.install_timeout if boot else 0
        dirs = BootDirs.of(ctx.state_dir)
        deadline = time.monotonic() + timeout
        while True:
            report = read_report(dirs, self.server)
            if report is not None:
                break
            if time.monotonic() > deadline:
                nic = pxe_nic(ctx.inventory.server(self.server))
                seen = _last_request(dirs, normal_mac(nic.mac) if nic else None)
                raise LabctlError(
                    f"{self.server}: no install report within {timeout:g} s ({seen}); "
                    "see the boot service's log in "
                    f"{dirs.root}"
                )
            time.sleep(POLL)
        if not report.ok:
            raise LabctlError(f"{self.server}: the installer reported failure: {report.message}")
        record = survey.installed_record(ctx.state_dir, self.server)
        write_atomic(record, (f'{{"installed": {report.received}}}\n').encode())
        _wait_powered_off(ctx, self.server, POWER_OFF_WAIT)
        return True

    def observe(self, ctx: LayerContext) -> str | None:
        return "waits for its installer to report"


class AwaitSshWork(ServerWork):
    """The installed OS answers SSH as the inventory's distribution; its new key recorded."""

    def apply(self, ctx: LayerContext) -> bool:
        first_login(ctx, self.server)
        return True

    def observe(self, ctx: LayerContext) -> str | None:
        return "waits for SSH from the new install"


WORKS: dict[str, Callable[[str], ServerWork]] = {
    "os.arm": ArmWork,
    "os.refuse": RefuseWork,
    "os.await-install": AwaitInstallWork,
    "os.await-ssh": AwaitSshWork,
}
