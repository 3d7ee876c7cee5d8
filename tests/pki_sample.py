"""The 3-node reference-lab PKI input shared by unit, integration and benchmarks."""

from __future__ import annotations

from labctl.pki.specs import PkiInput, PkiNode


def sample_input() -> PkiInput:
    return PkiInput(
        cluster_name="lab",
        cluster_domain="cluster.local",
        service_cidr="10.3.0.0/24",
        api_endpoint_name="k8s.lab.example",
        api_endpoint_address="31.31.164.209",
        nodes=(
            PkiNode("fohn", ("31.31.164.209",), frozenset({"etcd", "control-plane", "worker"})),
            PkiNode("chequita", ("31.31.164.210",), frozenset({"etcd", "worker"})),
            PkiNode("wind", ("31.31.164.211",), frozenset({"etcd", "worker"})),
        ),
        operator="bluecmd",
    )


def scaled_input(n: int) -> PkiInput:
    """n nodes, the first three etcd, the first control-plane (benchmarks)."""
    nodes = tuple(
        PkiNode(
            f"node{i:03d}",
            (f"10.{i // 250}.{i % 250}.10",),
            frozenset(
                {"worker", *(["etcd"] if i < 3 else []), *(["control-plane"] if i == 0 else [])}
            ),
        )
        for i in range(n)
    )
    base = sample_input()
    return PkiInput(
        base.cluster_name,
        base.cluster_domain,
        base.service_cidr,
        base.api_endpoint_name,
        base.api_endpoint_address,
        nodes,
        base.operator,
    )
