"""The layers as a graph: what each needs, checked, and a run of them that starts each as
soon as what it needs is done.

The bootstrap order (``LAYERS``) is a line, but the layers' real dependencies are not:
Ceph on the hosts needs the nodes up and the PKI's directory, not Kubernetes; the
switches' BGP side needs nothing from Kubernetes. A layer says what it needs with a
``needs`` tuple of layer names; one that says nothing needs the layer before it (as in
a line: a test's layer, a place not yet built). The order stays the order: every need
comes earlier in it, so ``--from`` keeps its meaning and a run with one worker is the
line it always was.

A run of some layers (``--only``, ``--from``) waits only for the chosen layers: a
need left out is taken as done (as a line run today takes the layers before ``--from``),
and one chosen layer waits for another through a need left out (A needs B needs C:
with A and C chosen, A waits for C).

``run_graph`` is the scheduler alone: it calls ``run_one(name)`` in a bounded pool of
threads, each layer as soon as all it waits for succeeded, in bootstrap order among
the ready ones; once one fails it starts no other and sets ``stop``, which a running
layer reads between its plans (a plan is never cut short). It knows nothing of plans:
``engine/runner.py`` runs a layer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from labctl.errors import LabctlError

# How many layers run at once: enough for the graph's widest point (Ceph beside
# etcd, Kubernetes and calico), few enough that each layer's own parallel steps
# (one thread per target) stay a bounded number of threads.
DEFAULT_WORKERS = 3


class GraphError(LabctlError):
    """The layers' needs do not make a graph labctl can run: an unknown layer, a cycle,
    or a need that comes later in the bootstrap order."""


def declared_needs(layers: Sequence[Any]) -> dict[str, tuple[str, ...]]:
    """Each layer's needs as it declares them (``needs``), or the layer before it."""
    found: dict[str, tuple[str, ...]] = {}
    previous: tuple[str, ...] = ()
    for layer in layers:
        needs = getattr(layer, "needs", None)
        found[layer.name] = previous if needs is None else tuple(needs)
        previous = (layer.name,)
    return found


def check(order: Sequence[str], needs: Mapping[str, Sequence[str]], ordered: bool = True) -> None:
    """Raise ``GraphError`` naming the first problem: a need that is no layer, a cycle,
    and (``ordered``: ``order`` is the bootstrap order) a need that comes after the layer
    that needs it."""
    place = {name: i for i, name in enumerate(order)}
    for name in order:
        for need in needs.get(name, ()):
            if need not in place:
                raise GraphError(
                    f"layer {name} needs '{need}', which is no layer; layers are: "
                    f"{', '.join(order)}"
                )
    cycle = _cycle(order, needs)
    if cycle:
        raise GraphError(f"the layers' needs make a cycle: {' -> '.join(cycle)}")
    for name in order if ordered else ():
        for need in needs.get(name, ()):
            if place[need] > place[name]:
                raise GraphError(
                    f"layer {name} needs {need}, which comes after it in the bootstrap order; "
                    "put it before"
                )


def _cycle(order: Sequence[str], needs: Mapping[str, Sequence[str]]) -> list[str]:
    """One cycle as a path that ends where it starts, or an empty list."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = 1
        path.append(name)
        for need in needs.get(name, ()):
            if state.get(need) == 1:
                return [*path[path.index(need) :], need]
            if state.get(need) is None:
                found = visit(need)
                if found:
                    return found
        path.pop()
        state[name] = 2
        return []

    for name in order:
        if state.get(name) is None:
            found = visit(name)
            if found:
                return found
    return []


def waits_for(
    order: Sequence[str], needs: Mapping[str, Sequence[str]], chosen: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    """What each chosen layer waits for among the chosen: its needs, through any layer
    left out, in bootstrap order."""
    picked = set(chosen)
    place = {name: i for i, name in enumerate(order)}
    found: dict[str, tuple[str, ...]] = {}
    for name in chosen:
        reached: set[str] = set()
        todo = list(needs.get(name, ()))
        while todo:
            need = todo.pop()
            if need in reached:
                continue
            reached.add(need)
            if need not in picked:
                todo.extend(needs.get(need, ()))
        found[name] = tuple(sorted(reached & picked, key=place.__getitem__))
    return found


def direct(waits: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """``waits`` without what is implied: A needs B needs C, so A's C is left out (the
    graph as ``labctl plan`` shows it)."""

    def below(name: str, seen: set[str]) -> set[str]:
        for need in waits.get(name, ()):
            if need not in seen:
                seen.add(need)
                below(need, seen)
        return seen

    found: dict[str, tuple[str, ...]] = {}
    for name, needs in waits.items():
        implied: set[str] = set()
        for need in needs:
            implied |= below(need, set())
        found[name] = tuple(n for n in needs if n not in implied)
    return found


def run_graph(
    order: Sequence[str],
    waits: Mapping[str, Sequence[str]],
    run_one: Callable[[str], bool],
    workers: int = DEFAULT_WORKERS,
    stop: threading.Event | None = None,
) -> list[str]:
    """Run each of ``order`` with ``run_one`` (True: it succeeded) once all it ``waits``
    for succeeded, at most ``workers`` at once; once one fails (or raises) none is started
    and ``stop`` is set. Returns the names started, in the order they started; an
    exception from ``run_one`` is raised once every started layer has ended."""
    stop = stop or threading.Event()
    succeeded: set[str] = set()
    started: list[str] = []
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="layer") as pool:
        try:
            _schedule(order, waits, run_one, workers, stop, pool, started, succeeded)
        except BaseException:  # an interrupt: the running layers end at their next plan
            stop.set()
            raise
    return started


def _schedule(
    order: Sequence[str],
    waits: Mapping[str, Sequence[str]],
    run_one: Callable[[str], bool],
    workers: int,
    stop: threading.Event,
    pool: ThreadPoolExecutor,
    started: list[str],
    succeeded: set[str],
) -> None:
    running: dict[Future[bool], str] = {}
    raised: BaseException | None = None
    while True:
        if not stop.is_set():
            for name in order:
                if len(running) >= max(1, workers):
                    break
                if name in started or not all(n in succeeded for n in waits.get(name, ())):
                    continue
                started.append(name)
                running[pool.submit(run_one, name)] = name
        if not running:
            break
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in done:
            name = running.pop(future)
            try:
                ok = future.result()
            except BaseException as exc:  # raised again once every layer has ended
                raised = raised or exc
                ok = False
            if ok:
                succeeded.add(name)
            else:
                stop.set()
    if raised is not None:
        raise raised


def describe(waits: Mapping[str, Sequence[str]]) -> list[str]:
    """The graph of a run's layers for people, one line each: what it starts after
    (what is implied left out), or that it starts first."""
    lines = []
    for name, needs in direct(waits).items():
        lines.append(f"{name}: after {', '.join(needs)}" if needs else f"{name}: first")
    return lines
