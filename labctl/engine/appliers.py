"""Appliers: the code that carries out each kind of action, one applier per family of kinds.

Layers only say what should be true; an applier makes it true through a
driver, says in a dry run why it would change something (``observe``), and
releases its device sessions at the end of the run (``close``). The run
builds one set of appliers from the inventory and the executor looks each
action's ``kind`` up in it, so any layer can emit any kind of action: the os
layer's ``SetBootDevice`` goes to the same BMC applier as the power layer's
``SetPower``.

* ``SshApplier``: ``PutFile``, ``Run``, ``WaitFor``, ``Check`` on nodes, over SSH;
  a file that holds secrets is filled in from the run's ``SecretBox`` as it is
  written (``labctl/secret_box.py``), and compared filled in.
* ``BmcApplier``: ``SetPower``, ``SetBootDevice`` through servers' BMCs.
* ``LocalApplier``: ``LocalStep`` on the operator's machine, looked up by
  name in ``LOCAL_WORK`` (as ansible looks up an action plugin by name).

A new kind of action gets its record in ``actions.py`` and its method in the
applier whose driver it needs (or a new applier, added to ``standard_appliers``).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from labctl.engine.actions import (
    Action,
    Check,
    LocalStep,
    PutFile,
    Run,
    SetBootDevice,
    SetPower,
    WaitFor,
)
from labctl.engine.layer import LayerContext
from labctl.errors import AuthenticationError, DriverError, DriverTimeout, HostKeyError, LabctlError

if TYPE_CHECKING:  # drivers are imported when an applier first needs them
    from labctl.drivers.ssh import RemoteFile
    from labctl.engine.targets import Connector
    from labctl.inventory.model import Server
    from labctl.power.session import PowerSession
    from labctl.secret_box import SecretBox


class Applier(Protocol):
    """Carries out the action kinds it names."""

    @property
    def kinds(self) -> tuple[str, ...]:
        """The ``kind`` of every action this applier carries out."""
        ...

    def apply(self, action: Action) -> bool:
        """Make ``action`` true; True when something changed. Raises a LabctlError."""
        ...

    def observe(self, action: Action) -> str | None:
        """Why applying ``action`` would change its target; None when it is already true."""
        ...

    def survey(self, actions: Sequence[Action]) -> Mapping[str, str | None]:
        """``observe`` for many actions of one target and kind at once, by action key.

        Best effort: actions it could not read are left out (each is then
        observed or applied on its own), and an applier with no cheaper way
        returns nothing.
        """
        ...

    def close(self) -> None:
        """Release device sessions; the applier is not used after this."""
        ...


class Appliers:
    """The appliers of one run, by the action kinds they carry out.

    ``secrets``: the run's secrets, for the executor to seal the fingerprints of
    steps that depend on them (None: a step that names a secret fails).
    """

    def __init__(self, appliers: Iterable[Applier], secrets: SecretBox | None = None) -> None:
        self.secrets = secrets
        self._all = list(appliers)
        self._by_kind: dict[str, Applier] = {}
        for applier in self._all:
            for kind in applier.kinds:
                if kind in self._by_kind:
                    raise ValueError(f"two appliers carry out {kind} actions")
                self._by_kind[kind] = applier

    def for_kind(self, kind: str) -> Applier | None:
        return self._by_kind.get(kind)

    def close(self) -> None:
        """Close every applier, even when one of them fails to."""
        errors: list[LabctlError] = []
        for applier in self._all:
            try:
                applier.close()
            except LabctlError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Appliers:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- nodes, over SSH ---------------------------------------------------------------


class SshApplier:
    """Files, commands, waits and checks on nodes, through one reused SSH session per node."""

    kinds = (PutFile.kind, Run.kind, WaitFor.kind, Check.kind)

    def __init__(self, connector: Connector, secrets: SecretBox | None = None) -> None:
        self.connector = connector
        self.secrets = secrets
        self._apply: dict[str, Callable[[Action], bool]] = {
            PutFile.kind: self._put_file,
            Run.kind: self._run,
            WaitFor.kind: self._wait_for,
            Check.kind: self._check,
        }

    def apply(self, action: Action) -> bool:
        return self._apply[action.kind](action)

    def _content(self, action: PutFile) -> bytes:
        """What the file holds on the node: its secrets filled in, here and nowhere earlier."""
        if action.fill is None:
            return action.content
        if self.secrets is None:
            raise LabctlError(f"{action.host}: {action.path} holds secrets and this run has none")
        return action.fill.text(self.secrets.lookup(action.fill.uses))

    def _put_file(self, action: Action) -> bool:
        assert isinstance(action, PutFile)
        content = self._content(action)
        ssh = self.connector.ssh(action.host)
        return ssh.put_file(action.path, content, mode=action.mode, owner=action.owner)

    def _run(self, action: Action) -> bool:
        assert isinstance(action, Run)
        self.connector.ssh(action.host).run(action.argv, timeout=action.timeout)
        return True

    def _check(self, action: Action) -> bool:
        assert isinstance(action, Check)
        ssh = self.connector.ssh(action.host)
        ssh.run(action.argv, timeout=action.timeout, label=f"checking {action.what}")
        return False  # a check changes nothing; a failure raises with the command's words

    def _wait_for(self, action: Action) -> bool:
        """Poll until the check passes; a node that does not answer yet (booting) is polled too."""
        assert isinstance(action, WaitFor)
        deadline = time.monotonic() + action.deadline
        while True:
            remaining = deadline - time.monotonic()
            try:
                ssh = self.connector.ssh(action.host)
                if not action.argv:
                    return False  # connected: that was all it waited for
                if ssh.run(action.argv, check=False, timeout=max(remaining, 1.0)).ok:
                    return False
                last = "the check did not pass"
            except (AuthenticationError, HostKeyError):
                raise  # waiting will not change a refusal
            except DriverError as exc:
                last = str(exc)
            if time.monotonic() + action.interval > deadline:
                raise DriverTimeout(f"{action.host}: {action.describe()}: still not true ({last})")
            time.sleep(action.interval)

    def observe(self, action: Action) -> str | None:
        if isinstance(action, PutFile):
            current = self.connector.ssh(action.host).stat_file(action.path)
            return file_differs(action, current, _sha256(self._content(action)))
        if isinstance(action, Run):
            return "not run yet with these arguments"
        if isinstance(action, Check):
            self._check(action)  # a dry run fails where the run would
        return None  # a wait or a check changes nothing

    def survey(self, actions: Sequence[Action]) -> Mapping[str, str | None]:
        # One round trip reads every file a target's plan writes; one file is read
        # on its own just as cheaply.
        files = [a for a in actions if isinstance(a, PutFile)]
        if len(files) < 2:
            return {}
        try:
            current = self.connector.ssh(files[0].host).stat_files([f.path for f in files])
        except LabctlError:
            return {}  # each step will look for itself, and report its own error
        found: dict[str, str | None] = {}
        for f in files:
            if f.path not in current:
                continue
            try:
                content = self._content(f)
            except LabctlError:
                continue  # a secret it cannot fill in: its own step reports that
            found[f.key] = file_differs(f, current[f.path], _sha256(content))
        return found

    def close(self) -> None:
        self.connector.close()


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def file_differs(
    action: PutFile, current: RemoteFile | None, content_sha256: str | None = None
) -> str | None:
    """Why the file on the node is not what ``action`` wants; None when it is.

    ``content_sha256``: of the content as written (its secrets filled in), when
    that is not ``action.content``.
    """
    if current is None:
        return "missing"
    reasons = []
    if current.sha256 != (content_sha256 or action.content_sha256):
        reasons.append("content differs")
    if current.mode != action.mode:
        reasons.append(f"mode {current.mode:04o} -> {action.mode:04o}")
    if action.owner and not _same_owner(current.owner, action.owner):
        reasons.append(f"owner {current.owner} -> {action.owner}")
    return ", ".join(reasons) or None


def _same_owner(actual: str, wanted: str) -> bool:
    """``wanted`` is ``user`` or ``user:group`` as chown takes it; ``actual`` is ``user:group``."""
    return actual == wanted if ":" in wanted else actual.split(":")[0] == wanted


# -- servers' BMCs -------------------------------------------------------------------


class BmcApplier:
    """Power and boot device through servers' BMCs (IPMI), for any layer's plans.

    Each server's BMC password is resolved when that server is first reached,
    so a missing one fails that server's step alone. Powering on is done at
    once; ``off`` and ``cycle`` take a server down, so they run one at a time,
    each after the quorum guard has read every etcd and Ceph monitor member.
    """

    kinds = (SetPower.kind, SetBootDevice.kind)

    def __init__(self, ctx: LayerContext) -> None:
        self._ctx = ctx
        self._servers = {s.name: s for s in ctx.inventory.servers}
        self._session: PowerSession | None = None
        self._lock = threading.Lock()
        self._disruptive = threading.Lock()

    def _power(self) -> PowerSession:
        from labctl.power.session import PowerSession

        with self._lock:
            if self._session is None:
                self._session = PowerSession(self._ctx.inventory, self._ctx.base_dir)
            return self._session

    def _server(self, name: str) -> Server:
        server = self._servers.get(name)
        if server is None:
            raise LabctlError(f"no server named {name} in the inventory")
        return server

    def apply(self, action: Action) -> bool:
        if isinstance(action, SetBootDevice):
            from labctl.drivers.ipmi import BootDevice

            device = BootDevice(action.device)
            server = self._server(action.host)
            # Always sent: a next-boot setting is used up by the boot it chose, so
            # reading the BMC cannot say whether this one is still to come.
            asyncio.run(self._power().set_boot_device(server, device, action.persistent))
            return True
        assert isinstance(action, SetPower)
        server = self._server(action.host)
        if action.state == "on":
            return asyncio.run(self._power().ensure_on(server))
        if action.state not in ("off", "cycle"):
            raise LabctlError(f"{action.host}: no power state {action.state!r} (on, off, cycle)")
        return self._take_down(server, action.state)

    def _take_down(self, server: Server, state: str) -> bool:
        from labctl.power.requests import PowerVerb

        with self._disruptive:
            (result,) = asyncio.run(self._power().request([server], PowerVerb(state)))
        if result.error:
            raise LabctlError(f"{server.name}: power {state}: {result.error}")
        return state == "cycle" or result.before != result.after

    def observe(self, action: Action) -> str | None:
        server = self._server(action.host)
        if isinstance(action, SetBootDevice):
            current = asyncio.run(self._power().boot_device(server))
            return None if current == action.device else f"boots from {current}"
        assert isinstance(action, SetPower)
        state = asyncio.run(self._power().state(server))
        if action.state == "cycle":
            return f"power is {state}; a cycle always acts"
        return None if state == action.state else f"power is {state}"

    def survey(self, actions: Sequence[Action]) -> Mapping[str, str | None]:
        return {}  # one status read per server is already one round trip

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                asyncio.run(self._session.close())
                self._session = None


# -- the operator's machine ------------------------------------------------------------


class LocalWork(Protocol):
    """Work a ``LocalStep`` names: minting certificates, serving boot files."""

    def apply(self, ctx: LayerContext) -> bool:
        """Do the work; True when it changed something."""
        ...

    def observe(self, ctx: LayerContext) -> str | None:
        """Why the work would change something (a dry run); None when nothing."""
        ...


# Local work by the name its LocalStep carries, as "module:class": imported when a
# step first asks for it, so a run that mints nothing never imports the minting code.
LOCAL_WORK: dict[str, str] = {
    "pki.mint": "labctl.pki.session:MintWork",
    "etcd.snapshot": "labctl.etcd.work:SnapshotWork",
    "etcd.healthy": "labctl.etcd.work:HealthyWork",
    "etcd.membership": "labctl.etcd.work:MembershipWork",
    "etcd.add": "labctl.etcd.work:AddWork",
    "etcd.promote": "labctl.etcd.work:PromoteWork",
    "etcd.remove": "labctl.etcd.work:RemoveWork",
    "etcd.left": "labctl.etcd.work:LeftWork",
    "ceph.keys": "labctl.ceph.work:KeysWork",
    "ceph.healthy": "labctl.ceph.work:HealthyWork",
    "calico.established": "labctl.calico.work:EstablishedWork",
    "calico.resources": "labctl.calico.work:ResourcesWork",
    "calico.nodes-ready": "labctl.calico.work:NodesReadyWork",
    "os.survey": "labctl.install.work:SurveyWork",
    "os.boot-start": "labctl.install.work:BootStartWork",
    "os.boot-stop": "labctl.install.work:BootStopWork",
    # Per server: os.arm with subject fohn is built as ArmWork("fohn").
    "os.arm": "labctl.install.work:ArmWork",
    "os.refuse": "labctl.install.work:RefuseWork",
    "os.await-install": "labctl.install.work:AwaitInstallWork",
    "os.await-ssh": "labctl.install.work:AwaitSshWork",
    "kubernetes.binaries": "labctl.kube.work:BinariesWork",
    "kubernetes.ready": "labctl.kube.work:ReadyWork",
    "kubernetes.addons": "labctl.kube.work:AddonsWork",
    "kubernetes.nodes": "labctl.kube.work:NodesWork",
}


class LocalApplier:
    """``LocalStep``s, each carried out by the local work registered under its name."""

    kinds = (LocalStep.kind,)

    def __init__(self, ctx: LayerContext, works: Mapping[str, str] | None = None) -> None:
        self._ctx = ctx
        self._works = LOCAL_WORK if works is None else works

    def _work(self, action: Action) -> LocalWork:
        assert isinstance(action, LocalStep)
        where = self._works.get(action.name)
        args: tuple[str, ...] = (action.subject,) if action.subject else ()
        if where is None:
            raise LabctlError(f"no local work named {action.name!r} in this version of labctl")
        module, _, attribute = where.partition(":")
        # Work done for one of several things in a run is made for that thing.
        work: LocalWork = getattr(importlib.import_module(module), attribute)(*args)
        return work

    def apply(self, action: Action) -> bool:
        return self._work(action).apply(self._ctx)

    def observe(self, action: Action) -> str | None:
        return self._work(action).observe(self._ctx)

    def survey(self, actions: Sequence[Action]) -> Mapping[str, str | None]:
        return {}

    def close(self) -> None:
        pass  # local work holds nothing open between steps


def standard_appliers(ctx: LayerContext, connector: Connector | None = None) -> Appliers:
    """The appliers of a bootstrap run; ``connector`` replaces the inventory's SSH targets."""
    from labctl.engine.targets import InventoryConnector
    from labctl.secret_box import SecretBox

    secrets = SecretBox(ctx.base_dir, ctx.state_dir)
    return Appliers(
        (
            SshApplier(connector or InventoryConnector(ctx.inventory, ctx.base_dir), secrets),
            BmcApplier(ctx),
            LocalApplier(ctx),
        ),
        secrets,
    )
