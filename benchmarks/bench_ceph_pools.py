"""Time the ceph layer's pools step(s) command by command against a real Ceph monitor.

Usage (root; no lab, so no lab lock: one monitor on loopback):

    python benchmarks/bench_ceph_pools.py [--compare DIR] [--rounds 2]

Where a pool's seconds go: the pools plan's own pool steps of the reference inventory
(`ceph-pools.sh`, one step for every pool, or an older tree's `ceph-pool.sh`, one step
per pool, as `labctl plan` makes them) run under `sh` against a one-monitor
Pacific cluster made from this machine's Debian Ceph (``tests/peers/cephmon.py``; no
manager, no OSD: pools are monitor commands, each write answered once the monitor
commits it). The node's container engine is a stand-in that hands the step's `exec ...
/usr/bin/ceph ARGS` to the real CLI and times each call. Each round makes a fresh
monitor, runs every pool step from nothing, then all of them again (a re-run: a roll, a
changed script), then the CephFS step (`fs new`, which enables `cephfs` on its pools).
``--compare DIR`` (e.g. ``git archive main | tar -x -C DIR``) does the
same with that tree's steps, turn about with this tree's. A lab's monitors commit
across three nodes and its CLI starts in a container; the propose interval, which sets
the pace of back-to-back writes, is the same (`paxos_propose_interval`, 1 s).
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.peers.cephmon import running_ceph_mon

ROOT = Path(__file__).resolve().parents[1]
# The pools plan's pool steps' argv, as the tree on PYTHONPATH plans them.
STEPS = """
import json
from pathlib import Path
from labctl.ceph.keys import CephKeys, cephx_key
from labctl.engine.facts import Facts
from labctl.engine.layer import LayerContext
from labctl.inventory import require_inventory
from labctl.layers.ceph import CephLayer
from labctl.render import ceph as render
path = Path("inventory.yaml").resolve()
inventory = require_inventory(path)
keys = {e: cephx_key(bytes([i]) * 16, 1_700_000_000)
        for i, e in enumerate(render.entities(inventory))}
ctx = LayerContext(inventory, path, Path("/nonexistent"),
                   facts=Facts.of(CephKeys(tuple(sorted(keys.items())))))
plan = next(p for p in CephLayer().plans(ctx) if p.layer == "ceph: pools")
print(json.dumps([list(s.action.argv) for s in plan.steps
                  if s.action.argv[3:4] in (("labctl-ceph-pool",), ("labctl-ceph-pools",),
                                            ("labctl-ceph-fs",))]))
"""


def label(argv: list[str]) -> str:
    """What a step makes: one pool (``ceph-pool.sh``), every pool, or a CephFS."""
    if argv[3] == "labctl-ceph-pools":
        return "every pool"
    if argv[3] == "labctl-ceph-fs":
        return f"CephFS {argv[5]}"
    return argv[5]


def pool_steps(tree: Path) -> list[list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", STEPS],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=True,
    )
    steps: list[list[str]] = json.loads(done.stdout)
    return steps


def engine(folder: Path, conf: Path) -> Path:
    """A stand-in `docker`: the monitor container runs; an exec runs the real CLI,
    timed: "START_NS END_NS ARGS" per call."""
    path = folder / "docker"
    path.write_text(
        "#!/bin/sh\n"
        '[ "$1" = inspect ] && { echo true; exit 0; }\n'
        "shift 4\n"
        "s=$(date +%s%N)\n"
        f'ceph -c {conf} "$@"\n'
        "rc=$?\n"
        f'echo "$s $(date +%s%N) $*" >> {folder}/calls\n'
        "exit $rc\n"
    )
    path.chmod(0o755)
    return path


def run_steps(steps: list[list[str]], docker: Path, folder: Path) -> list[dict[str, object]]:
    rows = []
    for argv in steps:
        log = folder / "calls"
        log.unlink(missing_ok=True)
        start = time.perf_counter()
        done = subprocess.run(
            [w.replace("/usr/bin/docker", str(docker)) for w in argv],
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{label(argv)}: {done.stderr}")
        calls = []
        for line in log.read_text().splitlines():
            s, e, what = line.split(" ", 2)
            calls.append((what, (int(e) - int(s)) / 1e9))
        rows.append({"pool": label(argv), "seconds": seconds, "calls": calls})
    return rows


def is_write(what: str) -> bool:
    """A command that may write (a create of a pool that exists commits nothing)."""
    return not what.startswith(("osd pool ls", "osd pool get", "fs ls"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--compare", type=Path, help="another source tree, e.g. main's")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    trees = {"this tree": ROOT}
    if args.compare:
        trees["compared"] = args.compare.resolve()
    steps = {name: pool_steps(tree) for name, tree in trees.items()}
    totals: dict[tuple[str, str], list[float]] = {}
    for round_ in range(args.rounds):
        for name in trees:
            with tempfile.TemporaryDirectory(prefix="bench-ceph-pools-") as tmp:
                folder = Path(tmp)
                with running_ceph_mon(folder / "ceph") as mon:
                    docker = engine(folder, mon.conf)
                    time.sleep(1.5)  # the monitor's first commits are its own
                    for phase in ("from nothing", "re-run"):
                        rows = run_steps(steps[name], docker, folder)
                        total = sum(float(str(r["seconds"])) for r in rows)
                        totals.setdefault((name, phase), []).append(total)
                        print(f"\nround {round_ + 1}, {name}, {phase}: {total:.2f} s")
                        for row in rows:
                            calls = row["calls"]
                            assert isinstance(calls, list)
                            writes = sum(1 for what, _ in calls if is_write(what))
                            print(
                                f"  {row['pool']:<16} {float(str(row['seconds'])):5.2f} s, "
                                f"{len(calls)} ceph call(s), {writes} create/set/enable"
                            )
                            for what, secs in calls:
                                print(f"      {secs:5.2f} s  {what}")
    print("\nmedian seconds of the pool and CephFS steps:")
    for (name, phase), values in totals.items():
        print(f"  {name:<10} {phase:<13} {statistics.median(values):6.2f} s  ({len(values)} runs)")


if __name__ == "__main__":
    main()
