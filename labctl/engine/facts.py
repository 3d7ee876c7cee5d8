"""Facts: what one plan learns and a later plan needs, carried on the run's context.

A layer's ``plans()`` is pure: it reads the inventory and *facts*, never a
file. A fact is a frozen dataclass, one class per thing known (etcd's
membership, the os survey, the PKI store's node files, the Ceph keys), and
its classmethod ``gather(ctx)`` is its gatherer: the one place that reads the
operator's machine for it (the state directory, the PKI store, a sealed file).
The classes live with their domain (``os/survey.py``, ``etcd/membership.py``,
``pki/facts.py``, ``ceph/keys.py``); the engine knows only this protocol.

When facts are gathered, one rule for every fact: a fact is gathered once
per run, when a layer that names it in its ``facts`` first reads it
(``ctx.fact``), and the board keeps it for the rest of the run (a later layer
that names it reads the same one); a real run forgets it when a plan that
names it in ``Plan.makes`` is applied (the certificates the mint left, the
membership the add step recorded), so the next read, in that layer or a later
one, gathers it again. A fact no plan of the run changes is therefore gathered
once, and one a plan changes once more after each such plan; nothing is
gathered that no layer reads. So a plan that changes what a gatherer reads
must name the fact in its ``makes``. A test builds the same context with
``Facts.of(...)`` and compares plans out; no state file is forged.

The one dry-run rule, for every fact: a dry run applies nothing, so after a
plan that would make or change a fact the fact is as it stood before that
plan, and nothing is forgotten: a dry run gathers each fact at most once. A
fact that is not there yet, or that only this run's plan can make (a record
on disk from an earlier run would be stale), is *pending*: its gatherer
raises ``FactPending`` naming the plan that makes it (kept, and raised again
at each read, as the fact would be). A layer reads a fact with
``ctx.fact(Kind)``; a pending fact then

* stops the layer: in a dry run the runner says, once, ``<layer>: the rest is
  planned once <plan> has run (<why>)`` and goes on with the next layer; in a
  real run it is an error with the same words (that plan did not run: ``--only``
  or ``--from`` left it out);
* or, where the layer can plan on without it, read as
  ``ctx.fact(Kind, otherwise=value)``: in a dry run the plans are built from
  ``value`` and the runner says, once, ``<layer>: planned as if <value>: <why>``;
  a real run fails as above.

Planning ahead (``engine/runner.py``: a layer's plans built once more at its start,
only to survey its nodes once): ``ahead(makes)`` makes this thread's reads of the
kinds an earlier plan of that pass makes gathered into a scratch board, never kept,
since the board must hold them only as they are once that plan has run; every other
read is the ordinary one (gathered then as the layer's own read would, as no earlier
plan changes it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, TypeVar

from labctl.errors import LabctlError

# The context a gatherer reads is the run's LayerContext (engine/layer.py). It is
# typed Any here: the context holds this board, so naming it would be an import circle.
GatherContext = Any


class FactPending(LabctlError):
    """A fact that is not there yet: ``plan`` makes it; ``why`` says what is missing."""

    def __init__(self, why: str, plan: str) -> None:
        super().__init__(f"{why} ({plan} makes it)")
        self.why = why
        self.plan = plan


class Fact(Protocol):
    """A typed, immutable thing known, with its gatherer."""

    @classmethod
    def gather(cls, ctx: GatherContext) -> Self:
        """Read it from the operator's machine; raise ``FactPending`` when it is not there."""
        ...

    def describe(self) -> str:
        """What the fact says, in a few words (for ``planned as if ...``)."""
        ...


F = TypeVar("F", bound=Fact)


