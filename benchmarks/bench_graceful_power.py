"""Seconds lost to a pod block while a node is power-cycled, with and without graceful power.

Usage (root, under the machine's simulated-lab lock):
    flock /tmp/labctl-sim.lock python benchmarks/bench_graceful_power.py [--flows 16] [--rate 50]

It brings the simulated reference lab up in a temporary directory, bootstraps the
layers up to calico (FRR on the switches, BIRD on the nodes), and gives chequita a
pod address (10.188.0.65, on a veth as Calico gives a pod). kek-core reaches
chequita's block over every node (the node-to-node mesh re-announces it), so with
layer-4 multipath hashing on kek-core, some of --flows UDP flows sent from kek-core
to the pod go through wind. Then, twice: `labctl power cycle wind --no-graceful`
and `labctl power cycle wind` (graceful), while the flows run at --rate packets per
second each. A receiver on chequita notes every packet; a flow's loss is its longest
run of missing packets, in seconds. Printed: the worst flow's loss and how many
flows lost anything, for each way. The lab is taken down at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRETS = {
    "LABCTL_BMC_PASSWORD_FOHN": "fohn-bmc-bench",
    "LABCTL_BMC_PASSWORD_CHEQUITA": "chequita-bmc-bench",
    "LABCTL_BMC_PASSWORD_WIND": "wind-bmc-bench",
    "LABCTL_PDU_AUTH_KEY": "pdu-auth-bench",
    "LABCTL_PDU_PRIV_KEY": "pdu-priv-bench",
    "LABCTL_SWITCH_SNMP_AUTH_KEY": "astrid-auth-bench",
    "LABCTL_SWITCH_SNMP_PRIV_KEY": "astrid-priv-bench",
    "LABCTL_CA_PASSPHRASE": "bench-ca-passphrase",
}
POD = "10.188.0.65"  # in chequita's block (10.188.0.64/26)
BLOCK = "10.188.0.64/26"
WIND = "31.31.164.222"
KEK_CORE = "10.31.0.2"
PORT = 9999


def receive(out: Path, seconds: float) -> None:
    """Note (flow, sequence) of every datagram to POD:PORT for ``seconds``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((POD, PORT))
    sock.settimeout(0.5)
    got: dict[str, list[int]] = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            data = sock.recv(64)
        except TimeoutError:
            continue
        flow, seq = data.decode().split(":")
        got.setdefault(flow, []).append(int(seq))
    out.write_text(json.dumps(got))


def send(flows: int, rate: float, seconds: float) -> None:
    """``flows`` UDP flows (one source port each) to POD:PORT, ``rate`` packets/s each."""
    socks = []
    for _ in range(flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 0))
        socks.append(s)
    start = time.monotonic()
    seq = 0
    while time.monotonic() - start < seconds:
        for i, s in enumerate(socks):
            # No route for a moment counts as loss, as it is.
            with contextlib.suppress(OSError):
                s.sendto(f"{i}:{seq}".encode(), (POD, PORT))
        seq += 1
        time.sleep(max(0.0, start + seq / rate - time.monotonic()))
    Path("/dev/stdout").write_text(json.dumps({"sent": seq}) + "\n")


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=True)


def labctl(work: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "labctl", *args],
        cwd=work,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"labctl {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return done


