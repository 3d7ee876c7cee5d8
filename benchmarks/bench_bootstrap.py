"""Time a whole `labctl bootstrap` of a simulated lab and its converged re-runs, per layer.

Usage (root, under the machine's lab lock):

    flock /tmp/labctl-sim.lock python benchmarks/bench_bootstrap.py \
        [--inventory tests/fixtures/newcomer-lab.yaml] [--reruns 5] [--profile out.prof] \
        [--only LAYER]

Brings the inventory's lab up in a temporary directory (`labctl sim up`), runs
`labctl bootstrap -o json` once from nothing, then `--reruns` converged re-runs (each
must have nothing to do), and takes the lab down whatever happened. Prints the whole
process's wall time and, from the run's JSON report, each layer's and each plan's
seconds (the executor's own clock: from the plan's first step to its last). With
``--profile`` the last converged re-run runs under cProfile and its stats are written
there (`python -m pstats FILE`). Each tree's labctl is byte-compiled first, as pip
installs it. With ``--compare DIR`` (another source tree, e.g.
``git archive main | tar -x -C DIR``) it then runs converged re-runs of that tree's labctl
and this one's turn about on the same lab, so both meet the same machine load. With
``--drift`` (the reference lab) it last makes three changes behind labctl's back, a file
edited (chequita's ceph.conf), a wrong key (wind's admin keyring) and a stopped unit
(chequita's kubelet), and checks that the next run puts each back and the one after
changes nothing: a faster converged run must still notice drift. With ``--only LAYER``
(repeatable) every bootstrap, the first included, runs those layers alone, as
``labctl bootstrap --only`` does (e.g. ``--only power --only os --only calico``: the
power layer's converged run with graceful power's call-back in it, in seconds of lab
time). With ``--reads`` it last times the converged run's head and health reads part by
part (``converged_reads.py``: the BMC sessions, graceful power's drain check, the BGP
read, Ceph's health, the preflight's versions), with this tree's labctl and, with
``--compare``, the other's. Issue 28's targets: bootstrap <= 60 s on the reference lab, a converged
re-run <= 2 s.
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SECRETS = {
    "LABCTL_BMC_PASSWORD": "bench-bmc-pw",
    "LABCTL_BMC_PASSWORD_FOHN": "bench-bmc-pw",
    "LABCTL_BMC_PASSWORD_CHEQUITA": "bench-bmc-pw",
    "LABCTL_BMC_PASSWORD_WIND": "bench-bmc-pw",
    "LABCTL_PDU_AUTH_KEY": "bench-pdu-auth",
    "LABCTL_PDU_PRIV_KEY": "bench-pdu-priv",
    "LABCTL_SWITCH_SNMP_AUTH_KEY": "bench-switch-auth",
    "LABCTL_SWITCH_SNMP_PRIV_KEY": "bench-switch-priv",
    "LABCTL_CA_PASSPHRASE": "bench-ca-passphrase",
}


def labctl(
    workdir: Path, env: dict[str, str], *args: str, prefix: tuple[str, ...] = ()
) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *prefix, "-m", "labctl", *args],
        cwd=workdir,
        env={**os.environ, **SECRETS, **env},
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return time.perf_counter() - start, done


def must(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")


@contextmanager
def simulated_lab(inventory: Path, prefix: str) -> Iterator[tuple[Path, dict[str, str]]]:
    """``inventory``'s lab up (`labctl sim up`) in a temporary directory: that directory
    and the lab's environment; taken down (`sim down`) whatever happened."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        workdir = Path(tmp)
        (workdir / "inventory.yaml").write_text(inventory.read_text())
        up, done = labctl(workdir, {}, "sim", "up")
        try:
            must(done, "labctl sim up")
            print(f"sim up: {up:.2f} s")
            yield workdir, sim_env(workdir)
        finally:
            down, done = labctl(workdir, {}, "sim", "down")
            print(f"\nsim down: {down:.2f} s" + ("" if done.returncode == 0 else " (FAILED)"))


