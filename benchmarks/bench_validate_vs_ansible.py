"""`labctl validate` beside `ansible-inventory --list` on the same generated lab, in one run.

Usage: python benchmarks/bench_validate_vs_ansible.py [--servers 1000] [--rounds 7]
       [--ansible-venv DIR]

Issue 28 asks `labctl validate` on 1,000 servers to take at most a fifth (0.2x) of
the time `ansible-inventory --list` takes on labctl's own Ansible export of the
same lab. This script generates the inventory (`benchmarks/gen_inventory.py`),
exports it with `labctl inventory export ansible`, then times whole processes,
alternating the two commands round by round so that whatever else the machine is
doing weighs on both alike; it prints each command's median and the ratio. It also
times `labctl --help` beside a bare `python -c pass`, the floor of any Python CLI.

ansible-core is no dependency of labctl: it is installed from PyPI into a
virtualenv of its own (DIR, default ~/.cache/labctl/bench-ansible), made on first
use with this Python.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_inventory import render

DEFAULT_VENV = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "labctl"


def labctl() -> list[str]:
    found = shutil.which("labctl")
    return [found] if found else [sys.executable, "-m", "labctl"]


def ansible_inventory(venv: Path) -> Path:
    """The venv's ansible-inventory, installing ansible-core there first if needed."""
    tool = venv / "bin" / "ansible-inventory"
    if not tool.exists():
        print(f"installing ansible-core into {venv} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "ansible-core"], check=True)
    return tool


def once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:6])} exited {done.returncode}: {done.stderr[-400:]!r}")
    return took


def side_by_side(
    a: list[str], b: list[str], rounds: int, env: dict[str, str]
) -> tuple[float, float, float]:
    """Medians of ``a`` and ``b`` (alternating, after one warm-up each) and of a/b per round."""
    once(a, env)
    once(b, env)
    ta: list[float] = []
    tb: list[float] = []
    for _ in range(rounds):
        ta.append(once(a, env))
        tb.append(once(b, env))
    ratios = [x / y for x, y in zip(ta, tb, strict=True)]
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--labctl", help="how to run labctl (default: the labctl on PATH, else python -m labctl)"
    )
    parser.add_argument("--ansible-venv", type=Path, default=DEFAULT_VENV / "bench-ansible")
    args = parser.parse_args()
    tool = ansible_inventory(args.ansible_venv)
    version = subprocess.run(
        [str(tool), "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    cmd = shlex.split(args.labctl) if args.labctl else labctl()
    env = dict(os.environ)
    env["PYTHONWARNINGS"] = "ignore"  # ansible's cryptography deprecation warnings
    with tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp) / f"inventory-{args.servers}.yaml"
        inventory.write_text(render(args.servers))
        export = Path(tmp) / "hosts.yaml"
        subprocess.run(
            [*cmd, "inventory", "export", "ansible", "-i", str(inventory), "--out", str(export)],
            check=True,
            capture_output=True,
        )
        print(f"{args.servers} servers, {args.rounds} rounds alternating, {version}")
        print()
        print("| command | median wall (s) |")
        print("|---|---|")
        validate, listing, ratio = side_by_side(
            [*cmd, "validate", str(inventory)],
            [str(tool), "-i", str(export), "--list"],
            args.rounds,
            env,
        )
        print(f"| labctl validate ({args.servers} servers) | {validate:.3f} |")
        print(f"| ansible-inventory -i export --list | {listing:.3f} |")
        print(f"| ratio validate / ansible-inventory (median of rounds) | {ratio:.2f}x |")
        helping, bare, _ = side_by_side(
            [*cmd, "--help"], [sys.executable, "-c", "pass"], args.rounds, env
        )
        print(f"| labctl --help | {helping:.3f} |")
        print(f"| python -c pass | {bare:.3f} |")


if __name__ == "__main__":
    main()
