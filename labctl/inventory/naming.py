"""The names the lab itself uses for its machines: one rule, for every place that names them.

A server ``fohn`` in a lab whose ``lab.domain`` is ``lab.example.net`` is
``fohn.lab.example.net``: that is what ``inventory export hosts`` publishes for
the hosts file or DNS, and so it is also a name the node's certificates must
carry, or a client that dials the published name is refused. Before this rule
lived here the exports spelt it out themselves and the PKI knew only
``fohn.<cluster name>``; both now ask this module (pure: names in, names out).
"""

from __future__ import annotations

from labctl.inventory.model import Inventory


def fqdn(inventory: Inventory, name: str, suffix: str = "") -> str:
    """``name`` (a server, switch, PDU; ``suffix`` such as ``-bmc`` or ``-storage``)
    in the lab's DNS domain, as ``inventory export hosts`` publishes it."""
    return f"{name}{suffix}.{inventory.lab.domain}"


def server_names(inventory: Inventory, server: str) -> tuple[str, ...]:
    """The DNS names a server answers to in the lab, short name aside: its FQDN."""
    return (fqdn(inventory, server),)