def kek_routes(state: Path) -> list[str]:
    """kek-core's installed next hops to chequita's block, read over SSH as labctl does
    (its FRR's sockets are in the switch's own /run; none while FRR does not answer)."""
    done = subprocess.run(
        ["ssh", "-i", str(state / "id_ed25519"), "-o", "StrictHostKeyChecking=yes",
         "-o", f"UserKnownHostsFile={state / 'known_hosts'}", "-o", "BatchMode=yes",
         "-o", "ConnectTimeout=2", f"root@{KEK_CORE}", "vtysh -c 'show ip route bgp json'"],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    if done.returncode != 0:
        return []
    for entry in json.loads(done.stdout).get(BLOCK, []):
        if entry.get("selected") and entry.get("installed"):
            return [h["ip"] for h in entry["nexthops"] if h.get("active")]
    return []


def wait_for_wind(state: Path, within: float = 60) -> None:
    end = time.monotonic() + within
    while WIND not in kek_routes(state):
        if time.monotonic() > end:
            raise SystemExit(f"kek-core has no route to {BLOCK} through wind after {within:g} s")
        time.sleep(0.5)


def one_cycle(
    work: Path,
    env: dict[str, str],
    nodes: dict[str, str],
    switch_ns: str,
    graceful: bool,
    args: argparse.Namespace,
) -> dict[str, object]:
    wait_for_wind(work / ".labctl" / "sim")
    time.sleep(3)  # let the fabric settle after the last change
    seconds = args.seconds
    out = work / f"received-{graceful}.json"
    me = str(Path(__file__).resolve())
    receiver = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            nodes["chequita"],
            sys.executable,
            me,
            "--receive",
            str(out),
            str(seconds + 2),
        ]
    )
    time.sleep(1)
    sender = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            switch_ns,
            sys.executable,
            me,
            "--send",
            str(args.flows),
            str(args.rate),
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)
    start = time.monotonic()
    cycle = labctl(
        work,
        env,
        "power",
        "cycle",
        "wind",
        "--graceful" if graceful else "--no-graceful",
        "-o",
        "json",
    )
    took = time.monotonic() - start
    sent = json.loads(sender.communicate()[0])["sent"]
    receiver.wait()
    got = json.loads(out.read_text())
    losses = []
    for flow in range(args.flows):
        seqs = sorted(set(got.get(str(flow), [])))
        marks = [-1, *seqs, sent]
        gap = max(b - a - 1 for a, b in itertools.pairwise(marks))
        losses.append(gap / args.rate)
    return {
        "graceful": graceful,
        "cycle_seconds": round(took, 1),
        "worst_flow_loss_s": round(max(losses), 2),
        "flows_with_loss": sum(1 for x in losses if x > 0),
        "flows": args.flows,
        "said": json.loads(cycle.stdout).get("said", []),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--receive":
        receive(Path(sys.argv[2]), float(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--send":
        send(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=16)
    parser.add_argument("--rate", type=float, default=50.0, help="packets per second per flow")
    parser.add_argument("--seconds", type=float, default=40.0, help="how long the flows run")
    args = parser.parse_args()
    assert os.geteuid() == 0, "the simulated lab needs root"
    work = Path(tempfile.mkdtemp(prefix="bench-graceful-"))
    (work / "inventory.yaml").write_text((ROOT / "inventory.yaml").read_text())
    labctl(work, SECRETS, "sim", "up")
    try:
        exports = labctl(work, SECRETS, "sim", "env").stdout
        env = dict(SECRETS)
        for line in exports.splitlines():
            key, value = line.removeprefix("export ").split("=", 1)
            env[key] = value.strip("'")
        layers = ("power", "pki", "etcd", "calico")
        labctl(work, env, "bootstrap", *(a for layer in layers for a in ("--only", layer)))
        record = json.loads((work / ".labctl" / "sim" / "sim.json").read_text())
        nodes = {name: n["netns"] for name, n in record["nodes"].items()}
        switch_ns = f"lab-{record['plan']['lab_id']}-kek-core"
        ns = nodes["chequita"]
        run(
            "ip",
            "-n",
            ns,
            "link",
            "add",
            "calibench0",
            "type",
            "veth",
            "peer",
            "name",
            "calibench1",
        )
        run("ip", "-n", ns, "addr", "add", f"{POD}/32", "dev", "calibench0")
        for link in ("calibench0", "calibench1"):
            run("ip", "-n", ns, "link", "set", link, "up")
        run(
            "ip",
            "netns",
            "exec",
            switch_ns,
            "sysctl",
            "-qw",
            "net.ipv4.fib_multipath_hash_policy=1",
        )
        rows = [
            one_cycle(work, env, nodes, switch_ns, graceful, args) for graceful in (False, True)
        ]
        for row in rows:
            print(json.dumps(row))
        print()
        print("| power cycle of wind | worst flow's loss | flows that lost packets | cycle took |")
        print("|---|---|---|---|")
        for row in rows:
            way = "graceful (default)" if row["graceful"] else "--no-graceful"
            print(
                f"| {way} | {row['worst_flow_loss_s']} s "
                f"| {row['flows_with_loss']} of {row['flows']} | {row['cycle_seconds']} s |"
            )
    finally:
        labctl(work, SECRETS, "sim", "down")


if __name__ == "__main__":
    main()
