"""Rich tables for `labctl inventory show` (presentation only)."""

from __future__ import annotations

from rich.table import Table

from labctl.inventory import ipam
from labctl.inventory.export import primary_address
from labctl.inventory.model import Inventory


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
