"""Every table labctl prints, and the console it is printed on (presentation only).

Rich cuts a cell that does not fit with an ellipsis (``31.31.…``) and sizes a
console that is not a terminal at 80 columns, so a table piped to a file or to
``grep`` lost the values it was printed for. Every command builds its tables
with this module's ``Table`` and prints them on its ``Console``: on a terminal
a cell too wide wraps (folds) onto more lines, never an ellipsis; in a pipe or
a file the console is as wide as the widest row, so every value is whole on
its line and no character is ever cut in half.
"""

from __future__ import annotations

from typing import Any

import rich.console
import rich.table

from labctl.inventory import ipam
from labctl.inventory.export import primary_address
from labctl.inventory.model import Inventory

# A pipe or a file has no width: wide enough for any row labctl prints (tables are
# not expanded, so a narrow table stays narrow).
PIPE_WIDTH = 100_000


class Table(rich.table.Table):
    """A rich table whose cells wrap, character by character if they must, never cut."""

    def add_column(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("overflow", "fold")
        kwargs.setdefault("no_wrap", False)
        super().add_column(*args, **kwargs)


class Console(rich.console.Console):
    """A rich console that prints whole lines when it is not writing to a terminal."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_terminal and "width" not in kwargs:
            self.width = PIPE_WIDTH


def inventory_tables(inv: Inventory) -> list[Table]:
    title = f"Lab {inv.lab.name} ({inv.lab.domain})"
    servers = Table(title=f"{title}: servers")
    for column in ("name", "model", "CPU", "memory", "OS", "roles", "address", "BMC"):
        servers.add_column(column)
    for s in inv.servers:
        hw = s.hardware
        servers.add_row(
            s.name,
            hw.model if hw else "-",
            f"{hw.cpu_count}x {hw.cpu_model}" if hw else "-",
            hw.memory if hw else "-",
            f"{s.os.distribution} {s.os.channel}",
            ", ".join(sorted(s.roles)),
            primary_address(s, inv) or "-",
            f"{s.bmc.type} {s.bmc.address}",
        )

    use = ipam.utilisation(inv)
    networks = Table(title="networks")
    for column in ("name", "CIDR", "purpose", "gateway", "VLAN", "used", "free"):
        networks.add_column(column)
    for n in inv.networks:
        used, usable = use.get(n.name, (0, 0))
        networks.add_row(
            n.name,
            n.cidr,
            n.purpose,
            n.gateway or "-",
            str(n.vlan or "-"),
            f"{used}/{usable} ({100 * used / usable:.0f}%)" if usable else str(used),
            str(usable - used - (1 if n.gateway else 0)),
        )
    k = inv.cluster.kubernetes
    networks.add_row("pods", k.pod_cidr, "kubernetes", "-", "-", "-", "-")
    networks.add_row("services", k.service_cidr, "kubernetes", "-", "-", "-", "-")

    switches = Table(title="switches")
    for column in ("name", "model", "management", "ASN", "cabled ports"):
        switches.add_column(column)
    cabled: dict[str, list[str]] = {}
    for s in inv.servers:
        for nic in s.nics:
            if nic.switch:
                cabled.setdefault(nic.switch, []).append(f"{nic.port} {s.name}/{nic.name}")
    for sw in inv.switches:
        switches.add_row(
            sw.name,
            sw.model,
            sw.management.address if sw.management else "-",
            str(sw.asn or "-"),
            "\n".join(cabled.get(sw.name, [])) or "-",
        )

    outlets = Table(title="PDU outlets")
    for column in ("PDU", "model", "address", "outlet", "device", "PSU"):
        outlets.add_column(column)
    for p in inv.pdus:
        by_outlet = {o.outlet: o for o in p.outlets}
        for number in range(1, p.outlet_count + 1):
            o = by_outlet.get(number)
            outlets.add_row(
                p.name if number == 1 else "",
                p.model if number == 1 else "",
                p.address if number == 1 else "",
                str(number),
                o.device if o else "(free)",
                str(o.psu) if o else "",
            )
    return [servers, networks, switches, outlets]
