"""Time `labctl validate` on generated inventories, and start-up of common commands.

Usage: python benchmarks/bench_validate.py [--runs 5] [--sizes 10,100,1000,5000]

Each figure is the median wall time of whole `labctl` processes (what a user or
CI waits for), after one warm-up run. Targets (issue 2, on 2 cores): 1,000
servers under 1 s, growth no worse than linear; `labctl --help` and
`labctl validate inventory.yaml` under 300 ms.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_inventory import render
from timing import median_wall

ROOT = Path(__file__).resolve().parents[1]


def labctl() -> list[str]:
    found = shutil.which("labctl")
    return [found] if found else [sys.executable, "-m", "labctl"]


def wall(argv: list[str], runs: int) -> float:
    return median_wall(argv, runs, cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="10,100,1000,5000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    cmd = labctl()
    print("| command | median wall (s) | target |")
    print("|---|---|---|")
    print(f"| labctl --help | {wall([*cmd, '--help'], args.runs):.3f} | < 0.300 |")
    reference = wall([*cmd, "validate", "inventory.yaml"], args.runs)
    print(f"| labctl validate inventory.yaml | {reference:.3f} | < 0.300 |")
    print()
    print("| servers | lines | median wall (s) | ms per server |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"inventory-{n}.yaml"
            text = render(n)
            path.write_text(text)
            seconds = wall([*cmd, "validate", str(path)], args.runs)
            print(f"| {n} | {text.count(chr(10))} | {seconds:.3f} | {1000 * seconds / n:.3f} |")


if __name__ == "__main__":
    main()