@dataclass
class Facts:
    """The facts of one run, by class: gathered when first read, kept until a plan changes them.

    The board is the runner's to update (``expect``, ``changed``); what it holds
    are immutable facts, or the error their gatherer raised (raised again where
    a layer reads the fact).
    """

    _known: dict[type, object | LabctlError] = field(default_factory=dict)
    # The facts each layer being run names, by layer: what a read may gather
    # (engine/runner.py). Independent layers run at once (engine/graph.py), and a read
    # may come from a thread of the executor's (a LocalStep's work), so a read may gather
    # what any running layer names; in a run of one layer at a time, what that one names.
    _running: dict[str, frozenset[type]] = field(default_factory=dict)
    # What a dry run planned from instead of a pending fact is the planning thread's
    # (each layer plans in its own); the board itself is one, and its lock is held only
    # to look and to keep. A gatherer runs under its kind's own lock (a fact two layers
    # read at once is gathered once), so one layer's slow gatherer (an unsealing) never
    # holds up another layer reading another kind.
    _mine: threading.local = field(default_factory=threading.local, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _gathering: dict[type, threading.RLock] = field(default_factory=dict, repr=False)
    # Each kind's count of ``changed``: a gather that began before a plan changed its
    # fact is not kept (the next read gathers it again).
    _changes: dict[type, int] = field(default_factory=dict, repr=False)

    @property
    def assumed(self) -> list[str]:
        """What the dry run planned from instead of a pending fact, for the runner to say."""
        if not hasattr(self._mine, "assumed"):
            self._mine.assumed = []
        found: list[str] = self._mine.assumed
        return found

    @property
    def _named(self) -> frozenset[type]:
        with self._lock:
            return frozenset().union(*self._running.values())

    @classmethod
    def of(cls, *facts: object) -> Facts:
        """A board holding ``facts`` (for tests and callers that know them already)."""
        return cls({type(fact): fact for fact in facts})

    def expect(self, kinds: Iterable[type], layer: str = "") -> None:
        """``layer``, about to plan, names ``kinds``: reads may gather them until it ends
        (``expect((), layer)``), or until the same layer names others."""
        with self._lock:
            self._running[layer] = frozenset(kinds)

    def changed(self, kinds: Iterable[type]) -> None:
        """A plan that makes ``kinds`` was applied: the next read gathers them again."""
        with self._lock:
            for kind in kinds:
                self._known.pop(kind, None)
                self._changes[kind] = self._changes.get(kind, 0) + 1

    def gather(self, kinds: Iterable[type[F]], ctx: GatherContext) -> None:
        """(Re)gather each of ``kinds`` now; a gatherer's error is kept for the reader."""
        for kind in kinds:
            self._gather(kind, ctx, again=True)

    def _gather(self, kind: type[F], ctx: GatherContext, again: bool) -> object | LabctlError:
        """``kind`` gathered under its own lock (``again``: even if known), kept unless a
        plan changed it meanwhile; what was found, or the gatherer's error."""
        with self._lock:
            mine = self._gathering.setdefault(kind, threading.RLock())
        with mine:
            with self._lock:
                if not again and kind in self._known:  # another reader gathered it
                    return self._known[kind]
                count = self._changes.get(kind, 0)
            found: object | LabctlError
            try:
                found = kind.gather(ctx)
            except LabctlError as exc:
                found = exc
            with self._lock:
                if self._changes.get(kind, 0) == count:
                    self._known[kind] = found
            return found

    def ahead(self, makes: frozenset[type] | None) -> None:
        """This thread plans ahead and earlier plans of that pass make ``makes``
        (None: it plans for real again); see the module docstring."""
        self._mine.makes = makes
        if makes is None or not hasattr(self._mine, "scratch"):
            self._mine.scratch = {}

    @property
    def planning_ahead(self) -> bool:
        """Whether this thread's planning is the runner's pass ahead (a test's layer that
        records what it read records its own planning only)."""
        return bool(getattr(self._mine, "planning_ahead", False))

    @planning_ahead.setter
    def planning_ahead(self, value: bool) -> None:
        self._mine.planning_ahead = value

    def read(self, kind: type[F], ctx: GatherContext, otherwise: F | None = None) -> F:
        """The fact of class ``kind``, gathered now if it is named and not known (the
        rules are in the module docstring)."""
        makes: frozenset[type] | None = getattr(self._mine, "makes", None)
        if makes is not None and kind in makes:
            scratch: dict[type, object | LabctlError] = self._mine.scratch
            if kind not in scratch:
                with self._lock:
                    if kind not in self._named:
                        raise LabctlError(f"the fact {kind.__name__} was not gathered")
                    if kind in self._known:  # as it stands: no plan has run yet
                        scratch[kind] = self._known[kind]
            if kind not in scratch:
                try:
                    scratch[kind] = kind.gather(ctx)
                except LabctlError as exc:
                    scratch[kind] = exc
            return self._found(kind, scratch[kind], ctx, otherwise)
        with self._lock:
            known = kind in self._known
            if not known and kind not in self._named:
                raise LabctlError(
                    f"the fact {kind.__name__} was not gathered: the layer must name it "
                    "in its `facts` (or the test give it with Facts.of)"
                )
            found = self._known.get(kind)
        if not known:
            found = self._gather(kind, ctx, again=False)
        return self._found(kind, found, ctx, otherwise)

    def _found(self, kind: type[F], found: object, ctx: GatherContext, otherwise: F | None) -> F:
        if isinstance(found, FactPending) and ctx.dry_run and otherwise is not None:
            self.assumed.append(f"planned as if {otherwise.describe()}: {found}")
            return otherwise
        if isinstance(found, LabctlError):
            raise found
        assert isinstance(found, kind)
        return found

    def stand_in(self, kind: type[F], value: F) -> LabctlError | None:
        """Put ``value`` where ``kind`` could not be gathered, and say why it could not
        (``labctl render`` shows masked Ceph keys where a first run would mint them, or
        where their passphrase is not given); else nothing."""
        found = self._known.get(kind)
        if not isinstance(found, LabctlError):
            return None
        self._known[kind] = value
        return found

    def take_assumed(self) -> list[str]:
        """What was assumed since the last call, once each."""
        said = list(dict.fromkeys(self.assumed))
        self.assumed.clear()
        return said
