"""What a kept connection to the Kubernetes API saves per request (issue 28 item 2).

Usage (root; no lab, so no lab lock: a one-member etcd and kube-apiserver on loopback,
the binaries `scripts/build-kubernetes.sh` built):

    python benchmarks/bench_kube_keepalive.py [--requests 70] [--rounds 5]

Starts the peers tests/integration/test_kube_driver.py uses (tests/peers/etcd.py,
tests/peers/kubeapi.py) with labctl's loopback PKI, then times ``--requests`` GETs of a
Node-sized object (the default namespace) with labctl's KubeClient two ways, turn about:
a new TLS connection per request (as every request was before the client kept one:
the kept connection is closed after each request), and over the kept connection. Prints
the median per round and per request. A converged bootstrap of the reference lab asks
the API about 70 times (Calico's objects each read and applied, the addons, the Nodes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labctl.drivers.kubernetes import KubeClient, KubeTls  # noqa: E402
from labctl.kubernetes.binaries import bin_dir  # noqa: E402
from labctl.pki.builtin_backend import BuiltinBackend  # noqa: E402
from tests.conftest import REFERENCE  # noqa: E402
from tests.peers.etcd import ADDRS, mint_loopback_pki, running_etcd_cluster  # noqa: E402
from tests.peers.kubeapi import running_kube_apiserver  # noqa: E402

PATH = "/api/v1/namespaces/default"


def timed(client: KubeClient, requests: int, fresh: bool) -> float:
    start = time.perf_counter()
    for _ in range(requests):
        assert client.get(PATH) is not None
        if fresh:
            client.close()  # the next request opens a new connection, as before
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=70)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    version = "v" + next(
        line.split()[1] for line in REFERENCE.read_text().splitlines() if "version: 1." in line
    )
    with tempfile.TemporaryDirectory(prefix="bench-kube-keepalive-") as tmp:
        work = Path(tmp)
        pki = mint_loopback_pki(work / "ssl", BuiltinBackend())
        with (
            running_etcd_cluster(work / "etcd", pki, size=1) as etcd,
            running_kube_apiserver(
                bin_dir(version) / "kube-apiserver", ADDRS[0], pki, etcd, work / "api.log"
            ) as server,
        ):
            tls = KubeTls(pki.path("ca.pem"), pki.path("admin.pem"), pki.path("admin-key.pem"))
            client = KubeClient(server.url, tls)
            timed(client, args.requests, fresh=False)  # warm-up
            fresh: list[float] = []
            kept: list[float] = []
            for _ in range(args.rounds):
                fresh.append(timed(client, args.requests, fresh=True))
                kept.append(timed(client, args.requests, fresh=False))
            client.close()
    for name, walls in (("a new connection each", fresh), ("one kept connection", kept)):
        median = statistics.median(walls)
        print(
            f"{name:<22} {args.requests} GETs: median {median:.3f} s "
            f"({1000 * median / args.requests:.1f} ms a request; "
            f"rounds {', '.join(f'{w:.3f}' for w in walls)})"
        )


if __name__ == "__main__":
    main()
