"""The converged run's head and its health reads, each timed alone (issue 28 item 2).

A converged ``labctl bootstrap``'s power layer runs its steps in the executor's threads,
which cProfile does not see, and the BGP and Ceph health reads are one plan each: this
times their parts one by one, in one process, inside ``shared_sessions()`` as bootstrap
runs them, against a lab ``bench_bootstrap.py --reads`` has brought up and converged
(run in the lab's directory with ``labctl sim env``'s variables; it changes nothing):

* the power stack's imports (``labctl.drivers.ipmi``, pyipmi), in a fresh interpreter;
* per BMC: a new RMCP+ session and one chassis status read, the BMCs in parallel;
* graceful power's drain check (``Fabric.drained``) for every server at once, as the
  power layer's steps ask it (one Fabric, as one run has);
* the BGP read (``calico.established``'s ``BgpSession.status``) and its parts: each
  switch's FRR read, each node's ``birdc``, the pod blocks from the Kubernetes API;
* Ceph's health read (``ceph health detail`` through the monitor's container);
* the preflight's version reads (``labdiff.running.observe``).

Each is run ``--rounds`` times (the first also opens the run's SSH connections, so it
is shown apart); the median of the others is printed. ``python benchmarks/converged_reads.py``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def timed(label: str, fn: Callable[[], Any], rounds: int) -> None:
    from labctl.errors import LabctlError

    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        try:
            fn()
        except LabctlError as exc:  # a layer this lab has not run (--only)
            print(f"  {label:<52} not read: {str(exc)[:80]}")
            return
        times.append(time.perf_counter() - start)
    rest = times[1:] or times
    print(
        f"  {label:<52} first {times[0] * 1000:6.0f} ms, then median "
        f"{statistics.median(rest) * 1000:6.0f} ms ({len(rest)})"
    )


def import_time() -> None:
    code = (
        "import time; t = time.perf_counter(); import labctl.drivers.ipmi; "
        "print(time.perf_counter() - t)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    print(
        f"  {'import labctl.drivers.ipmi (pyipmi), fresh process':<52} {float(done) * 1000:6.0f} ms"
    )


def ceph_parts(inv: Any, base: Path, rounds: int) -> None:
    """Where Ceph's health read goes: ceph-reader.sh's container check, the ``exec``
    into the monitor's container, the CLI's own start, the question to the cluster."""
    from labctl.render import ceph as render
    from labctl.targets import InventoryConnector

    if render.runtime(inv) == "host":
        return
    mon = render.mons(inv)[0]
    engine, container = render.container_engine(mon), render.daemon_name("mon", mon.name)
    connector = InventoryConnector(inv, base)
    ssh = connector.ssh(mon.name)
    parts = {
        "true over the run's SSH connection": ["true"],
        f"{engine} inspect (is the monitor's container running?)": [
            engine, "inspect", "--format", "{{.State.Running}}", container,
        ],
        f"{engine} exec CONTAINER true": [engine, "exec", container, "true"],
        f"{engine} exec CONTAINER ceph --version": [engine, "exec", container, "ceph", "--version"],
        f"{engine} exec CONTAINER ceph health detail": [
            engine, "exec", container, "ceph", "health", "detail", "-f", "json",
        ],
    }  # fmt: skip
    for label, argv in parts.items():

        def ask(argv: list[str] = argv) -> object:
            return ssh.run(argv, timeout=30.0)

        timed(f"Ceph: {label}", ask, rounds)
    connector.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inventory", type=Path, default=Path("inventory.yaml"))
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    rounds = args.rounds

    from labctl.calico.graceful import Fabric
    from labctl.calico.work import session_for
    from labctl.ceph.cluster import CephSession
    from labctl.cli.bootstrap_cmd import layer_context
    from labctl.drivers.ipmi import IpmiClient
    from labctl.drivers.ssh import shared_sessions
    from labctl.inventory import topology
    from labctl.labdiff.running import COMPONENT_LAYERS, observe
    from labctl.power.channels import bmc_endpoint

    ctx = layer_context(args.inventory, Path(".labctl"), False)
    inv, base = ctx.inventory, ctx.base_dir
    servers = list(inv.servers)
    print(f"converged reads, {len(servers)} servers, {rounds} rounds each:")
    import_time()

    def bmc(server: Any) -> str:
        client = IpmiClient(bmc_endpoint(server, base, 5.0))  # type: ignore[arg-type]
        try:
            return str(client.power_state())
        finally:
            client.close()  # as the run's end does (a round trip per BMC, in parallel)

    with shared_sessions(), ThreadPoolExecutor(max_workers=8) as pool:
        timed(
            "IPMI: session, status, close; every BMC at once",
            lambda: list(pool.map(bmc, servers)),
            rounds,
        )
        one = servers[0]
        timed(f"IPMI: session, status, close; {one.name} alone", lambda: bmc(one), rounds)

        platform = ctx.platform.switch_platform()

        def drain_check() -> None:
            fabric = Fabric(inv, base, platform)  # one per run
            list(pool.map(fabric.drained, servers))

        timed("graceful power: drain check, every server at once", drain_check, rounds)

        session = session_for(inv, base, ctx.platform)
        switches = topology.peering_switches(inv)
        timed("BGP read: BgpSession.status (all of it)", session.status, rounds)
        for switch in switches:

            def frr(s: Any = switch) -> object:
                return session._switch(s, None)

            timed(f"BGP read: {switch.name}'s FRR", frr, rounds)
        if session.node_query:
            node = topology.nodes(inv)[0].name
            timed(f"BGP read: {node}'s birdc", lambda: session._node(node), rounds)
        if session.pod_blocks is not None:
            timed("BGP read: pod blocks from the API", session.pod_blocks, rounds)
        session.close()

        if inv.cluster.ceph is not None:
            ceph = CephSession(inv, base)
            timed("Ceph: health detail (ceph-reader.sh, all of it)", ceph.health, rounds)
            ceph.close()
            ceph_parts(inv, base, rounds)

        components = list(COMPONENT_LAYERS)
        timed(
            "preflight: versions (etcd, kubernetes, ceph)",
            lambda: observe(inv, base, ctx.state_dir, components, live=False),
            rounds,
        )


if __name__ == "__main__":
    main()
