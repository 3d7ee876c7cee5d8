"""A converged bootstrap's seconds outside the plans, every thread (issue 28 item 2).

Usage (root, under the machine's lab lock):

    flock /tmp/labctl-sim.lock python benchmarks/bench_convgap.py [--reruns 3] \
        [--compare DIR] [--save DIR] [--py-spy FILE]
    python benchmarks/bench_convgap.py --read DIR     # the tables again, from --save's traces

Brings the reference lab up (`labctl sim up`), bootstraps it from nothing, then runs
``--reruns`` converged re-runs under ``convgap_trace.py`` (a timeline of the process,
every thread: imports, inventory, preflight, each layer's planning, facts and plans,
the report), turn about with ``--compare``'s tree when given; takes the lab down
whatever happened. For each tree it prints the median of each part of a run, and the
run's longest path through the layers' graph: when each layer could start (its needs
done), when it did (a worker slot: ``DEFAULT_WORKERS``), and how its time splits
between planning, facts gathered, plans applied (the executor's own clock) and the
rest. With ``--py-spy FILE`` one more run of this tree is sampled by py-spy, every
thread, idle included (``py-spy record --threads --idle``; a flame graph in FILE).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_bootstrap import SECRETS, compile_trees, labctl, must, simulated_lab  # noqa: E402

Span = dict[str, Any]


def traced(workdir: Path, env: dict[str, str], out: Path, prefix: tuple[str, ...] = ()) -> float:
    """One converged bootstrap under the tracer; its wall time (the trace is in ``out``)."""
    environ = {**os.environ, **SECRETS, **env, "CONVGAP_TRACE": str(out)}
    argv = [*prefix, sys.executable, str(HERE / "convgap_trace.py"), "bootstrap", "-o", "json"]
    environ["CONVGAP_T0"] = repr(time.time())
    start = time.perf_counter()
    done = subprocess.run(
        argv, cwd=workdir, env=environ, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    must(done, "traced converged bootstrap")
    # py-spy says what it does on the same stdout: the report is from its first brace.
    report = json.loads(done.stdout[done.stdout.index("{") :])
    changed = [
        s["description"]
        for layer in report["layers"]
        for p in layer["plans"]
        for s in p["steps"]
        if s["outcome"] not in ("unchanged", "skipped")
    ]
    if changed:
        raise SystemExit("a converged re-run changed something: " + "; ".join(changed))
    trace = json.loads(out.read_text())
    trace["wall"] = wall
    out.write_text(json.dumps(trace, indent=1))
    return wall


def _sum(spans: list[Span], prefix: str, thread: str | None = None) -> float:
    return sum(
        float(s["end"] - s["start"])
        for s in spans
        if s["what"].startswith(prefix) and (thread is None or s["thread"] == thread)
    )


def _one(spans: list[Span], what: str) -> Span | None:
    return next((s for s in spans if s["what"] == what), None)


def _seconds(span: Span | None) -> float:
    return 0.0 if span is None else float(span["end"] - span["start"])


def parts(trace: dict[str, Any], needs: dict[str, tuple[str, ...]]) -> dict[str, float]:
    """A run's parts in seconds: the main thread's, and the longest path's layers."""
    spans: list[Span] = trace["spans"]
    found: dict[str, float] = {"whole process": trace["wall"]}
    found["interpreter start"] = _seconds(_one(spans, "interpreter start"))
    found["imports (labctl, its CLI, layers, paramiko)"] = _sum(spans, "import ")
    command = _one(spans, "command")
    inventory = _one(spans, "inventory and lab checks")
    if command and inventory:
        found["CLI to the command"] = inventory["start"] - command["start"]
    found["inventory and lab checks"] = _seconds(inventory)
    found["preflight (versions)"] = _seconds(_one(spans, "preflight"))
    report = _one(spans, "run and report")
    run = _one(spans, "run_layers")
    graph = _one(spans, "graph")
    found["appliers, lock"] = _seconds(run) - _seconds(graph)
    found["the layers (graph)"] = _seconds(graph)
    found["report written"] = _seconds(report) - _seconds(run)
    found["SSH sessions closed"] = _sum(spans, "ssh close")
    exit_ = _one(spans, "exit")
    if exit_ and command:
        found["after the command (exit)"] = trace["wall"] - command["end"]
    layers = {s["what"].removeprefix("layer "): s for s in spans if s["what"].startswith("layer ")}
    # The longest path: from the layer that ended last, back through the need that ended last.
    path: list[str] = []
    name = max(layers, key=lambda n: layers[n]["end"]) if layers else None
    while name:
        path.append(name)
        before = [n for n in needs.get(name, ()) if n in layers]
        name = max(before, key=lambda n: layers[n]["end"]) if before else None
    for name in reversed(path):
        span = layers[name]
        thread = span["thread"]
        inside = [s for s in spans if span["start"] <= s["start"] <= span["end"]]
        ready = max((layers[n]["end"] for n in needs.get(name, ()) if n in layers), default=None)
        if ready is not None:
            found[f"{name}: waits for a worker"] = max(0.0, span["start"] - ready)
        planning = _sum(inside, "plan ", thread) + _sum(inside, "ahead ", thread)
        gathered = _sum(inside, "gather ", thread)
        applied = _sum(inside, "apply ", thread)
        found[f"{name}: planning (facts gathered in it apart)"] = planning - gathered
        found[f"{name}: facts gathered"] = gathered
        found[f"{name}: plans applied"] = applied
        found[f"{name}: the rest"] = _seconds(span) - planning - applied
    return found


