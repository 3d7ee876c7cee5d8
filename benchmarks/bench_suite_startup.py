"""What one labctl process costs the test suite before it does anything, and why.

Usage (no lab, no root): python benchmarks/bench_suite_startup.py [--runs 15]

The suite starts thousands of labctl processes (the integration and end-to-end tests'
`python -m labctl`, the simulated lab's daemons). This times three commands a test
runs again and again, turn about in two settings, and prints each one's median:

* *from source*: a copy of labctl with no .pyc: what every process paid on a machine
  with PYTHONDONTWRITEBYTECODE=1 (this project's, CI's) before the suite byte-compiled
  labctl (tests/conftest.py);
* *compiled*: a copy byte-compiled (`compileall`), as the suite now runs.

The commands, in a folder holding the reference inventory and a lab record (a
minimal sim.json; no lab is up): `labctl validate`; `labctl sim env`, which
tests/e2e/conftest.py's ``Lab.env`` ran before every labctl a test ran and now runs
once per record; `labctl bootstrap --only pki --dry-run`, which imports what a
bootstrap imports. Each is timed by its wall clock and by the CPU seconds it used
(user and system, from the kernel's accounting), the second much less moved by
other work on the machine. The source tree is not written (both copies are in a
temporary folder, each put first by PYTHONPATH).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "validate": ["validate"],
    "sim env": ["sim", "env"],
    # Plans the pki layer's mint and stops (no CA yet): nothing leaves this machine,
    # and it imports what a bootstrap imports (about 160 of labctl's modules).
    "bootstrap --only pki --dry-run": ["bootstrap", "--only", "pki", "--dry-run"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        folder = Path(tmp)
        # Two copies of labctl, one byte-compiled, chosen by PYTHONPATH (ahead of the
        # editable install): the standard library's and site-packages' .pyc are used
        # by both, as in the suite.
        trees = {"from source": folder / "source", "compiled": folder / "compiled"}
        for tree in trees.values():
            shutil.copytree(ROOT / "labctl", tree / "labctl",
                            ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        started = time.monotonic()
        if not compileall.compile_dir(trees["compiled"] / "labctl", quiet=1):
            raise SystemExit("byte-compiling labctl failed")
        modules = len(list(trees["compiled"].rglob("*.pyc")))
        print(f"byte-compiling labctl ({modules} modules): {time.monotonic() - started:.2f} s")
        lab = folder / "lab"
        (lab / ".labctl" / "sim").mkdir(parents=True)
        record = {"engine": {"runtimes": ["ceph", "etcd", "monitoring"]}, "plan": {}}
        (lab / ".labctl" / "sim" / "sim.json").write_text(json.dumps(record))
        shutil.copy(ROOT / "inventory.yaml", lab / "inventory.yaml")
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _ in range(args.runs):
            for setting, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
                for name, argv in COMMANDS.items():
                    start, cpu = time.monotonic(), _children_cpu()
                    ran = subprocess.run(
                        [sys.executable, "-m", "labctl", *argv],
                        cwd=lab, env=env, capture_output=True, check=False,
                    )  # fmt: skip
                    if ran.returncode != 0:
                        raise SystemExit(f"labctl {' '.join(argv)}: {ran.stderr.decode()}")
                    took = (time.monotonic() - start, _children_cpu() - cpu)
                    times.setdefault((name, setting), []).append(took)
    print(f"median of {args.runs} runs each, turn about (load average {os.getloadavg()[0]:.1f}):")
    for name in COMMANDS:
        for what, index in (("wall", 0), ("CPU", 1)):
            source = statistics.median(t[index] for t in times[(name, "from source")])
            built = statistics.median(t[index] for t in times[(name, "compiled")])
            print(f"  labctl {name:<31} {what:>4}: from source {source:.2f} s, "
                  f"compiled {built:.2f} s ({source - built:.2f} s less)")  # fmt: skip


def _children_cpu() -> float:
    """CPU seconds (user and system) used so far by this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