def compile_trees(trees: list[Path]) -> None:
    """labctl as pip installs it: its modules byte-compiled. Without this, a shell with
    PYTHONDONTWRITEBYTECODE=1 (this project's machines have it) compiles every labctl
    module from source in every run, about 0.2 s of each converged re-run."""
    for tree in trees:
        compiled = subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(tree.resolve() / "labctl")],
            capture_output=True,
            text=True,
            check=False,
        )
        must(compiled, f"byte-compiling {tree}")


def sim_env(workdir: Path) -> dict[str, str]:
    _, done = labctl(workdir, {}, "sim", "env")
    must(done, "labctl sim env")
    pairs = (line.removeprefix("export ").split("=", 1) for line in done.stdout.splitlines())
    return {key: value.strip("'") for key, value in pairs}


# What --drift changes behind labctl's back (node, shell command), and what the next
# run must say it changed (node, path) for the two files.
DRIFT = (
    ("chequita", "echo '# edited by hand' >> /etc/ceph/ceph.conf"),
    (
        "wind",
        "sed -i 's|key = .*|key = AQBdriftAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==|' "
        "/etc/ceph/ceph.client.admin.keyring",
    ),
    ("chequita", "systemctl stop kubelet.service"),
)
DRIFTED_FILES = {
    ("chequita", "/etc/ceph/ceph.conf"),
    ("wind", "/etc/ceph/ceph.client.admin.keyring"),
}


def drift(workdir: Path, env: dict[str, str]) -> None:
    """Make DRIFT's changes, then: the next run changes exactly the two files back (and
    the kubelet runs again), the one after changes nothing."""
    for node, command in DRIFT:
        # One word: ssh hands it to the node's shell as it is.
        _, done = labctl(workdir, env, "sim", "ssh", node, "--", command)
        must(done, f"{node}: {command}")
    _, done = labctl(workdir, env, "sim", "ssh", "chequita", "systemctl", "is-active", "kubelet")
    if done.returncode == 0:
        raise SystemExit("chequita's kubelet still runs after `systemctl stop`")
    wall, done = labctl(workdir, env, "bootstrap", "-o", "json")
    must(done, "bootstrap after the drift")
    changed = {
        (s["target"], s["description"])
        for layer in json.loads(done.stdout)["layers"]
        for p in layer["plans"]
        for s in p["steps"]
        if s["outcome"] == "changed"
    }
    for node, path in DRIFTED_FILES:
        if not any(target == node and path in what for target, what in changed):
            raise SystemExit(f"the run after the drift did not put back {node}:{path}: {changed}")
    _, done = labctl(workdir, env, "sim", "ssh", "chequita", "systemctl", "is-active", "kubelet")
    if done.returncode != 0:
        raise SystemExit("the run after the drift left chequita's kubelet stopped")
    again, done = labctl(workdir, env, "bootstrap", "-o", "json")
    must(done, "bootstrap after the repair")
    still = [
        s["description"]
        for layer in json.loads(done.stdout)["layers"]
        for p in layer["plans"]
        for s in p["steps"]
        if s["outcome"] not in ("unchanged", "skipped")
    ]
    if still:
        raise SystemExit("the run after the repair changed something: " + "; ".join(still))
    print(
        f"\ndrift (a file, a key, a unit) put back in {wall:.2f} s "
        f"({len(changed)} step(s) changed); the next run {again:.2f} s, nothing to do"
    )


def per_layer(report: dict[str, Any]) -> list[tuple[str, float, list[tuple[str, float, int]]]]:
    rows = []
    for layer in report["layers"]:
        plans = [(p["layer"], float(p["seconds"]), len(p["steps"])) for p in layer["plans"]]
        rows.append((layer["layer"], sum(s for _, s, _ in plans), plans))
    return rows