def table(traces: list[dict[str, Any]], title: str) -> None:
    from labctl.run import layer_graph

    needs = layer_graph()
    rows: dict[str, list[float]] = defaultdict(list)
    paths = []
    for trace in traces:
        found = parts(trace, needs)
        paths.append(" -> ".join(dict.fromkeys(k.split(":")[0] for k in found if ": " in k)))
        for key, seconds in found.items():
            rows[key].append(seconds)
    print(f"\n{title}: {len(traces)} traced converged re-run(s), median of each part")
    print("longest path: " + "; ".join(dict.fromkeys(paths)))
    print("| part | seconds |\n|---|---|")
    for key, values in rows.items():
        print(f"| {key} | {statistics.median(values):.2f} |")
    gathers: dict[str, list[float]] = defaultdict(list)
    for trace in traces:
        each: dict[str, float] = defaultdict(float)
        for s in trace["spans"]:
            if s["what"].startswith(("gather ", "ssh login ", "preflight", "appliers")):
                each[s["what"]] += s["end"] - s["start"]
        for key, seconds in each.items():
            gathers[key].append(seconds)
    print("\nfacts gathered, SSH logins (median seconds, any thread):")
    for key, values in sorted(gathers.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"  {key:<40} {statistics.median(values):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inventory", type=Path, default=ROOT / "inventory.yaml")
    parser.add_argument("--reruns", type=int, default=3)
    parser.add_argument("--compare", type=Path, help="another labctl tree, run turn about")
    parser.add_argument("--save", type=Path, help="keep the traces here")
    parser.add_argument("--read", type=Path, help="print the tables of --save's traces")
    parser.add_argument("--py-spy", type=Path, help="one more run under py-spy, to FILE")
    args = parser.parse_args()
    if args.read:
        for tree in sorted(p for p in args.read.iterdir() if p.is_dir()):
            traces = [json.loads(f.read_text()) for f in sorted(tree.glob("trace-*.json"))]
            table(traces, tree.name)
        return
    if os.geteuid() != 0:
        raise SystemExit("run as root: the simulated lab makes namespaces")
    trees = [("this", ROOT), *([("compared", args.compare.resolve())] if args.compare else [])]
    compile_trees([tree for _, tree in trees])
    save = args.save or Path(tempfile.mkdtemp(prefix="convgap-"))
    with simulated_lab(args.inventory, "bench-convgap-") as (workdir, env):
        wall, done = labctl(workdir, env, "bootstrap", "-o", "json")
        must(done, "labctl bootstrap")
        print(f"bootstrap from nothing: {wall:.2f} s")
        walls: dict[str, list[float]] = defaultdict(list)
        for i in range(args.reruns):
            for name, tree in reversed(trees):
                (save / name).mkdir(parents=True, exist_ok=True)
                environ = {**env, "PYTHONPATH": str(tree)}
                wall = traced(workdir, environ, save / name / f"trace-{i}.json")
                walls[name].append(wall)
        for name, tree in trees:
            runs = ", ".join(f"{w:.2f}" for w in walls[name])
            print(f"{name} ({tree}): {runs} s; median {statistics.median(walls[name]):.2f} s")
        if args.py_spy:
            spy = Path(sys.executable).parent / "py-spy"
            prefix = (str(spy), "record", "--threads", "--idle", "-o", str(args.py_spy), "--")
            wall = traced(workdir, {**env, "PYTHONPATH": str(ROOT)}, save / "spy.json", prefix)
            print(f"under py-spy: {wall:.2f} s -> {args.py_spy}")
    print(f"traces in {save}")
    for name, _ in trees:
        traces = [json.loads(f.read_text()) for f in sorted((save / name).glob("trace-*.json"))]
        table(traces, name)


if __name__ == "__main__":
    main()
