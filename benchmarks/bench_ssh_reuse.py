"""What a converged run's SSH costs: a login per user against one connection per node.

Usage (root: it starts an OpenSSH sshd on loopback, stopped by its pid at the end):

    python benchmarks/bench_ssh_reuse.py [--commands 12] [--rounds 5]

Runs ``--commands`` short commands (``true``) against a loopback sshd, first each over a
session of its own (a login each: what the Ceph reads, the BGP reads, the os survey and
the binaries' checks did in a bootstrap before ``drivers.ssh.shared_sessions``), then all
over one pooled session (what they do now), and prints the median of ``--rounds`` for
each and the cost of one login. Loopback has no network delay: a real lab adds its round
trip times to every login (TCP, key exchange, authentication: about four).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labctl.drivers.ssh import SshSession, SshTarget, session, shared_sessions
from tests.peers.sshd import running_sshd, ssh_target


def timed(target: SshTarget, commands: int, pooled: bool) -> float:
    start = time.perf_counter()
    if pooled:
        with shared_sessions():
            for _ in range(commands):
                with session(target) as ssh:
                    ssh.run(["true"])
    else:
        for _ in range(commands):
            with SshSession(target) as ssh:
                ssh.run(["true"])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commands", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ssh-") as tmp, running_sshd(Path(tmp)) as peer:
        target = ssh_target(peer, "node")
        timed(target, 2, False)  # warm-up: imports, the key file in the page cache
        own = [timed(target, args.commands, False) for _ in range(args.rounds)]
        pooled = [timed(target, args.commands, True) for _ in range(args.rounds)]
    a, b = statistics.median(own), statistics.median(pooled)
    n = args.commands
    print(f"{n} commands, a login each: median {a:.3f} s ({a / n * 1000:.0f} ms a command)")
    print(
        f"{n} commands, one pooled connection: median {b:.3f} s ({b / n * 1000:.0f} ms a command)"
    )
    print(f"one login costs about {(a - b) / args.commands * 1000:.0f} ms here")


if __name__ == "__main__":
    main()
