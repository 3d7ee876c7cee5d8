"""Power status on 1, 10 and 50 simulated BMCs: labctl (one process) vs a sequential ipmitool loop.

Usage (root): python benchmarks/bench_power.py [--sizes 1,10,50] [--delay-ms 20] [--runs 3]

Everything runs inside a network namespace this script creates and removes:
N ipmi_sim BMCs, then `labctl power status --all` and a loop of
`ipmitool -I lanplus -C 3 chassis power status`, first as is and then with
--delay-ms added to every datagram in each direction, because real BMCs answer
in tens to hundreds of milliseconds, not the ~1 ms of a local ipmi_sim. The
delay comes from benchmarks/udp_delay.py (this kernel has no netem qdisc).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gen_inventory import generate, render
from timing import median_wall

from labctl.sim import bmc as sim_bmc
from labctl.sim import netns_dir

PASSWORD = "bench-bmc-pw"
RELAY = Path(__file__).with_name("udp_delay.py")


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def in_ns(ns: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def wall(argv: list[str], runs: int, env: dict[str, str]) -> float:
    return median_wall(argv, runs, env=env)


def measure(
    ns: str,
    delay: int,
    sizes: list[int],
    addresses: list[str],
    labctl: str,
    tmp: Path,
    runs: int,
    env: dict[str, str],
) -> list[tuple[int, int, float, float]]:
    rows = []
    ipmitool = f"ipmitool -I lanplus -C 3 -U labctl -P {PASSWORD}"
    for n in sizes:
        inventory = tmp / f"inventory-{n}.yaml"
        inventory.write_text(render(n))
        ours = wall(
            in_ns(ns, labctl, "power", "status", "--all", "-o", "json", "-i", str(inventory)),
            runs,
            env,
        )
        calls = " && ".join(
            f"{ipmitool} -H {a} chassis power status >/dev/null" for a in addresses[:n]
        )
        theirs = wall(in_ns(ns, "sh", "-c", calls), runs, env)
        print(f"{delay} ms, {n} BMCs: labctl {ours:.3f} s, loop {theirs:.3f} s", file=sys.stderr)
        rows.append((delay, n, ours, theirs))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,10,50")
    parser.add_argument("--delay-ms", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--light-bmcs",
        action="store_true",
        help="answer chassis requests with a one-line shell script instead of labctl.sim.chassis, "
        "so the simulated BMCs' own CPU use (a Python start per request) leaves the figures",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark makes a network namespace")
    sizes = [int(s) for s in args.sizes.split(",")]
    labctl = shutil.which("labctl") or str(Path(sys.executable).with_name("labctl"))
    ns = f"labctl-bench-{os.getpid()}"
    env = {**os.environ, "LABCTL_BMC_PASSWORD": PASSWORD}
    rows: list[tuple[int, int, float, float]] = []
    handles: list[sim_bmc.BmcHandle] = []
    relay: subprocess.Popen[str] | None = None
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        netns_before = netns_dir.snapshot()
        sh("ip", "netns", "add", ns)
        try:
            sh(*in_ns(ns, "ip", "link", "set", "lo", "up"))
            addresses = [s["bmc"]["address"] for s in generate(max(sizes))["servers"]]
            backends = [f"127.0.1.{i + 1}" for i in range(len(addresses))]
            for address in addresses:
                sh(*in_ns(ns, "ip", "addr", "add", f"{address}/32", "dev", "lo"))
            light = tmp / "chassis.sh"
            light.write_text('#!/bin/sh\n[ "$2" = get ] && echo power:1\nexit 0\n')
            light.chmod(0o755)
            for i, backend in enumerate(backends):
                spec = sim_bmc.BmcSpec(
                    f"bmc{i}",
                    backend,
                    "labctl",
                    PASSWORD,
                    tmp / f"bmc{i}",
                    initially_on=True,
                    chassis_program=str(light) if args.light_bmcs else None,
                )
                handles.append(sim_bmc.start(spec, netns=ns))
            time.sleep(1.0)  # let every ipmi_sim bind inside the namespace
            mappings = [f"{a}:623={b}:623" for a, b in zip(addresses, backends, strict=True)]
            for delay in (0, args.delay_ms):
                relay = subprocess.Popen(
                    in_ns(ns, sys.executable, str(RELAY), str(delay), *mappings),
                    stdout=subprocess.PIPE,
                    text=True,
                )
                assert relay.stdout is not None and relay.stdout.readline().strip() == "ready"
                rows += measure(ns, delay, sizes, addresses, labctl, tmp, args.runs, env)
                relay.terminate()
                relay.wait()
                relay = None
        finally:
            if relay is not None:
                relay.kill()
                relay.wait()
            for handle in handles:
                handle.stop()
            sh("ip", "netns", "del", ns, check=False)
            netns_dir.restore(netns_before)
    print(
        "| added delay (each way) | BMCs | labctl (s) | sequential ipmitool (s) | ipmitool / labctl |"  # noqa: E501
    )
    print("|---|---|---|---|---|")
    for delay, n, ours, theirs in rows:
        print(f"| {delay} ms | {n} | {ours:.3f} | {theirs:.3f} | {theirs / ours:.1f}x |")
    for delay in sorted({r[0] for r in rows}):
        by_n = {r[1]: r[2] for r in rows if r[0] == delay}
        if 1 in by_n and max(by_n) > 1:
            ratio = by_n[max(by_n)] / by_n[1]
            print(f"\nwith {delay} ms: labctl at {max(by_n)} BMCs takes {ratio:.2f}x its time at 1")


if __name__ == "__main__":
    main()
