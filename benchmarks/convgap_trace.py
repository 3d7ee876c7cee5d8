"""Where a whole `labctl` run's seconds go, every thread: a timeline of one process.

cProfile sees the main thread only, and a bootstrap runs its layers in the graph's
threads and each plan's targets in the executor's. This runs labctl in the same
process after wrapping, from outside, the few functions that mark a run's parts
(nothing in labctl knows of it): the imports, the inventory and lab checks, the
preflight, the appliers' assembly, each layer (``_run_layer``), each plan's planning
(the runner's ``_plans``, each ``next``) and its planning ahead (``ahead``), each
fact read and gathered (``Facts.read``, ``Facts.gather``), each plan applied
(``Executor.apply``), each target's survey (``Executor._survey``), each SSH login,
the report and the sessions' close. Each span is (what, thread, start, end) in
seconds of wall clock; ``CONVGAP_T0`` (the parent's ``time.time()`` just before it
started this process) places the interpreter's start.

    CONVGAP_TRACE=out.json CONVGAP_T0=$(date +%s.%N) \
        python benchmarks/convgap_trace.py bootstrap -o json

``benchmarks/bench_convgap.py`` runs it on a simulated lab and reads the spans.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_START = time.time()
_T0 = float(os.environ.get("CONVGAP_T0", _START))
_SPANS: list[dict[str, Any]] = []
_LOCK = threading.Lock()


def _add(what: str, start: float, end: float, **more: Any) -> None:
    with _LOCK:
        _SPANS.append(
            {
                "what": what,
                "thread": threading.current_thread().name,
                "start": round(start - _T0, 4),
                "end": round(end - _T0, 4),
                **more,
            }
        )


def _timed(what: Callable[..., str], function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.time()
        try:
            return function(*args, **kwargs)
        finally:
            _add(what(*args, **kwargs), start, time.time())

    return timed


def _patch(owner: Any, name: str, what: Callable[..., str]) -> None:
    setattr(owner, name, _timed(what, getattr(owner, name)))


def _imports() -> None:
    for module in (
        "labctl.cli.main",
        "labctl.cli.bootstrap_cmd",
        "labctl.engine.runner",
        "labctl.run",
        "labctl.layers",
        "labctl.drivers.ssh",
    ):
        start = time.time()
        __import__(module)
        _add(f"import {module}", start, time.time())


def _install() -> None:
    import labctl.cli.bootstrap_cmd as bootstrap_cmd
    import labctl.cli.preflight as preflight
    import labctl.drivers.ssh as ssh
    import labctl.engine.executor as executor
    import labctl.engine.facts as facts
    import labctl.engine.runner as runner
    import labctl.run as run

    _patch(bootstrap_cmd, "layer_context", lambda *a, **k: "inventory and lab checks")
    _patch(bootstrap_cmd, "run_and_report", lambda *a, **k: "run and report")
    _patch(preflight, "skew_preflight", lambda *a, **k: "preflight")
    _patch(run, "standard_appliers", lambda *a, **k: "appliers")
    _patch(run, "run_layers", lambda *a, **k: "run_layers")
    _patch(runner, "run_graph", lambda *a, **k: "graph")
    _patch(runner, "_run_layer", lambda layer, *a, **k: f"layer {layer.name}")
    _patch(runner, "ahead", lambda layer, *a, **k: f"ahead {layer.name}")
    _patch(executor.Executor, "apply", lambda self, plan, *a, **k: f"apply {plan.layer}")
    _patch(
        executor.Executor,
        "_survey",
        lambda self, layer, steps, index, *a, **k: f"survey {layer} {steps[index].target}",
    )
    _patch(facts.Facts, "read", lambda self, kind, *a, **k: f"read {kind.__name__}")
    if hasattr(facts.Facts, "_gather"):  # one kind at a time, under its own lock
        _patch(facts.Facts, "_gather", lambda self, kind, *a, **k: f"gather {kind.__name__}")
    else:  # under the board's lock (before convgap)
        _patch(
            facts.Facts,
            "gather",
            lambda self, kinds, *a, **k: "gather " + ",".join(kind.__name__ for kind in kinds),
        )
    _patch(ssh.SshSession, "_connect", lambda self: f"ssh login {self.target.name}")
    _patch(ssh.SessionPool, "close", lambda self: "ssh close")

    plans = runner._plans

    @functools.wraps(plans)
    def timed_plans(layer: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        found = plans(layer, *args, **kwargs)
        while True:
            start = time.time()
            try:
                plan = next(found)
            except StopIteration:
                _add(f"plan {layer.name} (end)", start, time.time())
                return
            _add(f"plan {plan.layer}", start, time.time())
            yield plan

    runner._plans = timed_plans


def _dump() -> None:
    _add("exit", time.time(), time.time())
    Path(os.environ.get("CONVGAP_TRACE", "convgap-trace.json")).write_text(
        json.dumps({"started": round(_START - _T0, 4), "spans": _SPANS}, indent=1)
    )


def main() -> None:
    atexit.register(_dump)
    _add("interpreter start", _T0, _START)
    _imports()
    _install()
    sys.argv = ["labctl", *sys.argv[1:]]
    from labctl.cli.main import run

    start = time.time()
    try:
        run()
    finally:
        _add("command", start, time.time())


if __name__ == "__main__":
    main()
