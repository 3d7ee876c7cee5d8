"""Appliers: the code that carries out each kind of action, one applier per family of kinds.

Layers only say what should be true; an applier makes it true through a
driver, says in a dry run why it would change something (``observe``), and
releases its device sessions at the end of the run (``close``). A run is handed
one set of appliers and the executor looks each action's ``kind`` up in it, so
any layer can emit any kind of action: the os layer's ``SetBootDevice`` goes to
the same BMC applier as the power layer's ``SetPower``.

This module is the engine's side: the ``Applier`` protocol, the set of a run
(``Appliers``), and the two appliers that need nothing but the engine's own
records and drivers:

* ``SshApplier``: ``PutFile``, ``Run``, ``WaitFor``, ``Check`` on nodes, over SSH,
  through a ``Connector`` (``labctl/targets.py`` has the inventory's); a file that
  holds secrets is filled in from the run's ``Secrets`` as it is written, and
  compared filled in.
* ``LocalApplier``: ``LocalStep`` on the operator's machine: the work its name
  names, from the table it is handed (as ansible looks up an action plugin by name).

The engine imports no domain package: the BMC applier lives with power
(``labctl/power/applier.py``), each layer declares its own local work
(``local_work()``), and ``labctl/run.py`` assembles a run's appliers above the
engine from ``LAYERS``, the inventory and the run's ``SecretBox``.
A new kind of action gets its record in ``actions.py`` and its method in the
applier whose driver it needs (or a new applier, added in ``labctl/run.py``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from labctl.engine.actions import Action, Check, LocalStep, PutFile, Run, WaitFor
from labctl.engine.layer import LayerContext
from labctl.errors import AuthenticationError, DriverError, DriverTimeout, HostKeyError, LabctlError

if TYPE_CHECKING:  # drivers are imported when an applier first needs them
    from labctl.drivers.ssh import RemoteFile, SshSession
    from labctl.engine.actions import SecretUse
    from labctl.inventory.model import SecretRef


class Connector(Protocol):
    """Hands out one reusable SSH session per host (``labctl/targets.py``)."""

    def ssh(self, host: str) -> SshSession: ...

    def close(self) -> None: ...


class Secrets(Protocol):
    """The run's secrets (``labctl/secrets/box.py``'s ``SecretBox``): values, and seals of them."""

    def lookup(self, uses: Sequence[SecretUse]) -> dict[SecretRef, str]:
        """The value of every secret ``uses`` names; raises a LabctlError naming one it lacks."""
        ...

    def seal(self, uses: Sequence[SecretUse]) -> str:
        """A digest of the values ``uses`` names that cannot be guessed back from."""
        ...


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
        """``observe`` for many actions of one target at once (of the kinds it carries
        out: a node's files, waits and checks together), by action key.

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

    def __init__(self, appliers: Iterable[Applier], secrets: Secrets | None = None) -> None:
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

    def __init__(self, connector: Connector, secrets: Secrets | None = None) -> None:
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
                result = ssh.run(action.argv, check=False, timeout=max(remaining, 1.0))
                if result.ok:
                    return False
                last = _last_words(result) or "the check did not pass"
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
        """A target's files and conditions (waits and checks) in one round trip: each
        file's state, and the conditions that pass now (None), tried only where every
        file is as wanted (``ssh-survey.sh``). One action on its own costs its step the
        same round trip, so it is left to it. The executor passes conditions only while
        nothing in the plan has changed and every command before them is one the journal
        says ran (``engine/executor.py``)."""
        files = [a for a in actions if isinstance(a, PutFile)]
        conditions = [a for a in actions if isinstance(a, WaitFor | Check) and a.argv]
        if len(files) + len(conditions) < 2:
            return {}
        from labctl.drivers.ssh import WantedFile

        wanted: list[WantedFile] = []
        shas: dict[str, str] = {}
        for f in files:
            try:
                shas[f.key] = _sha256(self._content(f))
            except LabctlError:
                shas[f.key] = "-"  # a secret it cannot fill in: its own step reports that
            wanted.append(WantedFile(f.path, shas[f.key], f.mode, f.owner))
        limit = min(
            (a.deadline if isinstance(a, WaitFor) else a.timeout for a in conditions),
            default=None,
        )
        host = (files or conditions)[0].host
        try:
            current, passed = self.connector.ssh(host).survey(
                wanted, [a.argv for a in conditions], None if limit is None else max(limit, 1.0)
            )
        except LabctlError:
            return {}  # each step will look, wait or check for itself
        found: dict[str, str | None] = {}
        for f in files:
            if f.path in current and shas[f.key] != "-":
                found[f.key] = file_differs(f, current[f.path], shas[f.key])
        for a, ok in zip(conditions, passed or (), strict=False):
            if ok:
                found[a.key] = None
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


# -- the operator's machine ------------------------------------------------------------


class LocalWork(Protocol):
    """Work a ``LocalStep`` names: minting certificates, serving boot files."""

    def apply(self, ctx: LayerContext) -> bool:
        """Do the work; True when it changed something."""
        ...

    def observe(self, ctx: LayerContext) -> str | None:
        """Why the work would change something (a dry run); None when nothing."""
        ...


# What makes the work a step names: called with the step's subject when it has one
# (os.arm of fohn is ArmWork("fohn")), with nothing otherwise. A work class is one.
LocalWorkFactory = Callable[..., LocalWork]


class LocalApplier:
    """``LocalStep``s, each carried out by the work ``works`` holds under its name.

    ``works``: by step name; the run assembles it from what each layer declares
    (``labctl/run.py``), and a test hands its own.
    """

    kinds = (LocalStep.kind,)

    def __init__(self, ctx: LayerContext, works: Mapping[str, LocalWorkFactory]) -> None:
        self._ctx = ctx
        self._works = works

    def _work(self, action: Action) -> LocalWork:
        assert isinstance(action, LocalStep)
        make = self._works.get(action.name)
        if make is None:
            raise LabctlError(f"no local work named {action.name!r} in this version of labctl")
        # Work done for one of several things in a run is made for that thing.
        return make(action.subject) if action.subject else make()

    def apply(self, action: Action) -> bool:
        return self._work(action).apply(self._ctx)

    def observe(self, action: Action) -> str | None:
        return self._work(action).observe(self._ctx)

    def survey(self, actions: Sequence[Action]) -> Mapping[str, str | None]:
        return {}

    def close(self) -> None:
        pass  # local work holds nothing open between steps


def _last_words(result: object) -> str:
    """The last line a failed check wrote to stderr, so a wait that runs out names its
    condition's own reason rather than only that it did not pass. (Not stdout: a check's
    output may be a whole status document; its reasons go to stderr.)"""
    said = getattr(result, "stderr", b"") or b""
    lines = [x.strip() for x in said.decode("utf-8", errors="replace").splitlines()]
    return next((x[:300] for x in reversed(lines) if x), "")
