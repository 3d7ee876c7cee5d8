"""Time reading a switch's BGP sessions over SNMP (BGP4-MIB) against FRR's JSON over vtysh.

Usage (root): python benchmarks/bench_bgp_snmp.py [--peers 3 30] [--runs 20]

FRR 8.4's bgpd with its AgentX module, kek-core's rendered configuration plus
enough extra CALICO neighbors to make ``--peers`` sessions (one Established with
fohn's BIRD 1.6.8, the rest configured and down, as in a lab where nodes are
missing), behind net-snmp's snmpd on loopback. Per peer count: the median wall
time of one full read as ``bgp status`` does it (bgpPeerTable and
bgp4PathAttrTable, GETBULK, SNMPv3 authPriv and v2c) and, beside it, of the two
``vtysh`` JSON commands the SSH path runs (without SSH's own cost). Everything
runs in namespaces named ``snmpbgp*`` that it removes.
"""

from __future__ import annotations

import argparse
import ipaddress
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labctl.calico import bgp4_mib
from labctl.drivers.bgp_snmp import SwitchSnmpEndpoint, read_bgp
from labctl.drivers.snmp import SnmpV2cAuth, SnmpV3Auth
from labctl.inventory import require_inventory
from labctl.render import switches
from labctl.sim import bgp_agent
from labctl.sim.render import bird
from tests.conftest import REFERENCE
from tests.peers import bgp
from tests.peers.ports import free_udp_port

USER, AUTH, PRIV, COMMUNITY = "labctl", "bench-auth-key", "bench-priv-key", "bench-community"


def median_ms(read: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        read()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def frr_config(peers: int) -> str:
    inventory = require_inventory(REFERENCE)
    kek = replace(next(s for s in inventory.switches if s.name == "kek-core"), bgp_status="snmp")
    text = switches.config(inventory, kek)
    # The reference lab has three nodes; more are configured and absent.
    extra = [
        f" neighbor {ipaddress.ip_address('10.99.0.1') + i} peer-group CALICO"
        for i in range(max(0, peers - 3))
    ]
    anchor = " neighbor 31.31.164.222 peer-group CALICO\n"
    return text.replace(anchor, anchor + "".join(f"{line}\n" for line in extra))


def bench(peers: int, runs: int) -> dict[str, float]:
    inventory = require_inventory(REFERENCE)
    work = Path(tempfile.mkdtemp(prefix="snmpbgp-bench-"))
    shared = Path(tempfile.mkdtemp(prefix="snmpbgp-ax-"))
    shared.chmod(0o755)
    socket = shared / "agentx"
    bgp_agent.write_subagent_conf(shared / "snmp", socket)
    spec = bgp_agent.AgentSpec(
        "kek-core", "127.0.0.1", free_udp_port(), work / "snmpd", socket,
        COMMUNITY, USER, AUTH, PRIV,
    )  # fmt: skip
    agent = bgp_agent.start(spec)
    v3 = SwitchSnmpEndpoint("127.0.0.1", SnmpV3Auth(USER, AUTH, PRIV), port=spec.port)
    v2c = SwitchSnmpEndpoint("127.0.0.1", SnmpV2cAuth(COMMUNITY), port=spec.port)
    try:
        with bgp.bgp_pair(
            work, "kek-core", frr_config(peers),
            bird.config(inventory, inventory.server("fohn")),
            "31.31.164.210/28", "31.31.164.220/28", bgpd_snmp=shared / "snmp", prefix="snmpbgp",
        ) as pair:  # fmt: skip
            deadline = time.monotonic() + 30
            while True:
                try:
                    rows = read_bgp(v3)
                    if "10.188.0.0/26" in bgp4_mib.routes(rows):
                        break
                except Exception:  # bgpd not attached yet
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("kek-core did not learn fohn's block over SNMP in 30 s")
                time.sleep(0.3)
            assert len(bgp4_mib.peers(rows)) == peers, len(bgp4_mib.peers(rows))
            return {
                "snmp_v3_ms": median_ms(lambda: read_bgp(v3), runs),
                "snmp_v2c_ms": median_ms(lambda: read_bgp(v2c), runs),
                "vtysh_json_ms": median_ms(
                    lambda: (
                        pair.vtysh("show bgp summary json"),
                        pair.vtysh("show ip route bgp json"),
                    ),
                    runs,
                ),
                "rows": float(len(rows)),
            }
    finally:
        agent.stop()
        shutil.rmtree(shared, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, nargs="+", default=[3, 30])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    why = bgp.available()
    if why:
        raise SystemExit(why)
    for peers in args.peers:
        r = bench(peers, args.runs)
        print(
            f"{peers} peers ({int(r['rows'])} rows): BGP4-MIB read v3 {r['snmp_v3_ms']:.0f} ms, "
            f"v2c {r['snmp_v2c_ms']:.0f} ms; vtysh JSON (no SSH) {r['vtysh_json_ms']:.0f} ms "
            f"(median of {args.runs})"
        )


if __name__ == "__main__":
    main()
