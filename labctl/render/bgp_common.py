"""What every BGP render agrees on: the prefixes nodes announce and secrets' stand-ins (pure).

Calico resources, BIRD on the nodes and the switch configurations all derive
the advertised prefixes from here, so a switch's import filter accepts exactly
what the nodes send.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from labctl.inventory import topology
from labctl.inventory.model import Inventory, SecretRef


@dataclass(frozen=True)
class Written:
    """How one render writes a secret in its file's syntax: ``value`` checks and quotes a
    real value (a refusal never shows it); ``stand_in`` writes the printed stand-in."""

    value: Callable[[str], str]
    stand_in: Callable[[str], str]


# How a render gets a BGP password's text: it names the secret and how its syntax
# writes one; the function decides what is written. ``masking`` (a plan, a print:
# secrets are never shown) writes the stand-in, ``resolving(...)`` (the file pushed)
# the value. The render never sees which one it was given.
SecretFn = Callable[[SecretRef, Written], str]


def masked(ref: SecretRef) -> str:
    """A stand-in for a secret in a printed configuration: where it comes from, not what."""
    if ref.env is not None:
        return f"<secret from environment variable {ref.env}>"
    if ref.file is not None:
        return f"<secret from file {ref.file}>"
    return "<secret written in the inventory>"


def masking(ref: SecretRef, written: Written) -> str:
    """The secret function of every printed or planned text: the stand-in, never the value."""
    return written.stand_in(masked(ref))


def resolving(value: Callable[[SecretRef], str]) -> SecretFn:
    """The secret function of a file pushed: each secret's ``value(ref)``, checked and
    written as the render's syntax requires."""
    return lambda ref, written: written.value(value(ref))


@dataclass(frozen=True)
class Announced:
    """One prefix nodes announce, and the longest prefixes inside it they may send."""

    cidr: str
    prefixlen: int  # the prefix's own length
    up_to: int  # accept prefixes of this length at most (blocks, then single addresses)
    what: str


def announced(inventory: Inventory) -> list[Announced]:
    """Pod blocks (up to /32: Calico sends single addresses borrowed from other blocks),
    the service CIDR and the ingress ranges, as cluster.calico.advertise says."""
    calico = inventory.cluster.calico
    k8s = inventory.cluster.kubernetes
    out = []
    if calico.advertise.pod_blocks:
        pod = ipaddress.ip_network(k8s.pod_cidr)
        out.append(Announced(str(pod), pod.prefixlen, pod.max_prefixlen, "pod blocks"))
    if calico.advertise.service_cidr:
        svc = ipaddress.ip_network(k8s.service_cidr)
        out.append(Announced(str(svc), svc.prefixlen, svc.prefixlen, "service CIDR"))
    for cidr, _ in topology.external_ranges(inventory):
        net = ipaddress.ip_network(cidr)
        out.append(Announced(str(net), net.prefixlen, net.max_prefixlen, "ingress addresses"))
    return out
