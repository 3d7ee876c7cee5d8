"""What every BGP render agrees on: the prefixes nodes announce and secrets' stand-ins (pure).

Calico resources, BIRD on the nodes and the switch configurations all derive
the advertised prefixes from here, so a switch's import filter accepts exactly
what the nodes send.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from labctl.inventory.model import Inventory, SecretRef

# How a render gets a BGP password: the real value when pushing a configuration,
# a stand-in naming the reference when printing one (secrets are never shown).
SecretFn = Callable[[SecretRef], str]


def masked(ref: SecretRef) -> str:
    """A stand-in for a secret in a printed configuration: where it comes from, not what."""
    if ref.env is not None:
        return f"<secret from environment variable {ref.env}>"
    if ref.file is not None:
        return f"<secret from file {ref.file}>"
    return "<secret written in the inventory>"


@dataclass(frozen=True)
class Announced:
    """One prefix nodes announce, and the longest prefixes inside it they may send."""

    cidr: str
    prefixlen: int  # the prefix's own length
    up_to: int  # accept prefixes of this length at most (blocks, then single addresses)
    what: str


def announced(inventory: Inventory) -> list[Announced]:
    """Pod blocks (up to /32: Calico sends single addresses borrowed from other blocks),
    the service CIDR and the ingress network, as cluster.calico.advertise says."""
    calico = inventory.cluster.calico
    k8s = inventory.cluster.kubernetes
    out = []
    if calico.advertise.pod_blocks:
        pod = ipaddress.ip_network(k8s.pod_cidr)
        out.append(Announced(str(pod), pod.prefixlen, pod.max_prefixlen, "pod blocks"))
    if calico.advertise.service_cidr:
        svc = ipaddress.ip_network(k8s.service_cidr)
        out.append(Announced(str(svc), svc.prefixlen, svc.prefixlen, "service CIDR"))
    if calico.advertise.external_network is not None:
        net = ipaddress.ip_network(inventory.network(calico.advertise.external_network).cidr)
        out.append(Announced(str(net), net.prefixlen, net.max_prefixlen, "ingress addresses"))
    return out
