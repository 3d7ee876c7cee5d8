"""Time an etcd snapshot through labctl's driver against etcdctl's, on a ~100 MB keyspace.

Run: PYTHONPATH=. python benchmarks/bench_etcd_snapshot.py [--mib 100]

The driver reads etcd's JSON gateway (base64 in JSON) where etcdctl reads gRPC, so
the question is what that costs, and that the stream is never held in memory: the
peak RSS the snapshot adds is printed too. Starts a 3-member loopback cluster
(tests/peers/etcd.py) in a temporary directory and stops it after.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from labctl.drivers.etcd import EtcdClient, EtcdEndpoint, EtcdTls
from labctl.pki.builtin_backend import BuiltinBackend
from tests.peers.etcd import mint_loopback_pki, running_etcd_cluster

VALUE = 64 * 1024


def kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/self/status")


def reset_peak_rss() -> int:
    """Start VmHWM again from the current RSS (Linux: 5 > clear_refs); return that."""
    Path("/proc/self/clear_refs").write_text("5")
    return kib("VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=100, help="keyspace to write, MiB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        store = mint_loopback_pki(work / "ssl", BuiltinBackend())
        with running_etcd_cluster(work / "etcd", store) as cluster:
            tls = EtcdTls(cluster.ca, cluster.client_cert, cluster.client_key)
            endpoints = [EtcdEndpoint(m.name, m.client_url) for m in cluster.members]
            with EtcdClient(endpoints, tls, timeout=30) as client:
                count = args.mib * 1024 * 1024 // VALUE
                start = time.perf_counter()
                for i in range(count):
                    client.put(f"/bench/{i:06d}", os.urandom(VALUE))
                wrote = time.perf_counter() - start
                print(f"wrote {count} x {VALUE // 1024} KiB in {wrote:.1f} s")

                before = reset_peak_rss()
                start = time.perf_counter()
                info = client.snapshot(work / "labctl.db")
                took = time.perf_counter() - start
                peak = kib("VmHWM")
                mb = info.size / 1e6
                print(
                    f"labctl snapshot: {mb:.1f} MB in {took:.2f} s = {mb / took:.0f} MB/s; "
                    f"RSS {before / 1024:.1f} MiB before, peak {peak / 1024:.1f} MiB during"
                )

            start = time.perf_counter()
            done = cluster.etcdctl(
                cluster.members[0], "snapshot", "save", str(work / "etcdctl.db"), timeout=300
            )
            took = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            size = (work / "etcdctl.db").stat().st_size / 1e6
            print(f"etcdctl snapshot save: {size:.1f} MB in {took:.2f} s = {size / took:.0f} MB/s")


if __name__ == "__main__":
    main()