def show(title: str, wall: float, report: dict[str, Any], plans: bool) -> None:
    print(f"\n{title}: {wall:.2f} s (whole process)")
    for name, seconds, rows in per_layer(report):
        print(f"  {name:<18} {seconds:7.2f} s")
        if plans:
            for plan, plan_seconds, steps in rows:
                print(f"      {plan:<40} {plan_seconds:7.2f} s  {steps} step(s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inventory", type=Path, default=ROOT / "inventory.yaml")
    parser.add_argument("--reruns", type=int, default=5)
    parser.add_argument("--profile", type=Path, help="cProfile the last converged re-run")
    parser.add_argument("--save", type=Path, help="write each run's JSON report here")
    parser.add_argument(
        "--drift",
        action="store_true",
        help="last, change a file, a key and a unit behind labctl's back; the next run "
        "must put each back (reference lab)",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        help="another labctl source tree (e.g. main's, from git archive): each converged "
        "re-run is paired with one of its, on the same lab, turn about",
    )
    parser.add_argument("--only", action="append", default=[], help="run only this layer")
    parser.add_argument(
        "--reads",
        action="store_true",
        help="last, time the converged run's head and health reads part by part "
        "(benchmarks/converged_reads.py), this tree's labctl and --compare's",
    )
    args = parser.parse_args()
    only = tuple(word for layer in args.only for word in ("--only", layer))
    if os.geteuid() != 0:
        raise SystemExit("run as root: the simulated lab makes namespaces")
    compile_trees([ROOT, *([args.compare] if args.compare else [])])
    with simulated_lab(args.inventory, "bench-bootstrap-") as (workdir, env):
        wall, done = labctl(workdir, env, "bootstrap", "-o", "json", *only)
        must(done, "labctl bootstrap")
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            (args.save / "bootstrap.json").write_text(done.stdout)
        show("bootstrap from nothing", wall, json.loads(done.stdout), plans=True)
        walls: list[float] = []
        last: dict[str, Any] = {}
        for i in range(args.reruns):
            prefix: tuple[str, ...] = ()
            if args.profile and i == args.reruns - 1:
                prefix = ("-m", "cProfile", "-o", str(args.profile.resolve()))
            wall, done = labctl(workdir, env, "bootstrap", "-o", "json", *only, prefix=prefix)
            must(done, "converged labctl bootstrap")
            last = json.loads(done.stdout)
            if args.save:
                (args.save / f"converged-{i}.json").write_text(done.stdout)
            changed = [
                f"{p['layer']}: {s['description']}"
                for layer in last["layers"]
                for p in layer["plans"]
                for s in p["steps"]
                if s["outcome"] not in ("unchanged", "skipped")
            ]
            if changed:
                raise SystemExit("a converged re-run changed something:\n" + "\n".join(changed))
            if not prefix:
                walls.append(wall)
        if args.compare:
            theirs: list[float] = []
            ours: list[float] = []
            other = {**env, "PYTHONPATH": str(args.compare.resolve())}
            for _ in range(args.reruns):
                for runs, environ in ((theirs, other), (ours, env)):
                    wall, done = labctl(workdir, environ, "bootstrap", "-o", "json", *only)
                    must(done, "converged labctl bootstrap")
                    runs.append(wall)
            print(
                f"\nturn about, {args.compare}: {', '.join(f'{w:.2f}' for w in theirs)} s; "
                f"median {statistics.median(theirs):.2f} s"
            )
            print(
                f"turn about, this tree: {', '.join(f'{w:.2f}' for w in ours)} s; "
                f"median {statistics.median(ours):.2f} s"
            )
        if walls:
            print(
                f"\nconverged re-runs: {', '.join(f'{w:.2f}' for w in walls)} s; "
                f"median {statistics.median(walls):.2f} s"
            )
            show("last converged re-run", walls[-1] if not args.profile else wall, last, True)
        if args.reads:
            trees = [(ROOT, env)]
            if args.compare:
                compared = {**env, "PYTHONPATH": str(args.compare.resolve())}
                trees.insert(0, (args.compare, compared))
            for tree, environ in trees:
                print(f"\n{tree}:")
                done = subprocess.run(
                    [sys.executable, str(ROOT / "benchmarks" / "converged_reads.py")],
                    cwd=workdir,
                    env={**os.environ, **SECRETS, **environ},
                    capture_output=True,
                    text=True,
                    check=False,
                    stdin=subprocess.DEVNULL,
                )
                must(done, "converged_reads.py")
                print(done.stdout, end="")
        if args.drift:
            drift(workdir, env)


if __name__ == "__main__":
    main()
